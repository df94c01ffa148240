//! Slotted B+tree node kernels (spec/file_format_v1.md §4.1, §4.2, §4.4): the
//! node header check, cell sizes, insert, remove, compact, split, merge and
//! decode. TypeScript twin: the functions of the same names (camelCase) in
//! `ts/native/fallback.ts`; both give byte-identical pages, the same return
//! values and the same error class for the same calls, and
//! `ts/native/parity.test.ts` checks it on random inputs.
//!
//! Every offset read from the page is bounds-checked before it is used: a
//! corrupt node gives `KernelError::Range`, never a panic or an access outside
//! the slice. A kernel that returns `Ok(false)` has changed nothing.

use std::cell::RefCell;

use crate::kernels::error::{range, KernelError, KernelResult};
use crate::kernels::layout::bytes::{put_u16, put_u32, put_u64, u16_at, u32_at};
use crate::kernels::layout::*;

/// Which node types a kernel accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Leaf,
    Branch,
    Any,
}

#[inline(always)]
fn u16f(b: &[u8], o: usize) -> usize {
    u16_at(b, o).map_or(0, usize::from)
}

#[inline(always)]
fn u32f(b: &[u8], o: usize) -> usize {
    u32_at(b, o).map_or(0, |v| v as usize)
}

/// Offset of the cell that slot `i` points to. Slots below the count lie in
/// `[NODE_SLOTS_OFFSET, cellStart)`, inside the buffer, once `check_node` passed.
#[inline(always)]
pub(crate) fn slot_at(page: &[u8], i: usize) -> usize {
    u16f(page, NODE_SLOTS_OFFSET + i * SLOT_SIZE)
}

#[inline(always)]
fn is_leaf(page: &[u8]) -> bool {
    page.get(TYPE_OFFSET) == Some(&PAGE_TYPE_LEAF)
}

/// Validates the node header and returns the cell count: the buffer is a node
/// buffer size (4096 … 65536, a power of two), of the wanted kind, and its
/// slots and cell start lie inside it. `what` names the argument in messages.
pub fn check_node(page: &[u8], kind: Kind, what: &str) -> KernelResult<usize> {
    let len = page.len();
    if !(MIN_NODE_BUFFER..=MAX_NODE_BUFFER).contains(&len) || !len.is_power_of_two() {
        return range(format!("{what} length {len} is not a node buffer size"));
    }
    let t = page.get(TYPE_OFFSET).copied().unwrap_or(0);
    let ok = match kind {
        Kind::Leaf => t == PAGE_TYPE_LEAF,
        Kind::Branch => t == PAGE_TYPE_BRANCH,
        Kind::Any => t == PAGE_TYPE_LEAF || t == PAGE_TYPE_BRANCH,
    };
    if !ok {
        let name = match kind {
            Kind::Leaf => "leaf",
            Kind::Branch => "branch",
            Kind::Any => "node",
        };
        return range(format!("{what} is not a {name} page"));
    }
    let count = u16f(page, NODE_COUNT_OFFSET);
    let cell_start = u32f(page, NODE_CELL_START_OFFSET);
    if NODE_SLOTS_OFFSET + count * SLOT_SIZE > cell_start || cell_start > len {
        return range(format!(
            "corrupt node: {count} slots and cell start {cell_start}"
        ));
    }
    Ok(count)
}

/// Size in bytes of the cell at offset `o` (without its slot) of a node of
/// kind `leaf` and length `len` held in `buf`; errors if it leaves `len`.
fn cell_size_in(buf: &[u8], o: usize, leaf: bool, len: usize) -> KernelResult<usize> {
    let size = if leaf {
        if o + LEAF_CELL_HEADER > len {
            return range(format!("corrupt node: cell at {o}"));
        }
        let vlen = u32_at(buf, o + LEAF_CELL_VLEN).unwrap_or(0);
        let value = if vlen >= VALUE_OVERFLOW_BIT {
            OVERFLOW_REF_SIZE
        } else {
            vlen as usize
        };
        LEAF_CELL_HEADER + u16f(buf, o + LEAF_CELL_KLEN) + value
    } else {
        if o + BRANCH_CELL_HEADER > len {
            return range(format!("corrupt node: cell at {o}"));
        }
        BRANCH_CELL_HEADER + u16f(buf, o + BRANCH_CELL_KLEN)
    };
    if o + size > len {
        return range(format!("corrupt node: cell at {o} runs past the end"));
    }
    Ok(size)
}

#[inline(always)]
fn cell_size(page: &[u8], o: usize) -> KernelResult<usize> {
    cell_size_in(page, o, is_leaf(page), page.len())
}

/// Length of the key of the cell at `o`, checked against the buffer.
#[inline(always)]
pub(crate) fn key_length(page: &[u8], o: usize, leaf: bool) -> KernelResult<usize> {
    let (hdr, klen_at) = if leaf {
        (LEAF_CELL_HEADER, LEAF_CELL_KLEN)
    } else {
        (BRANCH_CELL_HEADER, BRANCH_CELL_KLEN)
    };
    if o + hdr > page.len() {
        return range(format!("corrupt node: cell at {o}"));
    }
    let klen = u16f(page, o + klen_at);
    if o + hdr + klen > page.len() {
        return range(format!("corrupt node: key at {o} runs past the end"));
    }
    Ok(klen)
}

/// Zeroes `page[from..to)`; an empty or out-of-range span is a no-op, as
/// `Uint8Array.prototype.fill` clamps.
#[inline(always)]
fn zero(page: &mut [u8], from: usize, to: usize) {
    let to = to.min(page.len());
    if let Some(s) = page.get_mut(from..to) {
        s.fill(0);
    }
}

#[cold]
fn internal(what: &str) -> KernelError {
    KernelError::Range(format!("corrupt node: {what}"))
}

thread_local! {
    /// Copy of the node being compacted; one node buffer at most.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0u8; MAX_NODE_BUFFER]);
}

/// Rewrites the cells contiguously at the end of the buffer, slot 0 highest;
/// zeroes the gap; dead = 0 (spec §4.4).
pub fn node_compact(page: &mut [u8]) -> KernelResult<()> {
    let count = check_node(page, Kind::Any, "page")?;
    compact_unchecked(page, count)
}

/// `node_compact` on a node whose header has been checked and whose count
/// field is `count`. Checks every cell before it changes anything.
fn compact_unchecked(page: &mut [u8], count: usize) -> KernelResult<()> {
    let len = page.len();
    let leaf = is_leaf(page);
    let base = NODE_SLOTS_OFFSET + count * SLOT_SIZE;
    let mut total = 0usize;
    for i in 0..count {
        total = total.saturating_add(cell_size(page, slot_at(page, i))?);
    }
    if total > len || len - total < base {
        return range("corrupt node: cells overlap the slots");
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut s) => compact_via(page, count, leaf, base, &mut s),
        // Only reachable by re-entry, which no kernel does; stay correct anyway.
        Err(_) => compact_via(page, count, leaf, base, &mut vec![0u8; MAX_NODE_BUFFER]),
    })
}

fn compact_via(
    page: &mut [u8],
    count: usize,
    leaf: bool,
    base: usize,
    scratch: &mut [u8],
) -> KernelResult<()> {
    let len = page.len();
    let copy = scratch
        .get_mut(..len)
        .ok_or_else(|| internal("buffer larger than scratch"))?;
    copy.copy_from_slice(page);
    let copy = &*copy;
    let mut pos = len;
    for i in 0..count {
        let o = slot_at(copy, i);
        let size = cell_size_in(copy, o, leaf, len)?;
        // total <= len - base bounds every pos from below by base.
        pos = pos
            .checked_sub(size)
            .filter(|&p| p >= base)
            .ok_or_else(|| internal("cells overlap"))?;
        let cell = copy
            .get(o..o + size)
            .ok_or_else(|| internal("cell past the end"))?;
        page.get_mut(pos..pos + size)
            .ok_or_else(|| internal("cell past the end"))?
            .copy_from_slice(cell);
        put_u16(page, NODE_SLOTS_OFFSET + i * SLOT_SIZE, pos as u16);
    }
    zero(page, base, pos);
    put_u32(page, NODE_CELL_START_OFFSET, pos as u32);
    put_u16(page, NODE_DEAD_OFFSET, 0);
    Ok(())
}

/// Makes room for `need` bytes (cell plus slot) and returns true, or returns
/// false, node unchanged, when even compaction cannot free that many. A dead
/// count larger than the node's dead bytes is a corrupt header: the node is
/// then compacted (same cells, same order) and the call fails with a range error.
fn reserve(page: &mut [u8], count: usize, need: usize) -> KernelResult<bool> {
    let base = NODE_SLOTS_OFFSET + count * SLOT_SIZE;
    let gap = u32f(page, NODE_CELL_START_OFFSET).saturating_sub(base);
    if gap >= need {
        return Ok(true);
    }
    if gap + u16f(page, NODE_DEAD_OFFSET) < need {
        return Ok(false);
    }
    compact_unchecked(page, count)?;
    if u32f(page, NODE_CELL_START_OFFSET).saturating_sub(base) < need {
        return range("corrupt node: dead byte count exceeds the unreferenced bytes");
    }
    Ok(true)
}

/// Opens slot `index` (shifting later slots up) pointing at a new cell of
/// `size` bytes at `cellStart - size`; returns its offset. `reserve` has
/// guaranteed `size + SLOT_SIZE` bytes of gap.
fn place_cell(page: &mut [u8], count: usize, index: usize, size: usize) -> KernelResult<usize> {
    let base = NODE_SLOTS_OFFSET + count * SLOT_SIZE;
    let at = u32f(page, NODE_CELL_START_OFFSET)
        .checked_sub(size)
        .filter(|&at| at >= base + SLOT_SIZE)
        .ok_or_else(|| internal("no room for the cell"))?;
    let s = NODE_SLOTS_OFFSET + index * SLOT_SIZE;
    if s > base {
        return Err(internal("slot index past the count"));
    }
    page.copy_within(s..base, s + SLOT_SIZE); // base + SLOT_SIZE <= at <= len
    put_u16(page, s, at as u16);
    put_u16(page, NODE_COUNT_OFFSET, (count + 1) as u16);
    put_u32(page, NODE_CELL_START_OFFSET, at as u32);
    Ok(at)
}

/// Copies `src` into `page` at `at`; the span was reserved by `place_cell`.
#[inline(always)]
fn put_bytes(page: &mut [u8], at: usize, src: &[u8]) -> KernelResult<()> {
    page.get_mut(at..at + src.len())
        .ok_or_else(|| internal("cell past the end"))?
        .copy_from_slice(src);
    Ok(())
}

fn check_index(index: usize, max_exclusive: usize, what: &str) -> KernelResult<()> {
    if index < max_exclusive {
        Ok(())
    } else {
        range(format!(
            "{what} {index} out of range 0..{}",
            max_exclusive as i64 - 1
        ))
    }
}

/// Inserts a leaf cell at slot `index` (0 … count). `vlen_field` is the stored
/// value-length field: the value's length, or `VALUE_OVERFLOW_BIT | length`
/// with the 16-byte overflow reference as `inline`. Ok(false), node unchanged,
/// when it does not fit.
pub fn leaf_insert(
    page: &mut [u8],
    index: usize,
    key: &[u8],
    inline: &[u8],
    vlen_field: u32,
) -> KernelResult<bool> {
    let count = check_node(page, Kind::Leaf, "page")?;
    check_index(index, count + 1, "index")?;
    if key.len() > 0xffff {
        return range("key longer than 65535 bytes");
    }
    let expected = if vlen_field >= VALUE_OVERFLOW_BIT {
        OVERFLOW_REF_SIZE
    } else {
        vlen_field as usize
    };
    if inline.len() != expected {
        return range(format!(
            "value length {} does not match vlenField",
            inline.len()
        ));
    }
    let size = LEAF_CELL_HEADER + key.len() + inline.len();
    if !reserve(page, count, size + SLOT_SIZE)? {
        return Ok(false);
    }
    let at = place_cell(page, count, index, size)?;
    put_u16(page, at + LEAF_CELL_KLEN, key.len() as u16);
    put_u32(page, at + LEAF_CELL_VLEN, vlen_field);
    put_bytes(page, at + LEAF_CELL_HEADER, key)?;
    put_bytes(page, at + LEAF_CELL_HEADER + key.len(), inline)?;
    Ok(true)
}

/// Inserts a branch cell (the child holds keys >= key) at slot `index`;
/// Ok(false), node unchanged, when it does not fit.
pub fn branch_insert(
    page: &mut [u8],
    index: usize,
    key: &[u8],
    child: u64,
    child_txn: u64,
) -> KernelResult<bool> {
    let count = check_node(page, Kind::Branch, "page")?;
    check_index(index, count + 1, "index")?;
    if key.len() > 0xffff {
        return range("key longer than 65535 bytes");
    }
    let size = BRANCH_CELL_HEADER + key.len();
    if !reserve(page, count, size + SLOT_SIZE)? {
        return Ok(false);
    }
    let at = place_cell(page, count, index, size)?;
    put_u64(page, at + BRANCH_CELL_CHILD, child);
    put_u64(page, at + BRANCH_CELL_CHILD_TXN, child_txn);
    put_u16(page, at + BRANCH_CELL_KLEN, key.len() as u16);
    put_bytes(page, at + BRANCH_CELL_HEADER, key)?;
    Ok(true)
}

/// Removes the cell at slot `index`. The lowest cell's bytes are zeroed and
/// cellStart moves up; any other cell's size is added to the dead bytes
/// (a u16 that wraps, as its TypeScript twin's `writeU16` does); removing the
/// last cell resets the node to empty.
pub fn node_remove(page: &mut [u8], index: usize) -> KernelResult<()> {
    let count = check_node(page, Kind::Any, "page")?;
    check_index(index, count, "index")?;
    let o = slot_at(page, index);
    let size = cell_size(page, o)?;
    let s = NODE_SLOTS_OFFSET + index * SLOT_SIZE;
    let end = NODE_SLOTS_OFFSET + count * SLOT_SIZE;
    page.copy_within(s + SLOT_SIZE..end, s); // end <= cellStart <= len
    zero(page, end - SLOT_SIZE, end);
    let len = page.len();
    if count == 1 {
        zero(page, NODE_SLOTS_OFFSET, len);
        put_u32(page, NODE_CELL_START_OFFSET, len as u32);
        put_u16(page, NODE_DEAD_OFFSET, 0);
    } else if o == u32f(page, NODE_CELL_START_OFFSET) {
        zero(page, o, o + size);
        put_u32(page, NODE_CELL_START_OFFSET, (o + size) as u32);
    } else {
        let dead = u16f(page, NODE_DEAD_OFFSET) + size;
        put_u16(page, NODE_DEAD_OFFSET, dead as u16);
    }
    put_u16(page, NODE_COUNT_OFFSET, (count - 1) as u16);
    Ok(())
}

/// Appends cells `[from, to)` of `src` to the end of `dst`; Ok(false), dst
/// unchanged, when they do not fit. Every source cell is checked first.
fn append_cells(
    dst: &mut [u8],
    mut dst_count: usize,
    src: &[u8],
    from: usize,
    to: usize,
) -> KernelResult<bool> {
    let mut need = 0usize;
    for i in from..to {
        need = need.saturating_add(cell_size(src, slot_at(src, i))? + SLOT_SIZE);
    }
    if !reserve(dst, dst_count, need)? {
        return Ok(false);
    }
    for i in from..to {
        let o = slot_at(src, i);
        let size = cell_size(src, o)?;
        let at = place_cell(dst, dst_count, dst_count, size)?;
        let cell = src
            .get(o..o + size)
            .ok_or_else(|| internal("cell past the end"))?;
        put_bytes(dst, at, cell)?;
        dst_count += 1;
    }
    Ok(true)
}

fn check_same_kind(a: &[u8], b: &[u8]) -> KernelResult<()> {
    if a.get(TYPE_OFFSET) != b.get(TYPE_OFFSET) {
        return range("src and dst are nodes of different types");
    }
    Ok(())
}

/// Moves cells `[at, count)` of `src` to the end of `dst`, then truncates
/// `src` to `at` cells and compacts it. Ok(false), both unchanged, when `dst`
/// cannot hold them. (Two `&mut` slices cannot overlap; the N-API layer
/// rejects overlapping JavaScript buffers before it makes them.)
pub fn node_split(src: &mut [u8], dst: &mut [u8], at: usize) -> KernelResult<bool> {
    let count = check_node(src, Kind::Any, "src")?;
    let dst_count = check_node(dst, Kind::Any, "dst")?;
    check_same_kind(src, dst)?;
    check_index(at, count + 1, "at")?;
    if !append_cells(dst, dst_count, src, at, count)? {
        return Ok(false);
    }
    zero(
        src,
        NODE_SLOTS_OFFSET + at * SLOT_SIZE,
        NODE_SLOTS_OFFSET + count * SLOT_SIZE,
    );
    put_u16(src, NODE_COUNT_OFFSET, at as u16);
    compact_unchecked(src, at)?;
    Ok(true)
}

/// Appends every cell of `src` to `dst`; Ok(false), dst unchanged, when they
/// do not fit.
pub fn node_merge(dst: &mut [u8], src: &[u8]) -> KernelResult<bool> {
    let dst_count = check_node(dst, Kind::Any, "dst")?;
    let count = check_node(src, Kind::Any, "src")?;
    check_same_kind(src, dst)?;
    append_cells(dst, dst_count, src, 0, count)
}

/// Decodes every cell into `out`, four u32 per cell: leaf `[keyOffset,
/// keyLength, valueOffset, vlenField]`, branch `[keyOffset, keyLength,
/// childLow, childHigh]`. Returns the cell count. On a corrupt cell the
/// entries of the cells before it have been written.
pub fn node_decode(page: &[u8], out: &mut [u32]) -> KernelResult<u32> {
    let count = check_node(page, Kind::Any, "page")?;
    if out.len() < count * 4 {
        return range(format!(
            "out holds {} cells, node has {count}",
            out.len() / 4
        ));
    }
    let leaf = is_leaf(page);
    let hdr = if leaf {
        LEAF_CELL_HEADER
    } else {
        BRANCH_CELL_HEADER
    };
    for (i, entry) in out.chunks_exact_mut(4).take(count).enumerate() {
        let o = slot_at(page, i);
        cell_size(page, o)?;
        let klen = key_length(page, o, leaf)?;
        let k = o + hdr;
        entry[0] = k as u32;
        entry[1] = klen as u32;
        if leaf {
            entry[2] = (k + klen) as u32;
            entry[3] = u32_at(page, o + LEAF_CELL_VLEN).unwrap_or(0);
        } else {
            entry[2] = u32_at(page, o + BRANCH_CELL_CHILD).unwrap_or(0);
            entry[3] = u32_at(page, o + BRANCH_CELL_CHILD + 4).unwrap_or(0);
        }
    }
    Ok(count as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::search::{branch_search, leaf_search};

    fn empty(kind: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[TYPE_OFFSET] = kind;
        put_u32(&mut p, NODE_CELL_START_OFFSET, len as u32);
        p
    }

    fn count(p: &[u8]) -> usize {
        u16f(p, NODE_COUNT_OFFSET)
    }
    fn cell_start(p: &[u8]) -> usize {
        u32f(p, NODE_CELL_START_OFFSET)
    }
    fn dead(p: &[u8]) -> usize {
        u16f(p, NODE_DEAD_OFFSET)
    }

    /// Keys of a leaf, in slot order.
    fn keys(p: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![0u32; count(p) * 4];
        let n = node_decode(p, &mut out).unwrap() as usize;
        (0..n)
            .map(|i| {
                let (k, l) = (out[i * 4] as usize, out[i * 4 + 1] as usize);
                p[k..k + l].to_vec()
            })
            .collect()
    }

    /// Inserts `key` with `value` in key order, as the engine does.
    fn put(p: &mut [u8], key: &[u8], value: &[u8]) -> bool {
        let r = leaf_search(p, key).unwrap();
        assert_eq!(r & 1, 0, "key already present");
        leaf_insert(p, (r >> 1) as usize, key, value, value.len() as u32).unwrap()
    }

    #[test]
    fn insert_keeps_slots_in_key_order_and_cells_grow_down() {
        let mut p = empty(PAGE_TYPE_LEAF, 4096);
        assert!(put(&mut p, b"m", b"1"));
        assert!(put(&mut p, b"c", b"22"));
        assert!(put(&mut p, b"x", b""));
        assert_eq!(keys(&p), [b"c".to_vec(), b"m".to_vec(), b"x".to_vec()]);
        // Cells: "m" (6+1+1=8) at 4088, "c" (6+1+2=9) at 4079, "x" (7) at 4072.
        assert_eq!(
            [slot_at(&p, 0), slot_at(&p, 1), slot_at(&p, 2)],
            [4079, 4088, 4072]
        );
        assert_eq!(cell_start(&p), 4072);
        assert_eq!(&p[4079..4088], &[1, 0, 2, 0, 0, 0, b'c', b'2', b'2']);

        assert_eq!(leaf_search(&p, b"c"), Ok(1));
        assert_eq!(leaf_search(&p, b"m"), Ok(3));
        assert_eq!(leaf_search(&p, b"x"), Ok(5));
        assert_eq!(leaf_search(&p, b""), Ok(0));
        assert_eq!(leaf_search(&p, b"d"), Ok(2));
        assert_eq!(leaf_search(&p, b"mm"), Ok(4));
        assert_eq!(leaf_search(&p, b"z"), Ok(6));
    }

    #[test]
    fn keys_compare_as_unsigned_bytes_then_length() {
        let mut p = empty(PAGE_TYPE_LEAF, 4096);
        for k in [
            &b"\xff"[..],
            b"\x00",
            b"\x7f",
            b"\x80",
            b"\x00\x00",
            b"a",
            b"ab",
        ] {
            assert!(put(&mut p, k, b"v"));
        }
        let want: Vec<Vec<u8>> = [
            &b"\x00"[..],
            b"\x00\x00",
            b"a",
            b"ab",
            b"\x7f",
            b"\x80",
            b"\xff",
        ]
        .iter()
        .map(|k| k.to_vec())
        .collect();
        assert_eq!(keys(&p), want);
    }

    #[test]
    fn branch_search_counts_separators_at_or_below_the_key() {
        let mut p = empty(PAGE_TYPE_BRANCH, 4096);
        put_u64(&mut p, NODE_LINK_OFFSET, 100);
        for (i, (k, child)) in [(&b"b"[..], 101u64), (b"d", 102), (b"f", 103)]
            .iter()
            .enumerate()
        {
            assert!(branch_insert(&mut p, i, k, *child, 7).unwrap());
        }
        let route = |k: &[u8]| branch_search(&p, k).unwrap();
        assert_eq!(
            [
                route(b"a"),
                route(b"b"),
                route(b"c"),
                route(b"d"),
                route(b"e"),
                route(b"f"),
                route(b"g")
            ],
            [0, 1, 1, 2, 2, 3, 3]
        );
        let mut out = [0u32; 12];
        assert_eq!(node_decode(&p, &mut out), Ok(3));
        // First cell (b, 101) at 4096 - 19: child 101, child txn 7, key at 4095, length 1.
        assert_eq!(&out[..4], &[4095, 1, 101, 0]);
        assert_eq!(u32_at(&p, 4096 - 19 + BRANCH_CELL_CHILD_TXN), Some(7));
        assert!(branch_insert(&mut p, 3, b"h", (1 << 53) - 1, (1 << 53) - 1).unwrap());
        let mut out = [0u32; 16];
        node_decode(&p, &mut out).unwrap();
        assert_eq!(&out[14..], &[0xffff_ffff, 0x1f_ffff]);
    }

    #[test]
    fn remove_lowest_cell_moves_cell_start_and_others_become_dead() {
        let mut p = empty(PAGE_TYPE_LEAF, 4096);
        put(&mut p, b"a", b"1"); // 8 bytes at 4088
        put(&mut p, b"b", b"2"); // at 4080
        put(&mut p, b"c", b"3"); // at 4072 (lowest)
        node_remove(&mut p, 2).unwrap();
        assert_eq!((count(&p), cell_start(&p), dead(&p)), (2, 4080, 0));
        assert!(p[4072..4080].iter().all(|&b| b == 0));
        assert_eq!(&p[NODE_SLOTS_OFFSET + 4..NODE_SLOTS_OFFSET + 6], &[0, 0]);
        node_remove(&mut p, 0).unwrap(); // "a" at 4088: not lowest
        assert_eq!((count(&p), cell_start(&p), dead(&p)), (1, 4080, 8));
        assert_eq!(keys(&p), [b"b".to_vec()]);
        node_remove(&mut p, 0).unwrap(); // last cell: node reset
        assert_eq!(p, empty(PAGE_TYPE_LEAF, 4096));
    }

    #[test]
    fn compact_writes_slot_zero_highest_and_zeroes_the_gap() {
        let mut p = empty(PAGE_TYPE_LEAF, 4096);
        for k in [b"c", b"a", b"b", b"d"] {
            put(&mut p, k, b"vv");
        }
        node_remove(&mut p, 1).unwrap(); // "b": dead
        node_compact(&mut p).unwrap();
        assert_eq!((count(&p), cell_start(&p), dead(&p)), (3, 4096 - 27, 0));
        assert_eq!(
            [slot_at(&p, 0), slot_at(&p, 1), slot_at(&p, 2)],
            [4087, 4078, 4069]
        );
        assert_eq!(keys(&p), [b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]);
        assert!(p[NODE_SLOTS_OFFSET + 6..4069].iter().all(|&b| b == 0));
    }

    #[test]
    fn insert_compacts_when_gap_plus_dead_suffices_and_fails_cleanly_otherwise() {
        let mut p = empty(PAGE_TYPE_LEAF, 4096);
        let v = vec![7u8; 990];
        for k in [b"a", b"b", b"c", b"d"] {
            assert!(put(&mut p, k, &v)); // 997 + 2 each
        }
        let before = p.clone();
        assert!(!put(&mut p, b"e", &v), "4 × 999 + 64 leaves 36 bytes");
        assert_eq!(p, before);
        node_remove(&mut p, 1).unwrap(); // "b" dead, 997 bytes
        assert!(put(&mut p, b"e", &v));
        assert_eq!(dead(&p), 0);
        assert_eq!(
            keys(&p),
            [b"a".to_vec(), b"c".to_vec(), b"d".to_vec(), b"e".to_vec()]
        );
    }

    #[test]
    fn overflow_reference_cells() {
        let mut p = empty(PAGE_TYPE_LEAF, 4096);
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&42u64.to_le_bytes());
        r[8..].copy_from_slice(&9u64.to_le_bytes());
        assert!(leaf_insert(&mut p, 0, b"k", &r, VALUE_OVERFLOW_BIT | 5000).unwrap());
        assert_eq!(cell_start(&p), 4096 - 23);
        let mut out = [0u32; 4];
        node_decode(&p, &mut out).unwrap();
        assert_eq!(out, [4079, 1, 4080, VALUE_OVERFLOW_BIT | 5000]);
        assert!(matches!(
            leaf_insert(&mut p, 0, b"j", &[0; 8], VALUE_OVERFLOW_BIT),
            Err(KernelError::Range(_))
        ));
        assert!(matches!(
            leaf_insert(&mut p, 0, b"j", &[0; 7], 8),
            Err(KernelError::Range(_))
        ));
    }

    #[test]
    fn split_and_merge() {
        let mut src = empty(PAGE_TYPE_LEAF, 4096);
        for k in [b"a", b"b", b"c", b"d", b"e"] {
            put(&mut src, k, b"val");
        }
        let mut dst = empty(PAGE_TYPE_LEAF, 4096);
        assert!(node_split(&mut src, &mut dst, 2).unwrap());
        assert_eq!(keys(&src), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(keys(&dst), [b"c".to_vec(), b"d".to_vec(), b"e".to_vec()]);
        assert_eq!((cell_start(&src), dead(&src)), (4096 - 20, 0));
        assert!(src[NODE_SLOTS_OFFSET + 4..4096 - 20]
            .iter()
            .all(|&b| b == 0));
        // Merge back: dst ← src order is the caller's; here src (a, b) then dst (c, d, e).
        assert!(node_merge(&mut src, &dst).unwrap());
        assert_eq!(keys(&src).len(), 5);
        // Split at count moves nothing.
        let mut d2 = empty(PAGE_TYPE_LEAF, 4096);
        assert!(node_split(&mut src, &mut d2, 5).unwrap());
        assert_eq!(count(&d2), 0);
        // Different kinds are a range error.
        let mut b = empty(PAGE_TYPE_BRANCH, 4096);
        assert!(matches!(
            node_merge(&mut b, &src),
            Err(KernelError::Range(_))
        ));
        assert!(matches!(
            node_split(&mut src, &mut d2, 6),
            Err(KernelError::Range(_))
        ));
    }

    #[test]
    fn split_that_does_not_fit_changes_nothing() {
        let mut src = empty(PAGE_TYPE_LEAF, 8192);
        let v = vec![1u8; 1500];
        for k in [b"a", b"b", b"c", b"d", b"e"] {
            assert!(put(&mut src, k, &v));
        }
        let mut dst = empty(PAGE_TYPE_LEAF, 4096);
        let (s0, d0) = (src.clone(), dst.clone());
        assert!(!node_split(&mut src, &mut dst, 1).unwrap());
        assert_eq!((src == s0, dst == d0), (true, true));
        assert!(node_split(&mut src, &mut dst, 3).unwrap());
    }

    #[test]
    fn scratch_node_of_65536_bytes() {
        let mut p = empty(PAGE_TYPE_LEAF, 65536);
        let v = vec![3u8; 2000];
        let mut i = 0u32;
        while put(&mut p, &i.to_be_bytes(), &v) {
            i += 1;
        }
        assert_eq!(i, 32); // 32 × 2012 + 56 <= 65536 < 33 × 2012 + 56
        node_compact(&mut p).unwrap();
        assert_eq!(slot_at(&p, 0), 65536 - 2010);
    }

    #[test]
    fn corrupt_nodes_are_range_errors_never_panics() {
        let mut p = empty(PAGE_TYPE_LEAF, 4096);
        put(&mut p, b"a", b"1");
        put(&mut p, b"b", b"2");
        let is_range = |r: KernelResult<()>| matches!(r, Err(KernelError::Range(_)));

        let mut q = p.clone();
        put_u16(&mut q, NODE_SLOTS_OFFSET, 4095); // slot points past the end
        assert!(matches!(leaf_search(&q, b"a"), Err(KernelError::Range(_))));
        assert!(is_range(node_compact(&mut q)));
        assert!(is_range(node_remove(&mut q, 0)));
        assert!(matches!(
            node_decode(&q, &mut [0; 8]),
            Err(KernelError::Range(_))
        ));

        let mut q = p.clone();
        put_u32(&mut q, NODE_CELL_START_OFFSET, 5000); // past the buffer
        assert!(matches!(leaf_search(&q, b"a"), Err(KernelError::Range(_))));
        let mut q = p.clone();
        put_u16(&mut q, NODE_COUNT_OFFSET, 3000); // slots past cell start
        assert!(is_range(node_compact(&mut q)));
        let mut q = p.clone();
        put_u16(&mut q, NODE_DEAD_OFFSET, 4000); // dead count that lies
        let before = q.clone();
        // gap 4020 < 4029 needed <= gap + dead, but compaction frees nothing.
        let r = leaf_insert(&mut q, 0, b"0", &[9; 4020], 4020);
        assert!(matches!(r, Err(KernelError::Range(_))), "{r:?}");
        assert_eq!(keys(&q), keys(&before));

        // Every kernel on every all-garbage byte pattern: errors or results, no panic.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            let mut g = vec![0u8; 4096];
            for b in g.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            g[TYPE_OFFSET] = if seed & 1 == 0 {
                PAGE_TYPE_LEAF
            } else {
                PAGE_TYPE_BRANCH
            };
            put_u16(&mut g, NODE_COUNT_OFFSET, (seed >> 8) as u16 % 40);
            put_u32(
                &mut g,
                NODE_CELL_START_OFFSET,
                200 + (seed >> 24) as u32 % 3900,
            );
            let _ = leaf_search(&g, b"key");
            let _ = branch_search(&g, b"key");
            let _ = node_decode(&g, &mut [0; 200]);
            let _ = node_compact(&mut g.clone());
            let _ = node_remove(&mut g.clone(), 0);
            let _ = leaf_insert(&mut g.clone(), 0, b"k", b"v", 1);
            let _ = branch_insert(&mut g.clone(), 0, b"k", 1, 1);
            let _ = node_split(&mut g.clone(), &mut empty(g[TYPE_OFFSET], 4096), 0);
            let _ = node_merge(&mut empty(g[TYPE_OFFSET], 4096), &g);
        }
    }

    #[test]
    fn wrong_buffer_lengths_and_types() {
        for len in [0usize, 4095, 6000, 131072] {
            let mut p = vec![0u8; len];
            assert!(matches!(node_compact(&mut p), Err(KernelError::Range(_))));
        }
        let mut meta = empty(PAGE_TYPE_META, 4096);
        assert!(matches!(
            node_compact(&mut meta),
            Err(KernelError::Range(_))
        ));
        let leaf = empty(PAGE_TYPE_LEAF, 4096);
        assert!(matches!(
            branch_search(&leaf, b""),
            Err(KernelError::Range(_))
        ));
        let mut leaf = leaf;
        assert!(matches!(
            node_remove(&mut leaf, 0),
            Err(KernelError::Range(_))
        ));
        assert!(matches!(
            leaf_insert(&mut leaf, 1, b"", b"", 0),
            Err(KernelError::Range(_))
        ));
    }
}
