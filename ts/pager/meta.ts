// Meta pages A and B (spec §3): encoding, validation and the choice at open.

import { readU16, readU32, readU64, writeU16, writeU32, writeU64 } from '../format/bytes.js';
import {
  FORMAT_VERSION,
  HEADER_SIZE,
  META_CRC_OFFSET,
  META_CHECKPOINT_SEQ_OFFSET,
  META_DB_ID_OFFSET,
  META_HISTORY_OFFSET,
  META_DEPTH_OFFSET,
  META_ENTRY_COUNT_OFFSET,
  META_FREELIST_OFFSET,
  META_LOG_TAIL_OFFSET,
  META_MAGIC,
  META_MAGIC_OFFSET,
  META_PAGE_A,
  META_PAGE_B,
  META_PAGE_COUNT_OFFSET,
  META_PAGE_SIZE_OFFSET,
  META_PAYLOAD_LENGTH,
  META_ROOT_OFFSET,
  META_TXN_ID_OFFSET,
  META_VERSION_OFFSET,
  VERSION_OFFSET,
  PAGE_SIZES,
  PageStatus,
  PageType,
  TYPE_OFFSET,
  FIRST_DATA_PAGE,
} from '../format/constants.js';
import { initPageHeader, writePageTxnId } from '../format/page.js';
import { NorthstarError } from '../errors.js';
import type { Kernels } from '../native/kernels.js';
import type { DbFile } from '../io/file.js';

/** The committed state one meta page describes. */
export interface Meta {
  pageSize: number;
  txnId: number;
  root: number;
  freelist: number;
  logTail: number;
  pageCount: number;
  entryCount: number;
  depth: number;
  /** Random id of this database, also in its log's header (a log of another database is refused). */
  dbId: number;
  /** First page of the history chain (roots of retained snapshots), 0 = none. */
  history: number;
  /** Checkpoint sequence (u32, wrapping): orders two metas with the same txn id. */
  checkpointSeq: number;
}

export function emptyMeta(pageSize: number, dbId: number): Meta {
  return { pageSize, txnId: 0, root: 0, freelist: 0, logTail: 0, pageCount: FIRST_DATA_PAGE, entryCount: 0, depth: 0, dbId, history: 0, checkpointSeq: 0 };
}

/** Meta page id that commit txnId writes: T mod 2. */
export function metaSlot(txnId: number): number {
  return txnId % 2 === 0 ? META_PAGE_A : META_PAGE_B;
}

/** Encodes and seals a meta page for `slot` into a fresh buffer. */
export function encodeMeta(meta: Meta, slot: number, kernels: Kernels): Uint8Array {
  const page = new Uint8Array(meta.pageSize);
  initPageHeader(page, PageType.Meta, slot, META_PAYLOAD_LENGTH);
  writePageTxnId(page, meta.txnId);
  writeU32(page, META_MAGIC_OFFSET, META_MAGIC);
  writeU16(page, META_VERSION_OFFSET, FORMAT_VERSION);
  writeU32(page, META_PAGE_SIZE_OFFSET, meta.pageSize);
  writeU64(page, META_TXN_ID_OFFSET, meta.txnId);
  writeU64(page, META_ROOT_OFFSET, meta.root);
  writeU64(page, META_FREELIST_OFFSET, meta.freelist);
  writeU64(page, META_LOG_TAIL_OFFSET, meta.logTail);
  writeU64(page, META_PAGE_COUNT_OFFSET, meta.pageCount);
  writeU64(page, META_ENTRY_COUNT_OFFSET, meta.entryCount);
  writeU32(page, META_DEPTH_OFFSET, meta.depth);
  writeU32(page, META_CHECKPOINT_SEQ_OFFSET, meta.checkpointSeq >>> 0);
  writeU64(page, META_DB_ID_OFFSET, meta.dbId);
  writeU64(page, META_HISTORY_OFFSET, meta.history);
  writeU32(page, META_CRC_OFFSET, kernels.crc32c(page.subarray(HEADER_SIZE, META_CRC_OFFSET)));
  kernels.pageSeal(page);
  return page;
}

/** Why a meta page was rejected, or the meta itself. */
export type MetaResult = { ok: true; meta: Meta } | { ok: false; reason: string; unsupported: boolean; version?: number };

/**
 * Validates a meta page read as page `slot` of a file of `fileSize` bytes
 * (spec §3, "Choosing the meta at open", rule 2).
 */
export function decodeMeta(page: Uint8Array, slot: number, fileSize: number, kernels: Kernels): MetaResult {
  const status = kernels.pageVerify(page, slot);
  if (status === PageStatus.UnsupportedVersion) {
    return { ok: false, reason: `meta ${slot}: page format version ${readU16(page, VERSION_OFFSET)}`, unsupported: true, version: readU16(page, VERSION_OFFSET) };
  }
  if (status !== PageStatus.Ok) return { ok: false, reason: `meta ${slot}: page check failed (status ${status})`, unsupported: false };
  if (page[TYPE_OFFSET] !== PageType.Meta) return { ok: false, reason: `meta ${slot}: not a meta page`, unsupported: false };
  if (readU32(page, META_MAGIC_OFFSET) !== META_MAGIC) return { ok: false, reason: `meta ${slot}: bad meta magic`, unsupported: false };
  if (readU32(page, META_CRC_OFFSET) !== kernels.crc32c(page.subarray(HEADER_SIZE, META_CRC_OFFSET))) {
    return { ok: false, reason: `meta ${slot}: meta checksum mismatch`, unsupported: false };
  }
  if (readU16(page, META_VERSION_OFFSET) !== FORMAT_VERSION) {
    return { ok: false, reason: `meta ${slot}: meta format version ${readU16(page, META_VERSION_OFFSET)}`, unsupported: true, version: readU16(page, META_VERSION_OFFSET) };
  }
  const meta: Meta = {
    pageSize: readU32(page, META_PAGE_SIZE_OFFSET),
    txnId: readU64(page, META_TXN_ID_OFFSET),
    root: readU64(page, META_ROOT_OFFSET),
    freelist: readU64(page, META_FREELIST_OFFSET),
    logTail: readU64(page, META_LOG_TAIL_OFFSET),
    pageCount: readU64(page, META_PAGE_COUNT_OFFSET),
    entryCount: readU64(page, META_ENTRY_COUNT_OFFSET),
    depth: readU32(page, META_DEPTH_OFFSET),
    dbId: readU64(page, META_DB_ID_OFFSET),
    history: readU64(page, META_HISTORY_OFFSET),
    checkpointSeq: readU32(page, META_CHECKPOINT_SEQ_OFFSET),
  };
  const bad = (why: string): MetaResult => ({ ok: false, reason: `meta ${slot}: ${why}`, unsupported: false });
  if (meta.pageSize !== page.length) return bad(`page size ${meta.pageSize} does not match ${page.length}`);
  if (meta.txnId < 0 || meta.logTail < 0 || meta.entryCount < 0 || meta.dbId < 0) return bad('field out of range');
  if (meta.history < 0 || meta.history >= meta.pageCount || (meta.history !== 0 && meta.history < FIRST_DATA_PAGE)) {
    return bad(`history ${meta.history} out of range`);
  }
  if (meta.pageCount < FIRST_DATA_PAGE) return bad(`page count ${meta.pageCount} below ${FIRST_DATA_PAGE}`);
  if (meta.root < 0 || meta.root >= meta.pageCount || (meta.root !== 0 && meta.root < FIRST_DATA_PAGE)) return bad(`root ${meta.root} out of range`);
  if (meta.freelist < 0 || meta.freelist >= meta.pageCount || (meta.freelist !== 0 && meta.freelist < FIRST_DATA_PAGE)) {
    return bad(`freelist ${meta.freelist} out of range`);
  }
  if ((meta.root === 0) !== (meta.depth === 0)) return bad(`depth ${meta.depth} inconsistent with root ${meta.root}`);
  if (meta.pageCount * meta.pageSize > fileSize) {
    return bad(`file is truncated: meta needs ${meta.pageCount} pages, file has ${Math.floor(fileSize / meta.pageSize)}`);
  }
  return { ok: true, meta };
}

/** Outcome of reading both metas: the chosen one, and which slot it came from. */
export interface ChosenMeta {
  meta: Meta;
  slot: number;
  /** Rejection reason of the other meta, or null if it was valid too. */
  otherProblem: string | null;
}

/**
 * Reads both meta pages and picks the valid one with the highest txn id (tie:
 * meta A). Neither valid → Corrupt; a checksummed meta of a newer version →
 * UnsupportedFormat (spec §3).
 */
export function chooseMeta(file: DbFile, kernels: Kernels): ChosenMeta {
  // The meta pages before the file's size: a checkpoint extends the file before it writes
  // its meta (spec §8.2), so a size read after a meta covers what that meta needs, even
  // while another process checkpoints. Read the other way round, a checkpoint landing in
  // between made a sound file look truncated.
  const slots = [META_PAGE_A, META_PAGE_B];
  const read = readMetasAnySize(file);
  const fileSize = file.size();
  const results = read.map((pages, i) => decodeMetaAnySize(pages, slots[i]!, fileSize, kernels));
  const [a, b] = results as [MetaResult, MetaResult];
  // A checksummed meta of another version means another writer touched the
  // file: refuse it whole rather than silently use the other meta.
  if ((!a.ok && a.unsupported) || (!b.ok && b.unsupported)) {
    const reasons = `${a.ok ? '' : a.reason}; ${b.ok ? '' : b.reason}`;
    const older = [a, b].some((r) => !r.ok && r.version !== undefined && r.version < FORMAT_VERSION);
    const message = older
      ? `${file.path}: written in an older file format (${reasons}); this version reads format ${FORMAT_VERSION} only. ` +
        'To migrate, rebuild it from its commit log into a new file: replay(path) (or `northstar replay`) reads the log, ' +
        'which is unchanged, and every entry of replay(path).state.entries() put into open(newPath) makes a format ' +
        `${FORMAT_VERSION} database (needs the log from txn 1, i.e. no truncateLog); otherwise copy its entries out with a northstardb release that reads format 0`
      : `${file.path}: written by a newer format version (${reasons}); this version reads format ${FORMAT_VERSION}`;
    throw new NorthstarError('UnsupportedFormat', message, { path: file.path });
  }
  let pick: ChosenMeta | null = null;
  if (a.ok && (!b.ok || newerOrSame(a.meta, b.meta))) pick = { meta: a.meta, slot: META_PAGE_A, otherProblem: b.ok ? null : b.reason };
  else if (b.ok) pick = { meta: b.meta, slot: META_PAGE_B, otherProblem: a.ok ? null : a.reason };
  if (pick) {
    if (a.ok && b.ok && (a.meta.pageSize !== b.meta.pageSize || a.meta.dbId !== b.meta.dbId)) {
      throw new NorthstarError('Corrupt', `${file.path}: meta pages disagree on the page size or database id`, { path: file.path });
    }
    return pick;
  }
  throw new NorthstarError('Corrupt', `${file.path}: no valid meta page (${(a as { reason: string }).reason}; ${(b as { reason: string }).reason})`, {
    path: file.path,
  });
}

/** Whether meta a is at least as new as b: txn id, then checkpoint sequence (serial order), then a (spec §3 rule 3). */
function newerOrSame(a: Meta, b: Meta): boolean {
  if (a.txnId !== b.txnId) return a.txnId > b.txnId;
  return ((a.checkpointSeq - b.checkpointSeq) | 0) >= 0;
}

/** Bytes that hold both meta pages at every page size: A at 0, B at one page in. */
const METAS_SPAN = 2 * PAGE_SIZES[PAGE_SIZES.length - 1]!;

/**
 * Meta pages A and B at every page size, smallest first, as far as the file
 * holds them: views of one read of the file's first METAS_SPAN bytes (a read
 * per candidate page cost more than the rest of an open).
 */
function readMetasAnySize(file: DbFile): [Uint8Array[], Uint8Array[]] {
  const head = Buffer.allocUnsafe(METAS_SPAN);
  const n = file.read(head, 0);
  const pages = (slot: number): Uint8Array[] => {
    const out: Uint8Array[] = [];
    for (const size of PAGE_SIZES) {
      if ((slot + 1) * size > n) break;
      out.push(head.subarray(slot * size, (slot + 1) * size));
    }
    return out;
  };
  return [pages(META_PAGE_A), pages(META_PAGE_B)];
}

/** The first of `pages` (meta `slot` at each page size) that is a valid meta; a valid meta records its own size. */
function decodeMetaAnySize(pages: Uint8Array[], slot: number, fileSize: number, kernels: Kernels): MetaResult {
  // A valid meta records its own page size: check the size the page names first, then (to
  // report why none is valid) every size as before.
  for (const page of pages) {
    if ((slot + 1) * page.length > fileSize) break;
    if (readU32(page, META_PAGE_SIZE_OFFSET) !== page.length) continue;
    const r = decodeMeta(page, slot, fileSize, kernels);
    if (r.ok) return r;
  }
  let first: MetaResult | null = null;
  for (const page of pages) {
    if ((slot + 1) * page.length > fileSize) break;
    const r = decodeMeta(page, slot, fileSize, kernels);
    if (r.ok) return r;
    // Keep the most telling failure: an unsupported version beats a bad checksum.
    if (first === null || (!first.ok && !first.unsupported && r.unsupported)) first = r;
  }
  return first ?? { ok: false, reason: `meta ${slot}: file too short (${fileSize} bytes)`, unsupported: false };
}
