//! The node kernels on arbitrary node bytes (spec/file_format_v1.md §4.3–§4.4):
//! decode, search, insert, remove, compact, split and merge must return a
//! result or a KernelError for any bytes, never panic and never index outside
//! the buffers (a slice index out of bounds is a panic, which libFuzzer reports).
//!
//! Input: byte 0 control (bits 0–1 page size 4096 << n, bits 2–4 the operation),
//! bytes 1–2 a u16 argument (index or split point), then the node bytes (padded
//! or cut to the page size), then whatever follows is the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use northstar_native::kernels::layout::*;
use northstar_native::kernels::node::{branch_insert, check_node, leaf_insert, node_compact, node_decode, node_merge, node_remove, node_split, Kind};
use northstar_native::kernels::search::{branch_search, leaf_search};

/// Decodes every cell and checks each reported range lies inside the page.
fn decode_checked(page: &[u8]) {
    let Ok(count) = check_node(page, Kind::Any, "page") else { return };
    let mut out = vec![0u32; count * 4];
    if let Ok(n) = node_decode(page, &mut out) {
        assert_eq!(n as usize, count);
        let leaf = page[TYPE_OFFSET] == PAGE_TYPE_LEAF;
        for c in out.chunks_exact(4) {
            let key_end = c[0] as usize + c[1] as usize;
            assert!(key_end <= page.len(), "key of a decoded cell runs past the page");
            if leaf {
                let vlen = if c[3] >= VALUE_OVERFLOW_BIT { OVERFLOW_REF_SIZE } else { c[3] as usize };
                assert_eq!(c[2] as usize, key_end);
                assert!(key_end + vlen <= page.len(), "value of a decoded cell runs past the page");
            }
        }
    }
}

/// An empty node of the same type and size as `page`.
fn empty_like(page: &[u8]) -> Vec<u8> {
    let mut n = vec![0u8; page.len()];
    n[..HEADER_SIZE].copy_from_slice(&page[..HEADER_SIZE]);
    n[NODE_COUNT_OFFSET..NODE_COUNT_OFFSET + 2].copy_from_slice(&0u16.to_le_bytes());
    n[NODE_DEAD_OFFSET..NODE_DEAD_OFFSET + 2].copy_from_slice(&0u16.to_le_bytes());
    n[NODE_CELL_START_OFFSET..NODE_CELL_START_OFFSET + 4].copy_from_slice(&(page.len() as u32).to_le_bytes());
    n
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let ctl = data[0];
    let arg = usize::from(u16::from_le_bytes([data[1], data[2]]));
    let rest = &data[3..];
    let size = 4096usize << (ctl & 3);
    let mut page = vec![0u8; size];
    let n = rest.len().min(size);
    page[..n].copy_from_slice(&rest[..n]);
    let key = &rest[n..];
    decode_checked(&page);
    let count = check_node(&page, Kind::Any, "page").unwrap_or(0);
    let index = if count == 0 { 0 } else { arg % (count + 1) };
    match (ctl >> 2) & 7 {
        0 => {
            let _ = leaf_search(&page, key);
            let _ = branch_search(&page, key);
        }
        1 => {
            let inline: Vec<u8> = key.iter().rev().copied().collect();
            // On a corrupt node the new cell may overwrite a stray cell: later calls may
            // then fail, which is fine; they must not panic.
            if let Ok(true) = leaf_insert(&mut page, index, key, &inline, inline.len() as u32) {
                let _ = leaf_search(&page, key);
            }
            let _ = leaf_insert(&mut page, arg, key, &[7u8; OVERFLOW_REF_SIZE], VALUE_OVERFLOW_BIT | 5000);
        }
        2 => {
            let _ = branch_insert(&mut page, index, key, (arg as u64) << 20 | 2, arg as u64);
        }
        3 => {
            let _ = node_remove(&mut page, if count == 0 { arg } else { arg % count });
        }
        4 => {
            let _ = node_compact(&mut page);
        }
        5 => {
            let mut dst = empty_like(&page);
            if let Ok(true) = node_split(&mut page, &mut dst, index) {
                decode_checked(&dst);
                let _ = node_merge(&mut page, &dst);
            }
        }
        6 => {
            let src = page.clone();
            let mut dst = empty_like(&page);
            let _ = node_merge(&mut dst, &src);
            decode_checked(&dst);
            let _ = node_merge(&mut page, &src);
        }
        _ => {
            // A node in a double-size scratch buffer (the kernels accept 4 KiB … 64 KiB).
            let mut big = vec![0u8; size * 2];
            big[..size].copy_from_slice(&page);
            let _ = node_compact(&mut big);
            decode_checked(&big);
            page = big;
        }
    }
    decode_checked(&page);
});
