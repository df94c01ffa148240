//! Search kernels (spec/file_format_v1.md §4.3): binary search over a node's
//! slots, comparing keys as unsigned bytes (`<[u8]>::cmp`: memcmp over the
//! shorter length, then the shorter is less). TypeScript twin: `leafSearch`
//! and `branchSearch` in `ts/native/fallback.ts`.

use std::cmp::Ordering;

use crate::kernels::error::{range, KernelResult};
use crate::kernels::layout::{BRANCH_CELL_HEADER, LEAF_CELL_HEADER};
use crate::kernels::node::{check_node, key_length, slot_at, Kind};

/// The key of the cell at offset `o`, checked against the buffer.
#[inline(always)]
fn cell_key(page: &[u8], o: usize, leaf: bool) -> KernelResult<&[u8]> {
    let klen = key_length(page, o, leaf)?;
    let k = o + if leaf {
        LEAF_CELL_HEADER
    } else {
        BRANCH_CELL_HEADER
    };
    match page.get(k..k + klen) {
        Some(key) => Ok(key),
        None => range(format!("corrupt node: key at {o} runs past the end")),
    }
}

/// Asks the CPU to start loading the cell of slot `i` (no effect if out of
/// range or off x86-64). A binary search over a cold 16 KiB page waits on one
/// cache miss per probe; loading both possible next probes while comparing the
/// current one overlaps those misses.
#[inline(always)]
fn prefetch_cell(page: &[u8], i: usize, count: usize) {
    if i >= count {
        return;
    }
    let o = slot_at(page, i);
    if o < page.len() {
        #[cfg(target_arch = "x86_64")]
        // Safety: `o` is inside `page`; a prefetch never faults and changes no state.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(page.as_ptr().add(o) as *const i8);
        }
    }
}

/// Leaf lower bound: `2 × i + found`, where `i` is the index of the first cell
/// whose key is >= `key` (or the count) and `found` is 1 when it equals `key`.
pub fn leaf_search(page: &[u8], key: &[u8]) -> KernelResult<u32> {
    let count = check_node(page, Kind::Leaf, "page")?;
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = (lo + hi) >> 1;
        prefetch_cell(page, (lo + mid) >> 1, count);
        prefetch_cell(page, (mid + 1 + hi) >> 1, count);
        match cell_key(page, slot_at(page, mid), true)?.cmp(key) {
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
            Ordering::Equal => return Ok((mid * 2 + 1) as u32),
        }
    }
    Ok((lo * 2) as u32)
}

/// Branch routing: the number of separator keys <= `key`, which is the child
/// index (0 = leftmost child).
pub fn branch_search(page: &[u8], key: &[u8]) -> KernelResult<u32> {
    let count = check_node(page, Kind::Branch, "page")?;
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = (lo + hi) >> 1;
        prefetch_cell(page, (lo + mid) >> 1, count);
        prefetch_cell(page, (mid + 1 + hi) >> 1, count);
        if cell_key(page, slot_at(page, mid), false)? <= key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo as u32)
}
