//! Every `#[napi]` export. Each one validates its JavaScript arguments, calls
//! a pure-Rust kernel and converts the result; no kernel logic lives here.
//!
//! Errors JavaScript sees:
//! - `TypeError` when an argument has the wrong type (a string for a buffer);
//! - `RangeError` when it has the right type but an unusable value (a seed
//!   that is not an integer in 0..=0xFFFFFFFF).
//!
//! Arguments arrive as `Unknown` and are checked by hand because napi-rs's own
//! conversions report a wrong type as a plain `Error`. Every export is
//! `catch_unwind`, so a panic, should one slip through, becomes a thrown JS
//! exception instead of aborting the process (the release profile keeps
//! `panic = "unwind"` for this).

use napi::bindgen_prelude::{FromNapiValue, Uint8ArraySlice, ValidateNapiValue};
use napi::{Env, Error, JsValue, Result, Status, Unknown, ValueType};
use napi_derive::napi;

use crate::crc32c;

/// What `nativeInfo()` reports about this build and this CPU.
#[napi(object)]
pub struct NativeInfo {
    /// Version of the `northstar-native` crate.
    pub version: String,
    /// The CRC-32C path chosen at run time: "sse4.2", "armv8-crc" or "table".
    #[napi(js_name = "crc32cBackend")]
    pub crc32c_backend: String,
}

/// CRC-32C (Castagnoli) of `data`, continuing from `seed`, the CRC of the
/// bytes before it (default 0): `crc32c(b, crc32c(a)) === crc32c(a ++ b)`.
/// Returns an unsigned 32-bit integer. `data` is read in place, not copied.
#[napi(
    js_name = "crc32c",
    catch_unwind,
    ts_args_type = "data: Uint8Array, seed?: number",
    ts_return_type = "number"
)]
pub fn crc32c(env: Env, data: Unknown, seed: Unknown) -> Result<u32> {
    let data = uint8_array_arg(&env, "data", &data)?;
    let seed = seed_arg(&env, "seed", &seed)?;
    Ok(crc32c::crc32c(data.as_ref(), seed))
}

/// Version and run-time choices of the native addon, for diagnostics.
#[napi(catch_unwind)]
pub fn native_info() -> NativeInfo {
    NativeInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        crc32c_backend: crc32c::backend().to_owned(),
    }
}

/// Borrows a `Uint8Array` (a `Buffer` is one) argument; the slice is valid for
/// the duration of the call only.
fn uint8_array_arg<'a>(env: &Env, name: &str, value: &Unknown<'a>) -> Result<Uint8ArraySlice<'a>> {
    let raw_env = env.raw();
    let raw = value.raw();
    // Safety: `raw` is a live argument value of the current call on `raw_env`.
    let is_typed_array = unsafe { Uint8ArraySlice::validate(raw_env, raw) }.is_ok();
    if !is_typed_array {
        return Err(throw_type_error(
            env,
            format!("{name} must be a Uint8Array"),
        ));
    }
    // Safety: as above; this fails only for a typed array of another element type.
    unsafe { Uint8ArraySlice::from_napi_value(raw_env, raw) }
        .map_err(|_| throw_type_error(env, format!("{name} must be a Uint8Array")))
}

/// Reads an optional unsigned 32-bit integer argument; `undefined` means 0.
fn seed_arg(env: &Env, name: &str, value: &Unknown) -> Result<u32> {
    match value.get_type()? {
        ValueType::Undefined => Ok(0),
        ValueType::Number => {
            // Safety: the value was just checked to be a number.
            let number = unsafe { f64::from_napi_value(env.raw(), value.raw()) }?;
            if number.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&number) {
                Ok(number as u32)
            } else {
                Err(throw_range_error(
                    env,
                    format!("{name} must be an integer from 0 to 0xFFFFFFFF"),
                ))
            }
        }
        _ => Err(throw_type_error(env, format!("{name} must be a number"))),
    }
}

/// Throws a JS `TypeError` and returns the error that tells napi-rs an
/// exception is already pending, so it does not throw a second one.
pub(crate) fn throw_type_error(env: &Env, message: String) -> Error {
    if let Err(err) = env.throw_type_error(&message, Some("ERR_INVALID_ARG_TYPE")) {
        return err;
    }
    Error::new(Status::PendingException, message)
}

/// Throws a JS `RangeError`; see `throw_type_error`.
pub(crate) fn throw_range_error(env: &Env, message: String) -> Error {
    if let Err(err) = env.throw_range_error(&message, Some("ERR_OUT_OF_RANGE")) {
        return err;
    }
    Error::new(Status::PendingException, message)
}
