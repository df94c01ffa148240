//! The N-API layer: every export of the addon. Each one validates its
//! JavaScript arguments, calls a kernel (`crate::kernels`) or an OS piece
//! (`crate::os`) and converts the result; no kernel logic lives here.
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

// Page and node kernels (spec/file_format_v1.md §2, §4) as plain N-API
// callbacks, with the argument helpers every module here shares.
mod kernels;
// Commit-log record kernels (spec/commit_record_v0.md §4, §5).
mod log;
// The cartridge entry-order kernel (spec/cartridge_v1.md §3).
mod cartridge;
// The class `SharedFile` over `os::shared_file`.
mod shared_file;
// The class `FileMapping` over `os::window`.
mod file_mapping;

use napi::{Env, Error, Status};
use napi_derive::napi;

use crate::kernels::crc32c;

/// What `nativeInfo()` reports about this build and this CPU.
#[napi(object)]
pub struct NativeInfo {
    /// Version of the `northstar-native` crate.
    pub version: String,
    /// The CRC-32C path chosen at run time: "sse4.2", "armv8-crc" or "table".
    #[napi(js_name = "crc32cBackend")]
    pub crc32c_backend: String,
}

#[napi(catch_unwind)]
pub fn native_info() -> NativeInfo {
    NativeInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        crc32c_backend: crc32c::backend().to_owned(),
    }
}

/// Throws a JS `TypeError` (code `ERR_INVALID_ARG_TYPE`) and returns the
/// `Error` that tells napi-rs an exception is already pending.
pub(crate) fn throw_type_error(env: &Env, message: String) -> Error {
    if let Err(err) = env.throw_type_error(&message, Some("ERR_INVALID_ARG_TYPE")) {
        return err;
    }
    Error::new(Status::PendingException, message)
}

/// Throws a JS `Error` with `code` as its `code` property (none when `None`);
/// see `throw_type_error`.
pub(crate) fn throw_error(env: &Env, message: String, code: Option<&str>) -> Error {
    if let Err(err) = env.throw_error(&message, code) {
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
