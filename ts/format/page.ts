// Page header and node-field accessors (spec §2 and §4). Reader and writer of
// each structure live together here; kernels in ts/native do the heavy work.

import { readU16, readU32, readU64, writeU16, writeU32, writeU64 } from './bytes.js';
import {
  BRANCH_CELL_CHILD,
  BRANCH_CELL_CHILD_TXN,
  BRANCH_CELL_HEADER,
  BRANCH_CELL_KLEN,
  FORMAT_VERSION,
  HEADER_SIZE,
  LEAF_CELL_HEADER,
  LEAF_CELL_VLEN,
  MAX_KEY_SIZE,
  NODE_CELL_START_OFFSET,
  NODE_COUNT_OFFSET,
  NODE_DEAD_OFFSET,
  NODE_LINK_OFFSET,
  NODE_LINK_TXN_OFFSET,
  NODE_SLOTS_OFFSET,
  OVERFLOW_REF_SIZE,
  PAGE_ID_OFFSET,
  PAGE_MAGIC,
  PAYLOAD_LENGTH_OFFSET,
  PageType,
  SLOT_SIZE,
  TXN_ID_OFFSET,
  TYPE_OFFSET,
  VALUE_OVERFLOW_BIT,
  VERSION_OFFSET,
  MAGIC_OFFSET,
} from './constants.js';

/** Fills the page header of a zeroed buffer (checksums are written by pageSeal). */
export function initPageHeader(page: Uint8Array, type: PageType, pageId: number, payloadLength: number): void {
  writeU32(page, MAGIC_OFFSET, PAGE_MAGIC);
  writeU16(page, VERSION_OFFSET, FORMAT_VERSION);
  page[TYPE_OFFSET] = type;
  writePageId(page, pageId);
  writeU32(page, PAYLOAD_LENGTH_OFFSET, payloadLength);
}

export function pageTypeOf(page: Uint8Array): number {
  return page[TYPE_OFFSET]!;
}

export function writePageId(page: Uint8Array, pageId: number): void {
  writeU64(page, PAGE_ID_OFFSET, pageId);
}

export function pageTxnId(page: Uint8Array): number {
  return readU64(page, TXN_ID_OFFSET);
}

export function writePageTxnId(page: Uint8Array, txnId: number): void {
  writeU64(page, TXN_ID_OFFSET, txnId);
}

/** Turns a zeroed buffer into an empty leaf or branch node (spec §4.1). */
export function initNode(page: Uint8Array, type: typeof PageType.Leaf | typeof PageType.Branch, pageId: number): void {
  initPageHeader(page, type, pageId, page.length - HEADER_SIZE);
  writeU16(page, NODE_COUNT_OFFSET, 0);
  writeU16(page, NODE_DEAD_OFFSET, 0);
  writeU32(page, NODE_CELL_START_OFFSET, page.length);
  writeU64(page, NODE_LINK_OFFSET, 0);
  writeU64(page, NODE_LINK_TXN_OFFSET, 0);
}

export function nodeCount(page: Uint8Array): number {
  return readU16(page, NODE_COUNT_OFFSET);
}

export function slotOffset(page: Uint8Array, i: number): number {
  return readU16(page, NODE_SLOTS_OFFSET + i * SLOT_SIZE);
}

/** Bytes the node's live cells and slots take (what a merge would need). */
export function nodeUsed(page: Uint8Array): number {
  const count = nodeCount(page);
  return page.length - readU32(page, NODE_CELL_START_OFFSET) - readU16(page, NODE_DEAD_OFFSET) + count * SLOT_SIZE;
}

/** Cell plus slot size of cell i. */
export function cellFootprint(page: Uint8Array, i: number): number {
  const o = slotOffset(page, i);
  if (page[TYPE_OFFSET] === PageType.Leaf) {
    const vlen = readU32(page, o + LEAF_CELL_VLEN);
    return LEAF_CELL_HEADER + readU16(page, o) + (vlen >= VALUE_OVERFLOW_BIT ? OVERFLOW_REF_SIZE : vlen) + SLOT_SIZE;
  }
  return BRANCH_CELL_HEADER + readU16(page, o + BRANCH_CELL_KLEN) + SLOT_SIZE;
}

// ---- branch ------------------------------------------------------------------

/** Page id of child c (0 = leftmost) of a branch; -1 if the stored id is not a safe integer. */
export function childAt(page: Uint8Array, c: number): number {
  return c === 0 ? readU64(page, NODE_LINK_OFFSET) : readU64(page, slotOffset(page, c - 1) + BRANCH_CELL_CHILD);
}

/** Txn id that wrote child c (0 = leftmost) of a branch (spec §4.2); -1 if not a safe integer. */
export function childTxnAt(page: Uint8Array, c: number): number {
  return c === 0 ? readU64(page, NODE_LINK_TXN_OFFSET) : readU64(page, slotOffset(page, c - 1) + BRANCH_CELL_CHILD_TXN);
}

/** Points child c of a branch at page `id`, written by txn `txn`. */
export function setChildAt(page: Uint8Array, c: number, id: number, txn: number): void {
  if (c === 0) {
    writeU64(page, NODE_LINK_OFFSET, id);
    writeU64(page, NODE_LINK_TXN_OFFSET, txn);
  } else {
    const o = slotOffset(page, c - 1);
    writeU64(page, o + BRANCH_CELL_CHILD, id);
    writeU64(page, o + BRANCH_CELL_CHILD_TXN, txn);
  }
}

export function branchKeyOffset(page: Uint8Array, i: number): number {
  return slotOffset(page, i) + BRANCH_CELL_HEADER;
}

export function branchKeyLength(page: Uint8Array, i: number): number {
  return readU16(page, slotOffset(page, i) + BRANCH_CELL_KLEN);
}

// ---- leaf ----------------------------------------------------------------------

export function leafKeyOffset(page: Uint8Array, i: number): number {
  return slotOffset(page, i) + LEAF_CELL_HEADER;
}

export function leafKeyLength(page: Uint8Array, i: number): number {
  return readU16(page, slotOffset(page, i));
}

/** The raw value-length field of leaf cell i (VALUE_OVERFLOW_BIT marks an overflow ref). */
export function leafVlenField(page: Uint8Array, i: number): number {
  return readU32(page, slotOffset(page, i) + LEAF_CELL_VLEN);
}

/**
 * `leafInsert(page, nodeCount(page), key, inline, vlenField)` (the kernel) when
 * the free gap between the slots and the cells holds the cell and its slot, so
 * that nothing needs compacting; otherwise false, changing nothing (the caller
 * then calls the kernel). The same bytes as the kernels write (parity test in
 * ts/native/parity.test.ts). For the writer's own leaf and arguments it has
 * checked (key length, `inline` matching `vlenField`): an append is a few
 * stores, which JavaScript does in less time than the N-API call to the native
 * kernel takes (sorted loads append every key: measured in the commit that
 * added it).
 */
export function appendLeafCell(page: Uint8Array, key: Uint8Array, inline: Uint8Array, vlenField: number): boolean {
  const count = readU16(page, NODE_COUNT_OFFSET);
  const slot = NODE_SLOTS_OFFSET + count * SLOT_SIZE;
  const at = readU32(page, NODE_CELL_START_OFFSET) - (LEAF_CELL_HEADER + key.length + inline.length);
  if (at < slot + SLOT_SIZE) return false;
  writeU16(page, at, key.length);
  writeU32(page, at + LEAF_CELL_VLEN, vlenField);
  page.set(key, at + LEAF_CELL_HEADER);
  page.set(inline, at + LEAF_CELL_HEADER + key.length);
  writeU16(page, slot, at);
  writeU16(page, NODE_COUNT_OFFSET, count + 1);
  writeU32(page, NODE_CELL_START_OFFSET, at);
  return true;
}

// ---- limits (spec §4.7) ----------------------------------------------------------

/** Largest cell plus slot any node of this page size holds. */
export function maxCellFootprint(pageSize: number): number {
  return Math.floor((pageSize - NODE_SLOTS_OFFSET) / 3);
}

/** Largest leaf cell plus slot stored with its value inline. */
export function maxInlineFootprint(pageSize: number): number {
  return Math.floor((pageSize - NODE_SLOTS_OFFSET) / 4);
}

/** Largest key this page size accepts. */
export function maxKeySize(pageSize: number): number {
  return Math.min(MAX_KEY_SIZE, maxCellFootprint(pageSize) - LEAF_CELL_HEADER - OVERFLOW_REF_SIZE - SLOT_SIZE);
}

/** Footprint of a leaf cell holding key and a value of vlen bytes inline. */
export function inlineFootprint(klen: number, vlen: number): number {
  return LEAF_CELL_HEADER + klen + vlen + SLOT_SIZE;
}

/** Footprint of a branch cell with a key of klen bytes. */
export function branchFootprint(klen: number): number {
  return BRANCH_CELL_HEADER + klen + SLOT_SIZE;
}
