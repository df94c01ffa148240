// Pure-TypeScript twins of the native kernels (crates/northstar-native).
// Contract, shared byte for byte with the Rust side: spec/file_format_v1.md §2
// (page seal/verify) and §4 (node kernels). Bad arguments throw TypeError
// (wrong type) or RangeError (bad length, index, or a node whose own offsets
// point outside the buffer); a kernel that returns false has changed nothing.

import {
  BRANCH_CELL_CHILD,
  BRANCH_CELL_CHILD_TXN,
  BRANCH_CELL_HEADER,
  BRANCH_CELL_KLEN,
  FORMAT_VERSION,
  HEADER_CRC_OFFSET,
  HEADER_SIZE,
  LEAF_CELL_HEADER,
  LEAF_CELL_VLEN,
  MAX_NODE_BUFFER,
  NODE_CELL_START_OFFSET,
  NODE_COUNT_OFFSET,
  NODE_DEAD_OFFSET,
  NODE_SLOTS_OFFSET,
  OVERFLOW_REF_SIZE,
  PAGE_CRC_OFFSET,
  PAGE_ID_OFFSET,
  PAGE_MAGIC,
  PAGE_SIZES,
  PAYLOAD_LENGTH_OFFSET,
  PageStatus,
  PageType,
  SLOT_SIZE,
  TYPE_OFFSET,
  VALUE_OVERFLOW_BIT,
  VERSION_OFFSET,
  MAGIC_OFFSET,
} from '../format/constants.js';
import { compareBytes, readU16, readU32, writeU16, writeU32, writeU64 } from '../format/bytes.js';
import { crc32c } from './crc32c.js';

const ZERO4 = new Uint8Array(4);

function checkBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
}

function checkPage(page: unknown): asserts page is Uint8Array {
  checkBytes(page, 'page');
  if (!(PAGE_SIZES as readonly number[]).includes(page.length)) {
    throw new RangeError(`page length ${page.length} is not a page size (4096, 8192, 16384, 32768)`);
  }
}

function checkIndex(v: unknown, max: number, what: string): asserts v is number {
  if (typeof v !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} ${v} out of range 0..${max}`);
}

function checkId(v: unknown, what: string): asserts v is number {
  if (typeof v !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative safe integer`);
}

/** Header CRC: bytes [0, HEADER_SIZE) with the header-CRC field read as zero (spec §2.2). */
function headerCrc(page: Uint8Array): number {
  let c = crc32c(page.subarray(0, HEADER_CRC_OFFSET));
  c = crc32c(ZERO4, c);
  return crc32c(page.subarray(PAGE_CRC_OFFSET, HEADER_SIZE), c);
}

/** Writes the page CRC (bytes [HEADER_SIZE, end)) and then the header CRC. */
export function pageSeal(page: Uint8Array): void {
  checkPage(page);
  writeU32(page, PAGE_CRC_OFFSET, crc32c(page.subarray(HEADER_SIZE)));
  writeU32(page, HEADER_CRC_OFFSET, headerCrc(page));
}

/** Checks a page read from disk in the order of spec §2.3; returns a PageStatus. */
export function pageVerify(page: Uint8Array, expectedPageId: number): number {
  checkPage(page);
  checkId(expectedPageId, 'expectedPageId');
  if (readU32(page, MAGIC_OFFSET) !== PAGE_MAGIC) return PageStatus.BadMagic;
  if (readU32(page, HEADER_CRC_OFFSET) !== headerCrc(page)) return PageStatus.BadHeaderChecksum;
  if (readU16(page, VERSION_OFFSET) !== FORMAT_VERSION) return PageStatus.UnsupportedVersion;
  const type = page[TYPE_OFFSET]!;
  if (type < PageType.Meta || type > PageType.History) return PageStatus.BadPageType;
  if (
    readU32(page, PAGE_ID_OFFSET) !== expectedPageId >>> 0 ||
    readU32(page, PAGE_ID_OFFSET + 4) !== Math.floor(expectedPageId / 0x1_0000_0000)
  ) {
    return PageStatus.WrongPageId;
  }
  if (readU32(page, PAYLOAD_LENGTH_OFFSET) > page.length - HEADER_SIZE) return PageStatus.BadPayloadLength;
  if (readU32(page, PAGE_CRC_OFFSET) !== crc32c(page.subarray(HEADER_SIZE))) return PageStatus.BadPageChecksum;
  return PageStatus.Ok;
}

// ---- nodes ------------------------------------------------------------------

const LEAF = 0;
const BRANCH = 1;
const ANY = 2;

/**
 * Validates the node header and returns the cell count. Throws RangeError when
 * the buffer is not a node buffer, is not of the wanted kind, or its header
 * points outside the buffer.
 */
function checkNode(page: unknown, kind: number, what = 'page'): number {
  checkBytes(page, what);
  const len = page.length;
  if (len < PAGE_SIZES[0] || len > MAX_NODE_BUFFER || (len & (len - 1)) !== 0) {
    throw new RangeError(`${what} length ${len} is not a node buffer size`);
  }
  const t = page[TYPE_OFFSET];
  const ok = kind === LEAF ? t === PageType.Leaf : kind === BRANCH ? t === PageType.Branch : t === PageType.Leaf || t === PageType.Branch;
  if (!ok) throw new RangeError(`${what} is not a ${kind === LEAF ? 'leaf' : kind === BRANCH ? 'branch' : 'node'} page`);
  const count = readU16(page, NODE_COUNT_OFFSET);
  const cellStart = readU32(page, NODE_CELL_START_OFFSET);
  if (NODE_SLOTS_OFFSET + count * SLOT_SIZE > cellStart || cellStart > len) {
    throw new RangeError(`corrupt node: ${count} slots and cell start ${cellStart}`);
  }
  return count;
}

/** Size in bytes of the cell at offset o (without its slot); throws if it leaves the buffer. */
function cellSize(page: Uint8Array, o: number): number {
  return cellSizeIn(page, o, page[TYPE_OFFSET] === PageType.Leaf, page.length);
}

/** cellSize over a copy of a node: `len` is the node's length, `leaf` its kind. */
function cellSizeIn(buf: Uint8Array, o: number, leaf: boolean, len: number): number {
  let size: number;
  if (leaf) {
    if (o + LEAF_CELL_HEADER > len) throw new RangeError(`corrupt node: cell at ${o}`);
    const vlen = readU32(buf, o + LEAF_CELL_VLEN);
    size = LEAF_CELL_HEADER + readU16(buf, o) + (vlen >= VALUE_OVERFLOW_BIT ? OVERFLOW_REF_SIZE : vlen);
  } else {
    if (o + BRANCH_CELL_HEADER > len) throw new RangeError(`corrupt node: cell at ${o}`);
    size = BRANCH_CELL_HEADER + readU16(buf, o + BRANCH_CELL_KLEN);
  }
  if (o + size > len) throw new RangeError(`corrupt node: cell at ${o} runs past the end`);
  return size;
}

function slotAt(page: Uint8Array, i: number): number {
  return readU16(page, NODE_SLOTS_OFFSET + i * SLOT_SIZE);
}

/** Length of the key of the cell at offset o, checked against the buffer. */
function keyLength(page: Uint8Array, o: number, leaf: boolean): number {
  const hdr = leaf ? LEAF_CELL_HEADER : BRANCH_CELL_HEADER;
  if (o + hdr > page.length) throw new RangeError(`corrupt node: cell at ${o}`);
  const klen = leaf ? readU16(page, o) : readU16(page, o + BRANCH_CELL_KLEN);
  if (o + hdr + klen > page.length) throw new RangeError(`corrupt node: key at ${o} runs past the end`);
  return klen;
}

/**
 * Leaf lower bound: index of the first cell whose key is >= key, times two,
 * plus one when that key equals `key`.
 */
export function leafSearch(page: Uint8Array, key: Uint8Array): number {
  const count = checkNode(page, LEAF);
  checkBytes(key, 'key');
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const o = slotAt(page, mid);
    const c = compareBytes(page, o + LEAF_CELL_HEADER, keyLength(page, o, true), key);
    if (c < 0) lo = mid + 1;
    else if (c > 0) hi = mid;
    else return mid * 2 + 1;
  }
  return lo * 2;
}

/** Branch routing: the number of separator keys <= key, i.e. the child index 0..count. */
export function branchSearch(page: Uint8Array, key: Uint8Array): number {
  const count = checkNode(page, BRANCH);
  checkBytes(key, 'key');
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const o = slotAt(page, mid);
    if (compareBytes(page, o + BRANCH_CELL_HEADER, keyLength(page, o, false), key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const scratch = new Uint8Array(MAX_NODE_BUFFER);

/** Rewrites the cells contiguously at the end of the buffer, slot 0 highest (spec §4.4). */
export function nodeCompact(page: Uint8Array): void {
  const count = checkNode(page, ANY);
  compactUnchecked(page, count);
}

function compactUnchecked(page: Uint8Array, count: number): void {
  const len = page.length;
  const leaf = page[TYPE_OFFSET] === PageType.Leaf;
  const base = NODE_SLOTS_OFFSET + count * SLOT_SIZE;
  let total = 0;
  for (let i = 0; i < count; i++) total += cellSize(page, slotAt(page, i));
  if (len - total < base) throw new RangeError('corrupt node: cells overlap the slots');
  scratch.set(page, 0);
  let pos = len;
  for (let i = 0; i < count; i++) {
    const o = readU16(scratch, NODE_SLOTS_OFFSET + i * SLOT_SIZE);
    const size = cellSizeIn(scratch, o, leaf, len);
    pos -= size;
    page.set(scratch.subarray(o, o + size), pos);
    writeU16(page, NODE_SLOTS_OFFSET + i * SLOT_SIZE, pos);
  }
  page.fill(0, base, pos);
  writeU32(page, NODE_CELL_START_OFFSET, pos);
  writeU16(page, NODE_DEAD_OFFSET, 0);
}

/**
 * Makes room for `need` bytes (cell plus slot) and returns true, or returns
 * false when the node cannot hold them even after compaction.
 */
function reserve(page: Uint8Array, count: number, need: number): boolean {
  const gap = readU32(page, NODE_CELL_START_OFFSET) - (NODE_SLOTS_OFFSET + count * SLOT_SIZE);
  if (gap >= need) return true;
  if (gap + readU16(page, NODE_DEAD_OFFSET) < need) return false;
  compactUnchecked(page, count);
  // A dead count larger than the unreferenced bytes is a corrupt header: without
  // this check the new cell would be placed over the slots (or before offset 0).
  if (readU32(page, NODE_CELL_START_OFFSET) - (NODE_SLOTS_OFFSET + count * SLOT_SIZE) < need) {
    throw new RangeError('corrupt node: dead byte count exceeds the unreferenced bytes');
  }
  return true;
}

/** Opens slot `index` (shifting later slots up) pointing at a new cell of `size` bytes; returns its offset. */
function placeCell(page: Uint8Array, count: number, index: number, size: number): number {
  const at = readU32(page, NODE_CELL_START_OFFSET) - size;
  const s = NODE_SLOTS_OFFSET + index * SLOT_SIZE;
  page.copyWithin(s + SLOT_SIZE, s, NODE_SLOTS_OFFSET + count * SLOT_SIZE);
  writeU16(page, s, at);
  writeU16(page, NODE_COUNT_OFFSET, count + 1);
  writeU32(page, NODE_CELL_START_OFFSET, at);
  return at;
}

/**
 * Inserts a leaf cell at slot `index`. `vlenField` is the stored value-length
 * field: the value's length, or VALUE_OVERFLOW_BIT | length with the 16-byte
 * overflow reference as `inline`. Returns false (node unchanged) when it does
 * not fit.
 */
export function leafInsert(page: Uint8Array, index: number, key: Uint8Array, inline: Uint8Array, vlenField: number): boolean {
  const count = checkNode(page, LEAF);
  checkIndex(index, count, 'index');
  checkBytes(key, 'key');
  checkBytes(inline, 'value');
  checkIndex(vlenField, 0xffffffff, 'vlenField');
  checkDisjoint(page, key, 'key');
  checkDisjoint(page, inline, 'value');
  if (key.length > 0xffff) throw new RangeError('key longer than 65535 bytes');
  const expected = vlenField >= VALUE_OVERFLOW_BIT ? OVERFLOW_REF_SIZE : vlenField;
  if (inline.length !== expected) throw new RangeError(`value length ${inline.length} does not match vlenField`);
  const size = LEAF_CELL_HEADER + key.length + inline.length;
  if (!reserve(page, count, size + SLOT_SIZE)) return false;
  const at = placeCell(page, count, index, size);
  writeU16(page, at, key.length);
  writeU32(page, at + LEAF_CELL_VLEN, vlenField);
  page.set(key, at + LEAF_CELL_HEADER);
  page.set(inline, at + LEAF_CELL_HEADER + key.length);
  return true;
}

/**
 * Inserts a branch cell (child holds keys >= key; childTxn is the txn that
 * wrote the child) at slot `index`; false when it does not fit.
 */
export function branchInsert(page: Uint8Array, index: number, key: Uint8Array, child: number, childTxn: number): boolean {
  const count = checkNode(page, BRANCH);
  checkIndex(index, count, 'index');
  checkBytes(key, 'key');
  checkId(child, 'child');
  checkId(childTxn, 'childTxn');
  checkDisjoint(page, key, 'key');
  if (key.length > 0xffff) throw new RangeError('key longer than 65535 bytes');
  const size = BRANCH_CELL_HEADER + key.length;
  if (!reserve(page, count, size + SLOT_SIZE)) return false;
  const at = placeCell(page, count, index, size);
  writeU64(page, at + BRANCH_CELL_CHILD, child);
  writeU64(page, at + BRANCH_CELL_CHILD_TXN, childTxn);
  writeU16(page, at + BRANCH_CELL_KLEN, key.length);
  page.set(key, at + BRANCH_CELL_HEADER);
  return true;
}

/** Removes the cell at slot `index`; its bytes become dead space (or free, if lowest). */
export function nodeRemove(page: Uint8Array, index: number): void {
  const count = checkNode(page, ANY);
  checkIndex(index, count - 1, 'index');
  const o = slotAt(page, index);
  const size = cellSize(page, o);
  const s = NODE_SLOTS_OFFSET + index * SLOT_SIZE;
  const end = NODE_SLOTS_OFFSET + count * SLOT_SIZE;
  page.copyWithin(s, s + SLOT_SIZE, end);
  page[end - 2] = 0;
  page[end - 1] = 0;
  if (count === 1) {
    page.fill(0, NODE_SLOTS_OFFSET, page.length);
    writeU32(page, NODE_CELL_START_OFFSET, page.length);
    writeU16(page, NODE_DEAD_OFFSET, 0);
  } else if (o === readU32(page, NODE_CELL_START_OFFSET)) {
    page.fill(0, o, o + size);
    writeU32(page, NODE_CELL_START_OFFSET, o + size);
  } else {
    writeU16(page, NODE_DEAD_OFFSET, readU16(page, NODE_DEAD_OFFSET) + size);
  }
  writeU16(page, NODE_COUNT_OFFSET, count - 1);
}

/** Appends cells [from, to) of src to the end of dst; false (dst unchanged) when they do not fit. */
function appendCells(dst: Uint8Array, dstCount: number, src: Uint8Array, from: number, to: number): boolean {
  let need = 0;
  for (let i = from; i < to; i++) need += cellSize(src, slotAt(src, i)) + SLOT_SIZE;
  if (!reserve(dst, dstCount, need)) return false;
  for (let i = from; i < to; i++) {
    const o = slotAt(src, i);
    const size = cellSize(src, o);
    const at = placeCell(dst, dstCount, dstCount, size);
    dst.set(src.subarray(o, o + size), at);
    dstCount++;
  }
  return true;
}

/** True when two non-empty views share bytes (the native kernels cannot take aliased buffers). */
function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return (
    a.byteLength > 0 &&
    b.byteLength > 0 &&
    a.buffer === b.buffer &&
    a.byteOffset < b.byteOffset + b.byteLength &&
    b.byteOffset < a.byteOffset + a.byteLength
  );
}

function checkDisjoint(page: Uint8Array, v: ArrayBufferView, what: string): void {
  if (overlaps(page, v)) throw new RangeError(`${what} overlaps the page`);
}

function checkSameKind(a: Uint8Array, b: Uint8Array): void {
  if (overlaps(a, b)) {
    throw new RangeError('src and dst overlap');
  }
  if (a[TYPE_OFFSET] !== b[TYPE_OFFSET]) throw new RangeError('src and dst are nodes of different types');
}

/**
 * Moves cells [at, count) of src to the end of dst, then truncates src to `at`
 * cells and compacts it. False (both unchanged) when dst cannot hold them.
 */
export function nodeSplit(src: Uint8Array, dst: Uint8Array, at: number): boolean {
  const count = checkNode(src, ANY, 'src');
  const dstCount = checkNode(dst, ANY, 'dst');
  checkSameKind(src, dst);
  checkIndex(at, count, 'at');
  if (!appendCells(dst, dstCount, src, at, count)) return false;
  truncateNode(src, at);
  return true;
}

function truncateNode(page: Uint8Array, count: number): void {
  const old = readU16(page, NODE_COUNT_OFFSET);
  page.fill(0, NODE_SLOTS_OFFSET + count * SLOT_SIZE, NODE_SLOTS_OFFSET + old * SLOT_SIZE);
  writeU16(page, NODE_COUNT_OFFSET, count);
  compactUnchecked(page, count);
}

/** Appends every cell of src to dst; false (dst unchanged) when they do not fit. */
export function nodeMerge(dst: Uint8Array, src: Uint8Array): boolean {
  const dstCount = checkNode(dst, ANY, 'dst');
  const count = checkNode(src, ANY, 'src');
  checkSameKind(src, dst);
  return appendCells(dst, dstCount, src, 0, count);
}

/**
 * Decodes every cell into `out`, four u32 per cell: leaf [keyOffset, keyLength,
 * valueOffset, vlenField]; branch [keyOffset, keyLength, childLow, childHigh].
 * Returns the cell count.
 */
export function nodeDecode(page: Uint8Array, out: Uint32Array): number {
  const count = checkNode(page, ANY);
  if (!(out instanceof Uint32Array)) throw new TypeError('out must be a Uint32Array');
  checkDisjoint(page, out, 'out');
  if (out.length < count * 4) throw new RangeError(`out holds ${out.length >>> 2} cells, node has ${count}`);
  const leaf = page[TYPE_OFFSET] === PageType.Leaf;
  for (let i = 0; i < count; i++) {
    const o = slotAt(page, i);
    cellSize(page, o);
    const klen = keyLength(page, o, leaf);
    const k = o + (leaf ? LEAF_CELL_HEADER : BRANCH_CELL_HEADER);
    const j = i * 4;
    out[j] = k;
    out[j + 1] = klen;
    if (leaf) {
      out[j + 2] = k + klen;
      out[j + 3] = readU32(page, o + LEAF_CELL_VLEN);
    } else {
      out[j + 2] = readU32(page, o + BRANCH_CELL_CHILD);
      out[j + 3] = readU32(page, o + BRANCH_CELL_CHILD + 4);
    }
  }
  return count;
}
