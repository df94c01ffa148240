//! N-API exports of the page and node kernels (spec/file_format_v1.md §2, §4):
//! `pageSeal`, `pageVerify`, `leafSearch`, `branchSearch`, `leafInsert`,
//! `branchInsert`, `nodeRemove`, `nodeCompact`, `nodeSplit`, `nodeMerge`,
//! `nodeDecode`, with the signatures of `Kernels` in `ts/native/kernels.ts`.
//!
//! These run several times per database get, so they are plain N-API
//! callbacks registered at module load rather than `#[napi]` functions: the
//! napi-rs wrapper costs about 85 ns per call on top of the ~50 ns of the
//! N-API call itself (measured on node 20 with `leafSearch` of an empty leaf,
//! 137 ns against 51 ns), which is more than a whole search. What they keep
//! from napi-rs: registration, and `throw_type_error`/`throw_range_error`.
//!
//! Each export checks its arguments in exactly the order its TypeScript twin
//! (`ts/native/fallback.ts`) does, so the same bad call throws the same error
//! class: for every argument in turn, its type (`TypeError`), then its value
//! (`RangeError`), with a node's header checked right after the node buffer.
//! Numbers arrive as JavaScript doubles and are range-checked here (a u32
//! conversion would silently wrap -1 or 2^33). Every callback runs under
//! `catch_unwind`: a panic becomes a thrown `Error`, never an abort.
//!
//! Buffers are borrowed in place through `napi_get_typedarray_info`: no copy
//! and no allocation on the success path. The slices live for the duration of
//! the call only (no JavaScript runs meanwhile, so a buffer can be neither
//! detached nor resized). Two buffers that share bytes are rejected with a
//! `RangeError` before any `&mut` slice exists, because an aliased `&mut` is
//! undefined behaviour.

// `cargo test` builds no module registration, so nothing here is reachable there.
#![cfg_attr(test, allow(dead_code))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use napi::bindgen_prelude::Object;
use napi::sys::{self, napi_env, napi_value};
use napi::{Env, JsValue, Result};
use napi_derive::napi;

use crate::kernels::error::KernelError;
use crate::kernels::node::{self, Kind};
use crate::kernels::{layout, page, search};
use crate::napi::{throw_range_error, throw_type_error};

/// A JavaScript exception is pending; the callback returns null.
pub(crate) struct Thrown;

pub(crate) type Call<T> = std::result::Result<T, Thrown>;

/// The call's environment, for argument conversion and throwing.
#[derive(Clone, Copy)]
pub(crate) struct Cx(pub(crate) napi_env);

impl Cx {
    #[cold]
    pub(crate) fn type_error(self, message: String) -> Thrown {
        // self.0 is the env of the current callback.
        let _ = throw_type_error(&Env::from_raw(self.0), message);
        Thrown
    }

    #[cold]
    pub(crate) fn range_error(self, message: String) -> Thrown {
        let _ = throw_range_error(&Env::from_raw(self.0), message);
        Thrown
    }

    #[inline(always)]
    pub(crate) fn check<T>(self, r: std::result::Result<T, KernelError>) -> Call<T> {
        r.map_err(|e| match e {
            KernelError::Type(m) => self.type_error(m),
            KernelError::Range(m) => self.range_error(m),
        })
    }
}

/// A typed array's bytes: start and length in bytes.
#[derive(Clone, Copy)]
pub(crate) struct View {
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

impl View {
    /// Safety: the view came from a live argument of the current call, and no
    /// `&mut` to an overlapping view exists while the slice lives.
    #[inline(always)]
    pub(crate) unsafe fn bytes<'a>(self) -> &'a [u8] {
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Safety: as `bytes`, and no other slice overlapping the view exists.
    #[inline(always)]
    pub(crate) unsafe fn bytes_mut<'a>(self) -> &'a mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// True when both views are non-empty and share at least one byte.
    #[inline(always)]
    pub(crate) fn overlaps(self, other: View) -> bool {
        let (a, b) = (self.ptr as usize, other.ptr as usize);
        self.len > 0
            && other.len > 0
            && a < b.wrapping_add(other.len)
            && b < a.wrapping_add(self.len)
    }
}

/// A typed array argument of element type `want` (Uint8Array, Uint32Array or
/// Float64Array); `TypeError` otherwise. The view's length is in bytes.
#[inline(always)]
pub(crate) fn typed_array(
    cx: Cx,
    value: napi_value,
    want: sys::napi_typedarray_type,
    name: &str,
    class: &str,
) -> Call<View> {
    let mut kind: sys::napi_typedarray_type = -1;
    let mut length = 0usize;
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    // Safety: env and value are live for this call; unwanted outputs may be
    // null. A non-typed-array gives napi_invalid_arg without throwing.
    let status = unsafe {
        sys::napi_get_typedarray_info(
            cx.0,
            value,
            &mut kind,
            &mut length,
            &mut data,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok || kind != want {
        return Err(cx.type_error(format!("{name} must be a {class}")));
    }
    let bytes = length
        * match want {
            sys::TypedarrayType::uint32_array => 4,
            sys::TypedarrayType::float64_array => 8,
            _ => 1,
        };
    if bytes == 0 || data.is_null() {
        // Empty or detached: a dangling pointer is valid for a zero-length slice.
        return Ok(View {
            ptr: NonNull::dangling().as_ptr(),
            len: 0,
        });
    }
    Ok(View {
        ptr: data.cast::<u8>(),
        len: bytes,
    })
}

#[inline(always)]
pub(crate) fn u8_array(cx: Cx, value: napi_value, name: &str) -> Call<View> {
    typed_array(
        cx,
        value,
        sys::TypedarrayType::uint8_array,
        name,
        "Uint8Array",
    )
}

/// A JavaScript number argument; `TypeError` for any other type (BigInt included).
#[inline(always)]
pub(crate) fn number(cx: Cx, value: napi_value, name: &str) -> Call<f64> {
    let mut n = 0f64;
    // Safety: as in `typed_array`; a non-number gives napi_number_expected without throwing.
    let status = unsafe { sys::napi_get_value_double(cx.0, value, &mut n) };
    if status != sys::Status::napi_ok {
        return Err(cx.type_error(format!("{name} must be a number")));
    }
    Ok(n)
}

/// An integer in `0..=max` (the twin's `checkIndex`); `max` may be -1 (no valid index).
#[inline(always)]
pub(crate) fn index(cx: Cx, value: napi_value, max: f64, name: &str) -> Call<usize> {
    let n = number(cx, value, name)?;
    if n.fract() == 0.0 && n >= 0.0 && n <= max {
        Ok(n as usize)
    } else {
        Err(cx.range_error(format!("{name} {n} out of range 0..{max}")))
    }
}

/// A non-negative safe integer (the twins' `checkId`, `checkSafeIndex`): a
/// page id, a txn id, a byte offset or a count.
#[inline(always)]
pub(crate) fn safe_integer(cx: Cx, value: napi_value, name: &str) -> Call<u64> {
    let n = number(cx, value, name)?;
    if n.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&n) {
        Ok(n as u64)
    } else {
        Err(cx.range_error(format!("{name} must be a non-negative safe integer")))
    }
}

#[inline(always)]
pub(crate) fn disjoint(cx: Cx, page: View, other: View, message: &str) -> Call<()> {
    if page.overlaps(other) {
        return Err(cx.range_error(message.to_owned()));
    }
    Ok(())
}

/// A Uint32Array output argument `out` as a mutable word slice, checked not to
/// overlap `input` (`RangeError` with `overlap_message`), as the twins do.
///
/// Safety: the caller creates no other slice of `out`'s memory while the
/// returned one lives, and only reads `input`.
#[inline(always)]
pub(crate) unsafe fn u32_out<'a>(
    cx: Cx,
    out: napi_value,
    input: View,
    overlap_message: &str,
) -> Call<&'a mut [u32]> {
    let o = typed_array(
        cx,
        out,
        sys::TypedarrayType::uint32_array,
        "out",
        "Uint32Array",
    )?;
    disjoint(cx, input, o, overlap_message)?;
    if o.len == 0 {
        return Ok(&mut []);
    }
    if !(o.ptr as usize).is_multiple_of(std::mem::align_of::<u32>()) {
        // Unreachable: a Uint32Array's byteOffset is a multiple of 4 and
        // ArrayBuffer storage is at least 8-byte aligned.
        return Err(cx.range_error("out is not 4-byte aligned".to_owned()));
    }
    // Safety: aligned and valid for o.len bytes; exclusivity is the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(o.ptr.cast::<u32>(), o.len / 4) })
}

/// The node buffer argument `name` and its cell count, header checked.
#[inline(always)]
fn node_arg(cx: Cx, value: napi_value, kind: Kind, name: &str) -> Call<(View, usize)> {
    let v = u8_array(cx, value, name)?;
    // Safety: a shared view; no &mut to this memory exists yet.
    let count = cx.check(node::check_node(unsafe { v.bytes() }, kind, name))?;
    Ok((v, count))
}

// ---- return values ------------------------------------------------------------

#[inline(always)]
fn undefined(cx: Cx) -> Call<napi_value> {
    let mut v = ptr::null_mut();
    // Safety: live env.
    unsafe { sys::napi_get_undefined(cx.0, &mut v) };
    Ok(v)
}

#[inline(always)]
fn boolean(cx: Cx, b: bool) -> Call<napi_value> {
    let mut v = ptr::null_mut();
    // Safety: live env.
    unsafe { sys::napi_get_boolean(cx.0, b, &mut v) };
    Ok(v)
}

#[inline(always)]
pub(crate) fn uint32(cx: Cx, n: u32) -> Call<napi_value> {
    let mut v = ptr::null_mut();
    // Safety: live env.
    unsafe { sys::napi_create_uint32(cx.0, n, &mut v) };
    Ok(v)
}

// ---- the kernels ----------------------------------------------------------------

/// crc32c(data, seed?): CRC-32C of data continuing from seed (0 when undefined).
/// A raw callback like the others: through `#[napi]` it cost ~155 ns on a
/// 116-byte record, slower than the TypeScript twin (~90 ns).
fn crc32c(cx: Cx, [data, seed]: [napi_value; 2]) -> Call<napi_value> {
    let d = u8_array(cx, data, "data")?;
    let mut t: sys::napi_valuetype = sys::ValueType::napi_undefined;
    // Safety: live env and argument value.
    unsafe { sys::napi_typeof(cx.0, seed, &mut t) };
    let s = if t == sys::ValueType::napi_undefined {
        0
    } else {
        let n = number(cx, seed, "seed")?;
        if n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n) {
            n as u32
        } else {
            return Err(cx.range_error("seed must be an integer from 0 to 0xFFFFFFFF".to_owned()));
        }
    };
    // Safety: a shared view; nothing else borrows it.
    uint32(cx, crate::kernels::crc32c::crc32c(unsafe { d.bytes() }, s))
}

/// pageSeal(page): writes the page CRC and then the header CRC (spec §2.2).
fn page_seal(cx: Cx, [page]: [napi_value; 1]) -> Call<napi_value> {
    let p = u8_array(cx, page, "page")?;
    // Safety: the only view of this call.
    cx.check(page::page_seal(unsafe { p.bytes_mut() }))?;
    undefined(cx)
}

/// pageVerify(page, expectedPageId): the first failing status of spec §2.3, or 0.
fn page_verify(cx: Cx, [page, expected_page_id]: [napi_value; 2]) -> Call<napi_value> {
    let p = u8_array(cx, page, "page")?;
    // Safety: shared views only.
    let bytes = unsafe { p.bytes() };
    cx.check(page::check_page(bytes))?;
    let id = safe_integer(cx, expected_page_id, "expectedPageId")?;
    let status = cx.check(page::page_verify(bytes, id))?;
    uint32(cx, status)
}

/// leafSearch(page, key): 2 × index + found (spec §4.3).
fn leaf_search(cx: Cx, [page, key]: [napi_value; 2]) -> Call<napi_value> {
    let (p, _) = node_arg(cx, page, Kind::Leaf, "page")?;
    let k = u8_array(cx, key, "key")?;
    // Safety: shared views only (they may overlap).
    let r = cx.check(search::leaf_search(unsafe { p.bytes() }, unsafe {
        k.bytes()
    }))?;
    uint32(cx, r)
}

/// branchSearch(page, key): the child index for `key` (spec §4.3).
fn branch_search(cx: Cx, [page, key]: [napi_value; 2]) -> Call<napi_value> {
    let (p, _) = node_arg(cx, page, Kind::Branch, "page")?;
    let k = u8_array(cx, key, "key")?;
    // Safety: shared views only (they may overlap).
    let r = cx.check(search::branch_search(unsafe { p.bytes() }, unsafe {
        k.bytes()
    }))?;
    uint32(cx, r)
}

/// leafInsert(page, index, key, inline, vlenField): false, node unchanged, when it does not fit.
fn leaf_insert(cx: Cx, [page, at, key, inline, vlen_field]: [napi_value; 5]) -> Call<napi_value> {
    let (p, count) = node_arg(cx, page, Kind::Leaf, "page")?;
    let i = index(cx, at, count as f64, "index")?;
    let k = u8_array(cx, key, "key")?;
    let v = u8_array(cx, inline, "value")?;
    let vlen = index(cx, vlen_field, u32::MAX as f64, "vlenField")? as u32;
    disjoint(cx, p, k, "key overlaps the page")?;
    disjoint(cx, p, v, "value overlaps the page")?;
    // Safety: key and value do not overlap the page (checked just above).
    let ok = cx.check(node::leaf_insert(
        unsafe { p.bytes_mut() },
        i,
        unsafe { k.bytes() },
        unsafe { v.bytes() },
        vlen,
    ))?;
    boolean(cx, ok)
}

/// branchInsert(page, index, key, child, childTxn): false, node unchanged, when it does not fit.
fn branch_insert(cx: Cx, [page, at, key, child, txn]: [napi_value; 5]) -> Call<napi_value> {
    let (p, count) = node_arg(cx, page, Kind::Branch, "page")?;
    let i = index(cx, at, count as f64, "index")?;
    let k = u8_array(cx, key, "key")?;
    let c = safe_integer(cx, child, "child")?;
    let t = safe_integer(cx, txn, "childTxn")?;
    disjoint(cx, p, k, "key overlaps the page")?;
    // Safety: the key does not overlap the page (checked just above).
    let ok = cx.check(node::branch_insert(
        unsafe { p.bytes_mut() },
        i,
        unsafe { k.bytes() },
        c,
        t,
    ))?;
    boolean(cx, ok)
}

/// nodeRemove(page, index) (spec §4.4).
fn node_remove(cx: Cx, [page, at]: [napi_value; 2]) -> Call<napi_value> {
    let (p, count) = node_arg(cx, page, Kind::Any, "page")?;
    let i = index(cx, at, count as f64 - 1.0, "index")?;
    // Safety: the only view of this call.
    cx.check(node::node_remove(unsafe { p.bytes_mut() }, i))?;
    undefined(cx)
}

/// nodeCompact(page): cells rewritten contiguously at the end, slot 0 highest.
fn node_compact(cx: Cx, [page]: [napi_value; 1]) -> Call<napi_value> {
    let p = u8_array(cx, page, "page")?;
    // Safety: the only view of this call.
    cx.check(node::node_compact(unsafe { p.bytes_mut() }))?;
    undefined(cx)
}

/// Checks the two node arguments of split and merge in the twin's order:
/// first node, second node, overlap, then equal types.
fn node_pair(
    cx: Cx,
    first: napi_value,
    first_name: &str,
    second: napi_value,
    second_name: &str,
) -> Call<(View, usize, View)> {
    let (a, a_count) = node_arg(cx, first, Kind::Any, first_name)?;
    let (b, _) = node_arg(cx, second, Kind::Any, second_name)?;
    disjoint(cx, a, b, "src and dst overlap")?;
    // Safety: both views are valid and disjoint; shared reads only.
    let (ta, tb) = unsafe {
        (
            a.bytes().get(layout::TYPE_OFFSET),
            b.bytes().get(layout::TYPE_OFFSET),
        )
    };
    if ta != tb {
        return Err(cx.range_error("src and dst are nodes of different types".to_owned()));
    }
    Ok((a, a_count, b))
}

/// nodeSplit(src, dst, at): false, both unchanged, when dst cannot hold the cells.
fn node_split(cx: Cx, [src, dst, at]: [napi_value; 3]) -> Call<napi_value> {
    let (s, count, d) = node_pair(cx, src, "src", dst, "dst")?;
    let at = index(cx, at, count as f64, "at")?;
    // Safety: src and dst are disjoint (node_pair), so two &mut slices are sound.
    let ok = cx.check(node::node_split(
        unsafe { s.bytes_mut() },
        unsafe { d.bytes_mut() },
        at,
    ))?;
    boolean(cx, ok)
}

/// nodeMerge(dst, src): false, dst unchanged, when the cells do not fit.
fn node_merge(cx: Cx, [dst, src]: [napi_value; 2]) -> Call<napi_value> {
    let (d, _, s) = node_pair(cx, dst, "dst", src, "src")?;
    // Safety: src and dst are disjoint (node_pair).
    let ok = cx.check(node::node_merge(unsafe { d.bytes_mut() }, unsafe {
        s.bytes()
    }))?;
    boolean(cx, ok)
}

/// nodeDecode(page, out): four u32 per cell into `out`; returns the cell count.
fn node_decode(cx: Cx, [page, out]: [napi_value; 2]) -> Call<napi_value> {
    let (p, _) = node_arg(cx, page, Kind::Any, "page")?;
    // Safety: the output is checked disjoint from the page, which is only read.
    let words = unsafe { u32_out(cx, out, p, "out overlaps the page")? };
    let n = cx.check(node::node_decode(unsafe { p.bytes() }, words))?;
    uint32(cx, n)
}

// ---- callbacks and registration ---------------------------------------------------

/// Runs `kernel` with the call's first N arguments (missing ones are
/// `undefined`, as N-API fills them), turning a panic into a thrown Error.
#[inline(always)]
pub(crate) unsafe fn dispatch<const N: usize>(
    env: napi_env,
    info: sys::napi_callback_info,
    kernel: fn(Cx, [napi_value; N]) -> Call<napi_value>,
) -> napi_value {
    let cx = Cx(env);
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    // Safety: env and info are this callback's.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok {
        // Safety: live env; the message is a valid C string.
        unsafe {
            sys::napi_throw_error(
                env,
                ptr::null(),
                c"northstar-native: cannot read the arguments".as_ptr(),
            )
        };
        return ptr::null_mut();
    }
    match catch_unwind(AssertUnwindSafe(|| kernel(cx, argv))) {
        Ok(Ok(v)) => v,
        Ok(Err(Thrown)) => ptr::null_mut(),
        Err(_) => {
            // Safety: as above. A kernel never panics by design; if one does,
            // the JavaScript caller gets an Error instead of a dead process.
            unsafe {
                sys::napi_throw_error(
                    env,
                    ptr::null(),
                    c"northstar-native: kernel panicked".as_ptr(),
                )
            };
            ptr::null_mut()
        }
    }
}

macro_rules! callbacks {
    ($($js:literal => $cb:ident($kernel:ident, $n:literal);)*) => {
        $(
            unsafe extern "C" fn $cb(
                env: ::napi::sys::napi_env,
                info: ::napi::sys::napi_callback_info,
            ) -> ::napi::sys::napi_value {
                unsafe { dispatch::<$n>(env, info, $kernel) }
            }
        )*

        /// Name and callback of every export of this module.
        pub(crate) const EXPORTS: &[(
            &::std::ffi::CStr,
            unsafe extern "C" fn(::napi::sys::napi_env, ::napi::sys::napi_callback_info) -> ::napi::sys::napi_value,
        )] =
            &[$(($js, $cb)),*];
    };
}
pub(crate) use callbacks;

callbacks! {
    c"crc32c" => crc32c_cb(crc32c, 2);
    c"pageSeal" => page_seal_cb(page_seal, 1);
    c"pageVerify" => page_verify_cb(page_verify, 2);
    c"leafSearch" => leaf_search_cb(leaf_search, 2);
    c"branchSearch" => branch_search_cb(branch_search, 2);
    c"leafInsert" => leaf_insert_cb(leaf_insert, 5);
    c"branchInsert" => branch_insert_cb(branch_insert, 5);
    c"nodeRemove" => node_remove_cb(node_remove, 2);
    c"nodeCompact" => node_compact_cb(node_compact, 1);
    c"nodeSplit" => node_split_cb(node_split, 3);
    c"nodeMerge" => node_merge_cb(node_merge, 2);
    c"nodeDecode" => node_decode_cb(node_decode, 2);
}

/// Adds the kernel functions of this module, of `napi::log` and of
/// `napi::cartridge` to the module's exports at load.
#[napi(module_exports)]
pub fn register_kernels(exports: Object, env: Env) -> Result<()> {
    let all = EXPORTS
        .iter()
        .chain(crate::napi::log::EXPORTS)
        .chain(crate::napi::cartridge::EXPORTS);
    for (name, cb) in all {
        let mut f = ptr::null_mut();
        // Safety: live env at module init; `name` is a NUL-terminated literal.
        let status = unsafe {
            sys::napi_create_function(
                env.raw(),
                name.as_ptr(),
                name.count_bytes() as isize,
                Some(*cb),
                ptr::null_mut(),
                &mut f,
            )
        };
        if status == sys::Status::napi_ok {
            // Safety: as above; `exports` is the module's exports object.
            unsafe { sys::napi_set_named_property(env.raw(), exports.raw(), name.as_ptr(), f) };
        }
    }
    Ok(())
}
