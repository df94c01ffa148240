// Search hints for cached tree pages (spec/file_format_v1.md §9.2). In memory
// only: nothing here is written to the file.
//
// A hot point get is bound by cache misses, not by instructions: a binary
// search over a 16 KiB leaf touches the slot array and, for every probe, a
// cell somewhere else in the page, so about a dozen cache lines per get. The
// hints of a node (leaf or branch) are one small array: the first bytes every key of the page
// shares (the page's common prefix, at most HINT_PREFIX_MAX bytes) and, per
// cell, the 4 bytes of its key after that prefix as a big-endian u32. A search
// compares the key with the prefix, binary-searches the u32s (a few adjacent
// cache lines), and reads the page only to settle keys whose 4 bytes tie (for
// most keys, the one cell it then returns).
//
// On branch pages, whose few pages stay in the CPU's caches, the gain is the
// N-API call the search no longer makes (the search runs in JavaScript, for
// both implementations; the kernels stay the reference and the path for pages
// without hints).
//
// Order: all keys of a node share its prefix, and for two keys that share a
// prefix of `skip` bytes, hint(a) < hint(b) implies a < b (the first byte
// where the 4-byte windows differ is the first byte where the keys differ, a
// key that ends reading as 0 only where the other key's byte is > 0 or also
// ends). Equal hints decide nothing; those cells are compared in full.

import { readU16 } from '../format/bytes.js';
import { BRANCH_CELL_HEADER, BRANCH_CELL_KLEN, LEAF_CELL_HEADER, NODE_COUNT_OFFSET } from '../format/constants.js';
import { slotOffset } from '../format/page.js';

/** The most prefix bytes a hint array keeps; a longer common prefix is cut (still a common prefix). */
export const HINT_PREFIX_MAX = 32;

// Layout of a hint array (Uint32Array):
//   [0] count  [1] skip (prefix bytes)  [2] key offset in a cell (LEAF_CELL_HEADER or BRANCH_CELL_HEADER)
//   [3] klen field offset in a cell     [4, 4 + ceil(skip / 4)) the prefix, 4 bytes a word, big-endian, zero-padded
//   then count hints.
const H_COUNT = 0;
const H_SKIP = 1;
const H_KEY = 2;
const H_KLEN = 3;
const H_PREFIX = 4;

/** The 4 bytes of `bytes[from, from + len)` at `at` (relative to from) as a big-endian u32, zero past the end. */
function window4(bytes: Uint8Array, from: number, len: number, at: number): number {
  if (at + 4 <= len) {
    const o = from + at;
    return ((bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!) >>> 0;
  }
  // The key ends inside the window (a key's last bytes, the common case past a
  // long prefix): its 0-3 bytes left, high first, zeros after.
  const o = from + at;
  const n = len - at;
  let h = 0;
  if (n > 0) h = bytes[o]! << 24;
  if (n > 1) h |= bytes[o + 1]! << 16;
  if (n > 2) h |= bytes[o + 2]! << 8;
  return h >>> 0;
}

/** A new hint array of `words` words (buildHints' default allocator). */
function newHintArray(words: number): Uint32Array {
  return new Uint32Array(words);
}

/**
 * The hints of a verified node page (one whose cells lie inside it: the
 * pager's layout check), a leaf when `leaf`, else a branch. One pass over its
 * slots and keys. `take(words)` gives the array to fill, at least that long
 * (words past the hints are left as they are: the count is word 0); the
 * pager's cache hands back the array of a page it dropped (PageCache.takeHints),
 * since a new typed array costs as much as filling one.
 */
export function buildHints(page: Uint8Array, leaf: boolean, take: (words: number) => Uint32Array = newHintArray): Uint32Array {
  const keyAt = leaf ? LEAF_CELL_HEADER : BRANCH_CELL_HEADER;
  const klenAt = leaf ? 0 : BRANCH_CELL_KLEN;
  const count = readU16(page, NODE_COUNT_OFFSET);
  let skip = 0;
  if (count > 1) {
    const a = slotOffset(page, 0);
    const b = slotOffset(page, count - 1);
    const max = Math.min(readU16(page, a + klenAt), readU16(page, b + klenAt), HINT_PREFIX_MAX);
    while (skip < max && page[a + keyAt + skip] === page[b + keyAt + skip]) skip++;
  }
  const words = (skip + 3) >>> 2;
  const h = take(H_PREFIX + words + count);
  h[H_COUNT] = count;
  h[H_SKIP] = skip;
  h[H_KEY] = keyAt;
  h[H_KLEN] = klenAt;
  if (skip > 0) {
    const k0 = slotOffset(page, 0) + keyAt;
    for (let w = 0; w < words; w++) h[H_PREFIX + w] = window4(page, k0, skip, w * 4);
  }
  const base = H_PREFIX + words;
  for (let i = 0; i < count; i++) {
    const c = slotOffset(page, i);
    h[base + i] = window4(page, c + keyAt, readU16(page, c + klenAt), skip);
  }
  return h;
}

/** Unsigned byte order of the key of the cell at `cell` against `key`: < 0, 0 or > 0. */
function compareCell(page: Uint8Array, hints: Uint32Array, cell: number, key: Uint8Array): number {
  const len = readU16(page, cell + hints[H_KLEN]!);
  const o = cell + hints[H_KEY]!;
  const n = len < key.length ? len : key.length;
  for (let i = 0; i < n; i++) {
    const d = page[o + i]! - key[i]!;
    if (d !== 0) return d;
  }
  return len - key.length;
}

/**
 * The key against the node's common prefix: -1 below it (every key of the
 * node is greater), 1 above it (every key is smaller), 0 when it starts with it.
 */
function againstPrefix(hints: Uint32Array, key: Uint8Array): number {
  const skip = hints[H_SKIP]!;
  for (let at = 0, w = H_PREFIX; at < skip; at += 4, w++) {
    const n = skip - at < 4 ? skip - at : 4;
    // The prefix word holds n bytes, zero-padded; take the key's n bytes the same way.
    let k = window4(key, 0, key.length, at);
    if (n < 4) k = (k & (-1 << (32 - 8 * n))) >>> 0;
    const p = hints[w]!;
    if (k !== p) return k < p ? -1 : 1;
    if (key.length < at + n) return -1; // the key ends inside the prefix (its missing bytes read as zero)
  }
  return 0;
}

/** [lo, hi): the cells whose hint equals the key's; below lo every key is smaller, from hi on every key is greater. */
function equalRange(hints: Uint32Array, key: Uint8Array, out: Int32Array): void {
  const count = hints[H_COUNT]!;
  const base = H_PREFIX + ((hints[H_SKIP]! + 3) >>> 2);
  const w = window4(key, 0, key.length, hints[H_SKIP]!);
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (hints[base + mid]! < w) lo = mid + 1;
    else hi = mid;
  }
  // The end of the equal run: most hints are unique, so look at the next few
  // (the cache lines the search just read) before searching the rest.
  hi = lo;
  const near = Math.min(count, lo + 4);
  while (hi < near && hints[base + hi] === w) hi++;
  if (hi === near && near < count) {
    let end = count;
    while (hi < end) {
      const mid = (hi + end) >>> 1;
      if (hints[base + mid]! <= w) hi = mid + 1;
      else end = mid;
    }
  }
  out[0] = lo;
  out[1] = hi;
}

const range = new Int32Array(2);

/**
 * Leaf lower bound with hints: exactly what `leafSearch(page, key)` returns
 * (2 × index of the first key ≥ `key`, plus 1 when it equals `key`), for the
 * leaf the hints were built from.
 */
export function hintedLeafSearch(page: Uint8Array, hints: Uint32Array, key: Uint8Array): number {
  const p = againstPrefix(hints, key);
  if (p !== 0) return p < 0 ? 0 : hints[H_COUNT]! * 2;
  equalRange(hints, key, range);
  let lo = range[0]!;
  let hi = range[1]!;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareCell(page, hints, slotOffset(page, mid), key);
    if (c < 0) lo = mid + 1;
    else if (c > 0) hi = mid;
    else return mid * 2 + 1;
  }
  return lo * 2;
}

/**
 * Branch routing with hints: exactly what `branchSearch(page, key)` returns
 * (the number of separator keys ≤ `key`), for the branch the hints were built from.
 */
export function hintedBranchSearch(page: Uint8Array, hints: Uint32Array, key: Uint8Array): number {
  const p = againstPrefix(hints, key);
  if (p !== 0) return p < 0 ? 0 : hints[H_COUNT]!;
  equalRange(hints, key, range);
  let lo = range[0]!;
  let hi = range[1]!;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareCell(page, hints, slotOffset(page, mid), key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
