//! N-API exports of the commit-log record kernels (spec/commit_record_v0.md
//! §4, §5): `recordSeal`, `recordVerify`, `recordDecode`, with the signatures
//! of `Kernels` in `ts/native/kernels.ts`.
//!
//! Plain N-API callbacks like those of `napi::kernels` (whose argument helpers
//! and `dispatch` they share, and which registers them): argument checks in
//! the order of the TypeScript twin (`ts/native/fallback_log.ts`), buffers
//! borrowed in place, every call under `catch_unwind`.

// `cargo test` builds no module registration, so nothing here is reachable there.
#![cfg_attr(test, allow(dead_code))]

use std::ptr;

use napi::sys::{self, napi_value};

use crate::kernels::log;
use crate::napi::kernels::{callbacks, dispatch, index, u32_out, u8_array, uint32, Call, Cx, View};

/// The `offset` argument: an integer from 0 to the buffer's length.
#[inline(always)]
fn offset_arg(cx: Cx, value: napi_value, buf: View) -> Call<usize> {
    index(cx, value, buf.len as f64, "offset")
}

#[inline(always)]
fn int32(cx: Cx, n: i32) -> Call<napi_value> {
    let mut v = ptr::null_mut();
    // Safety: live env.
    unsafe { sys::napi_create_int32(cx.0, n, &mut v) };
    Ok(v)
}

/// recordSeal(buf, offset): writes the CRCs and trailer; returns the total length.
fn record_seal(cx: Cx, [buf, offset]: [napi_value; 2]) -> Call<napi_value> {
    let b = u8_array(cx, buf, "buf")?;
    let o = offset_arg(cx, offset, b)?;
    // Safety: the only view of this call.
    let total = cx.check(log::record_seal(unsafe { b.bytes_mut() }, o))?;
    uint32(cx, total)
}

/// recordVerify(buf, offset): the total length, or a negative status (spec §5.1).
fn record_verify(cx: Cx, [buf, offset]: [napi_value; 2]) -> Call<napi_value> {
    let b = u8_array(cx, buf, "buf")?;
    let o = offset_arg(cx, offset, b)?;
    // Safety: a shared view only.
    int32(cx, log::record_verify(unsafe { b.bytes() }, o))
}

/// recordDecode(buf, offset, out): four u32 per op into `out`; returns the op count.
fn record_decode(cx: Cx, [buf, offset, out]: [napi_value; 3]) -> Call<napi_value> {
    let b = u8_array(cx, buf, "buf")?;
    let o = offset_arg(cx, offset, b)?;
    // Safety: the output is checked disjoint from buf, which is only read.
    let words = unsafe { u32_out(cx, out, b, "out overlaps buf")? };
    let n = cx.check(log::record_decode(unsafe { b.bytes() }, o, words))?;
    uint32(cx, n)
}

callbacks! {
    c"recordSeal" => record_seal_cb(record_seal, 2);
    c"recordVerify" => record_verify_cb(record_verify, 2);
    c"recordDecode" => record_decode_cb(record_decode, 3);
}
