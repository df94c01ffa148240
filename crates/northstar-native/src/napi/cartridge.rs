//! N-API export of the cartridge entry-order kernel (spec/cartridge_v1.md §3,
//! check 5): `cartridgeDisorder`, with the signature of `Kernels` in
//! `ts/native/kernels.ts`.
//!
//! A plain N-API callback like those of `napi::kernels` (whose argument
//! helpers and `dispatch` it shares, and which registers it): arguments
//! checked in the order of the TypeScript twin
//! (`ts/native/fallback_cartridge.ts`), the buffer borrowed in place, the call
//! under `catch_unwind`.

// `cargo test` builds no module registration, so nothing here is reachable there.
#![cfg_attr(test, allow(dead_code))]

use std::ptr;

use napi::sys::{self, napi_value};

use crate::kernels::cartridge;
use crate::napi::kernels::{callbacks, dispatch, safe_integer, u8_array, Call, Cx};

/// A safe integer as a `usize`; one that does not fit (a 32-bit target)
/// saturates, which the kernel's range check then rejects.
#[inline(always)]
fn safe_usize(cx: Cx, value: napi_value, name: &str) -> Call<usize> {
    Ok(usize::try_from(safe_integer(cx, value, name)?).unwrap_or(usize::MAX))
}

#[inline(always)]
fn int64(cx: Cx, n: i64) -> Call<napi_value> {
    let mut v = ptr::null_mut();
    // Safety: live env.
    unsafe { sys::napi_create_int64(cx.0, n, &mut v) };
    Ok(v)
}

/// cartridgeDisorder(bytes, at, count): 0 when the `count` entries at
/// `bytes[at..]` are in claim order with zero reserved words, else the first
/// that is not (`i`) or whose reserved word is not zero (`−(i + 1)`).
fn cartridge_disorder(cx: Cx, [bytes, at, count]: [napi_value; 3]) -> Call<napi_value> {
    let b = u8_array(cx, bytes, "bytes")?;
    let at = safe_usize(cx, at, "at")?;
    let count = safe_usize(cx, count, "count")?;
    // Safety: a shared view only.
    let r = cx.check(cartridge::entry_disorder(unsafe { b.bytes() }, at, count))?;
    int64(cx, r)
}

callbacks! {
    c"cartridgeDisorder" => cartridge_disorder_cb(cartridge_disorder, 3);
}
