//! N-API exports of the page and node kernels (spec/file_format_v0.md §2, §4):
//! `pageSeal`, `pageVerify`, `leafSearch`, `branchSearch`, `leafInsert`,
//! `branchInsert`, `nodeRemove`, `nodeCompact`, `nodeSplit`, `nodeMerge`,
//! `nodeDecode`, with the signatures of `Kernels` in `ts/native/kernels.ts`.
//!
//! Each export checks its arguments in exactly the order its TypeScript twin
//! (`ts/native/fallback.ts`) does, so the same bad call throws the same error
//! class: for every argument in turn, its type (`TypeError`), then its value
//! (`RangeError`), with a node's header checked right after the node buffer.
//! Numbers arrive as JavaScript doubles and are range-checked here, since
//! napi-rs's u32 conversion would silently wrap -1 or 2^33.
//!
//! Buffers are borrowed in place through `napi_get_typedarray_info`: no copy,
//! no allocation on the success path. The slices live for the duration of the
//! call only (no JavaScript runs meanwhile, so the buffer can be neither
//! detached nor resized). Two buffers that share bytes are rejected with a
//! `RangeError` before any `&mut` slice exists, because an aliased `&mut` is
//! undefined behaviour.

use std::ptr::{self, NonNull};

use napi::sys;
use napi::{Env, Error, JsValue, Result, Unknown};
use napi_derive::napi;

use crate::error::KernelError;
use crate::napi::{throw_range_error, throw_type_error};
use crate::node::{self, Kind};
use crate::{layout, page, search};

/// A typed array's bytes as the engine sees them: start and length in bytes.
#[derive(Clone, Copy)]
struct View {
    ptr: *mut u8,
    len: usize,
}

impl View {
    /// Safety: the view came from a live argument of the current call, and no
    /// `&mut` to an overlapping view exists while the slice lives.
    #[inline(always)]
    unsafe fn bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Safety: as `bytes`, and no other slice overlapping the view exists.
    #[inline(always)]
    unsafe fn bytes_mut<'a>(self) -> &'a mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// True when both views are non-empty and share at least one byte.
    #[inline(always)]
    fn overlaps(self, other: View) -> bool {
        let (a, b) = (self.ptr as usize, other.ptr as usize);
        self.len > 0
            && other.len > 0
            && a < b.wrapping_add(other.len)
            && b < a.wrapping_add(self.len)
    }
}

/// Converts a kernel error into the matching JavaScript exception.
#[cold]
fn throw(env: &Env, err: KernelError) -> Error {
    match err {
        KernelError::Type(m) => throw_type_error(env, m),
        KernelError::Range(m) => throw_range_error(env, m),
    }
}

#[inline(always)]
fn check<T>(env: &Env, r: std::result::Result<T, KernelError>) -> Result<T> {
    r.map_err(|e| throw(env, e))
}

/// A typed array argument of element type `want`; `TypeError` otherwise.
#[inline(always)]
fn typed_array(
    env: &Env,
    value: &Unknown,
    want: sys::napi_typedarray_type,
    name: &str,
    class: &str,
) -> Result<View> {
    let mut kind: sys::napi_typedarray_type = -1;
    let mut length = 0usize;
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    // Safety: env and value are live for this call; unwanted outputs may be null.
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env.raw(),
            value.raw(),
            &mut kind,
            &mut length,
            &mut data,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok || kind != want {
        return Err(throw_type_error(env, format!("{name} must be a {class}")));
    }
    let bytes = if want == sys::TypedarrayType::uint32_array {
        length * 4
    } else {
        length
    };
    let ptr = if bytes == 0 || data.is_null() {
        NonNull::dangling().as_ptr()
    } else {
        data.cast::<u8>()
    };
    Ok(View {
        ptr,
        len: if data.is_null() { 0 } else { bytes },
    })
}

#[inline(always)]
fn u8_array(env: &Env, value: &Unknown, name: &str) -> Result<View> {
    typed_array(
        env,
        value,
        sys::TypedarrayType::uint8_array,
        name,
        "Uint8Array",
    )
}

/// A JavaScript number argument; `TypeError` for any other type (BigInt included).
#[inline(always)]
fn number(env: &Env, value: &Unknown, name: &str) -> Result<f64> {
    let mut n = 0f64;
    // Safety: as in `typed_array`; fails with napi_number_expected, without throwing, for a non-number.
    let status = unsafe { sys::napi_get_value_double(env.raw(), value.raw(), &mut n) };
    if status != sys::Status::napi_ok {
        return Err(throw_type_error(env, format!("{name} must be a number")));
    }
    Ok(n)
}

/// An integer in `0..=max` (the twin's `checkIndex`); `max` may be -1 (no valid index).
#[inline(always)]
fn index(env: &Env, value: &Unknown, max: f64, name: &str) -> Result<usize> {
    let n = number(env, value, name)?;
    if n.fract() == 0.0 && n >= 0.0 && n <= max {
        Ok(n as usize)
    } else {
        Err(throw_range_error(
            env,
            format!("{name} {n} out of range 0..{max}"),
        ))
    }
}

/// A non-negative safe integer (the twin's `checkId`): a page id.
#[inline(always)]
fn page_id(env: &Env, value: &Unknown, name: &str) -> Result<u64> {
    let n = number(env, value, name)?;
    if n.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&n) {
        Ok(n as u64)
    } else {
        Err(throw_range_error(
            env,
            format!("{name} must be a non-negative safe integer"),
        ))
    }
}

#[inline(always)]
fn disjoint(env: &Env, page: View, other: View, message: &str) -> Result<()> {
    if page.overlaps(other) {
        return Err(throw_range_error(env, message.to_owned()));
    }
    Ok(())
}

/// The node buffer argument `name` and its cell count, header checked.
#[inline(always)]
fn node_arg(env: &Env, value: &Unknown, kind: Kind, name: &str) -> Result<(View, usize)> {
    let v = u8_array(env, value, name)?;
    // Safety: a shared view; no &mut to this memory exists yet.
    let count = check(env, node::check_node(unsafe { v.bytes() }, kind, name))?;
    Ok((v, count))
}

/// Writes the page CRC and then the header CRC (spec §2.2).
#[napi(
    catch_unwind,
    ts_args_type = "page: Uint8Array",
    ts_return_type = "void"
)]
pub fn page_seal(env: Env, page: Unknown) -> Result<()> {
    let p = u8_array(&env, &page, "page")?;
    // Safety: the only view of this call.
    check(&env, page::page_seal(unsafe { p.bytes_mut() }))
}

/// Checks a page in the order of spec §2.3; returns the first failing status, or 0.
#[napi(
    catch_unwind,
    ts_args_type = "page: Uint8Array, expectedPageId: number",
    ts_return_type = "number"
)]
pub fn page_verify(env: Env, page: Unknown, expected_page_id: Unknown) -> Result<u32> {
    let p = u8_array(&env, &page, "page")?;
    // Safety: shared views only.
    let bytes = unsafe { p.bytes() };
    check(&env, page::check_page(bytes))?;
    let id = page_id(&env, &expected_page_id, "expectedPageId")?;
    check(&env, page::page_verify(bytes, id))
}

/// Leaf lower bound: 2 × index + found (spec §4.3).
#[napi(
    catch_unwind,
    ts_args_type = "page: Uint8Array, key: Uint8Array",
    ts_return_type = "number"
)]
pub fn leaf_search(env: Env, page: Unknown, key: Unknown) -> Result<u32> {
    let (p, _) = node_arg(&env, &page, Kind::Leaf, "page")?;
    let k = u8_array(&env, &key, "key")?;
    // Safety: shared views only (they may overlap).
    check(
        &env,
        search::leaf_search(unsafe { p.bytes() }, unsafe { k.bytes() }),
    )
}

/// Branch routing: the child index for `key` (spec §4.3).
#[napi(
    catch_unwind,
    ts_args_type = "page: Uint8Array, key: Uint8Array",
    ts_return_type = "number"
)]
pub fn branch_search(env: Env, page: Unknown, key: Unknown) -> Result<u32> {
    let (p, _) = node_arg(&env, &page, Kind::Branch, "page")?;
    let k = u8_array(&env, &key, "key")?;
    // Safety: shared views only (they may overlap).
    check(
        &env,
        search::branch_search(unsafe { p.bytes() }, unsafe { k.bytes() }),
    )
}

/// Inserts a leaf cell at slot `index`; false, node unchanged, when it does not fit.
#[napi(
    catch_unwind,
    ts_args_type = "page: Uint8Array, index: number, key: Uint8Array, inline: Uint8Array, vlenField: number",
    ts_return_type = "boolean"
)]
pub fn leaf_insert(
    env: Env,
    page: Unknown,
    index: Unknown,
    key: Unknown,
    inline: Unknown,
    vlen_field: Unknown,
) -> Result<bool> {
    let (p, count) = node_arg(&env, &page, Kind::Leaf, "page")?;
    let i = self::index(&env, &index, count as f64, "index")?;
    let k = u8_array(&env, &key, "key")?;
    let v = u8_array(&env, &inline, "value")?;
    let vlen = self::index(&env, &vlen_field, u32::MAX as f64, "vlenField")? as u32;
    disjoint(&env, p, k, "key overlaps the page")?;
    disjoint(&env, p, v, "value overlaps the page")?;
    // Safety: key and value do not overlap the page (checked just above).
    check(
        &env,
        node::leaf_insert(
            unsafe { p.bytes_mut() },
            i,
            unsafe { k.bytes() },
            unsafe { v.bytes() },
            vlen,
        ),
    )
}

/// Inserts a branch cell at slot `index`; false, node unchanged, when it does not fit.
#[napi(
    catch_unwind,
    ts_args_type = "page: Uint8Array, index: number, key: Uint8Array, child: number",
    ts_return_type = "boolean"
)]
pub fn branch_insert(
    env: Env,
    page: Unknown,
    index: Unknown,
    key: Unknown,
    child: Unknown,
) -> Result<bool> {
    let (p, count) = node_arg(&env, &page, Kind::Branch, "page")?;
    let i = self::index(&env, &index, count as f64, "index")?;
    let k = u8_array(&env, &key, "key")?;
    let c = page_id(&env, &child, "child")?;
    disjoint(&env, p, k, "key overlaps the page")?;
    // Safety: the key does not overlap the page (checked just above).
    check(
        &env,
        node::branch_insert(unsafe { p.bytes_mut() }, i, unsafe { k.bytes() }, c),
    )
}

/// Removes the cell at slot `index` (spec §4.4).
#[napi(
    catch_unwind,
    ts_args_type = "page: Uint8Array, index: number",
    ts_return_type = "void"
)]
pub fn node_remove(env: Env, page: Unknown, index: Unknown) -> Result<()> {
    let (p, count) = node_arg(&env, &page, Kind::Any, "page")?;
    let i = self::index(&env, &index, count as f64 - 1.0, "index")?;
    // Safety: the only view of this call.
    check(&env, node::node_remove(unsafe { p.bytes_mut() }, i))
}

/// Rewrites the cells contiguously at the end, slot 0 highest (spec §4.4).
#[napi(
    catch_unwind,
    ts_args_type = "page: Uint8Array",
    ts_return_type = "void"
)]
pub fn node_compact(env: Env, page: Unknown) -> Result<()> {
    let p = u8_array(&env, &page, "page")?;
    // Safety: the only view of this call.
    check(&env, node::node_compact(unsafe { p.bytes_mut() }))
}

/// Checks the two node arguments of split and merge, in the twin's order:
/// the first node, the second node, overlap, then equal types.
fn node_pair(
    env: &Env,
    first: &Unknown,
    first_name: &str,
    second: &Unknown,
    second_name: &str,
) -> Result<(View, usize, View, usize)> {
    let (a, a_count) = node_arg(env, first, Kind::Any, first_name)?;
    let (b, b_count) = node_arg(env, second, Kind::Any, second_name)?;
    disjoint(env, a, b, "src and dst overlap")?;
    // Safety: both views are valid and disjoint; shared reads only.
    let (ta, tb) = unsafe {
        (
            a.bytes().get(layout::TYPE_OFFSET),
            b.bytes().get(layout::TYPE_OFFSET),
        )
    };
    if ta != tb {
        return Err(throw_range_error(
            env,
            "src and dst are nodes of different types".to_owned(),
        ));
    }
    Ok((a, a_count, b, b_count))
}

/// Moves cells [at, count) of src to the end of dst, then truncates and
/// compacts src; false, both unchanged, when dst cannot hold them.
#[napi(
    catch_unwind,
    ts_args_type = "src: Uint8Array, dst: Uint8Array, at: number",
    ts_return_type = "boolean"
)]
pub fn node_split(env: Env, src: Unknown, dst: Unknown, at: Unknown) -> Result<bool> {
    let (s, count, d, _) = node_pair(&env, &src, "src", &dst, "dst")?;
    let at = index(&env, &at, count as f64, "at")?;
    // Safety: src and dst are disjoint (node_pair), so two &mut slices are sound.
    check(
        &env,
        node::node_split(unsafe { s.bytes_mut() }, unsafe { d.bytes_mut() }, at),
    )
}

/// Appends every cell of src to dst; false, dst unchanged, when they do not fit.
#[napi(
    catch_unwind,
    ts_args_type = "dst: Uint8Array, src: Uint8Array",
    ts_return_type = "boolean"
)]
pub fn node_merge(env: Env, dst: Unknown, src: Unknown) -> Result<bool> {
    let (d, _, s, _) = node_pair(&env, &dst, "dst", &src, "src")?;
    // Safety: src and dst are disjoint (node_pair).
    check(
        &env,
        node::node_merge(unsafe { d.bytes_mut() }, unsafe { s.bytes() }),
    )
}

/// Decodes every cell into `out`, four u32 per cell; returns the cell count.
#[napi(
    catch_unwind,
    ts_args_type = "page: Uint8Array, out: Uint32Array",
    ts_return_type = "number"
)]
pub fn node_decode(env: Env, page: Unknown, out: Unknown) -> Result<u32> {
    let (p, _) = node_arg(&env, &page, Kind::Any, "page")?;
    let o = typed_array(
        &env,
        &out,
        sys::TypedarrayType::uint32_array,
        "out",
        "Uint32Array",
    )?;
    disjoint(&env, p, o, "out overlaps the page")?;
    let words: &mut [u32] = if o.len == 0 {
        &mut []
    } else if !(o.ptr as usize).is_multiple_of(std::mem::align_of::<u32>()) {
        // Unreachable: a Uint32Array's byteOffset is a multiple of 4 and
        // ArrayBuffer storage is at least 8-byte aligned.
        return Err(throw_range_error(
            &env,
            "out is not 4-byte aligned".to_owned(),
        ));
    } else {
        // Safety: aligned, disjoint from the page, valid for o.len bytes.
        unsafe { std::slice::from_raw_parts_mut(o.ptr.cast::<u32>(), o.len / 4) }
    };
    // Safety: the page is only read, and `out` does not overlap it.
    check(&env, node::node_decode(unsafe { p.bytes() }, words))
}
