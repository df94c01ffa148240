// The pages section of a commit record (spec/commit_record_v0.md §3.5): the
// data-file pages the commit wrote and freed, and the page count, entry count
// and depth after it, at the end of the commit payload behind header flag
// bit 1 (RECORD_FLAG_PAGES). Another process reads it to evict stale cached
// pages, rebuild the free-page state and learn each commit's tree without
// reading the ops. The writer (for RecordBuilder.seal) sits beside the reader.

import { NorthstarError } from '../errors.js';
import { readU16, readU32, readU64, writeU32, writeU64 } from '../format/bytes.js';
import {
  COMMIT_OPS_OFFSET,
  PAGES_DEPTH_OFFSET,
  PAGES_ENTRY_COUNT_OFFSET,
  PAGES_FREED_COUNT_OFFSET,
  PAGES_FREED_YOUNG_COUNT_OFFSET,
  PAGES_ID_SIZE,
  PAGES_MAGIC,
  PAGES_MAGIC_OFFSET,
  PAGES_PAGE_COUNT_OFFSET,
  PAGES_RESERVED_OFFSET,
  PAGES_TAIL_SIZE,
  PAGES_WRITTEN_COUNT_OFFSET,
  RECORD_FLAG_PAGES,
  RECORD_FLAGS_OFFSET,
  RECORD_HEADER_SIZE,
  RECORD_MAGIC,
  RECORD_MAGIC_OFFSET,
  RECORD_PAYLOAD_LENGTH_OFFSET,
  RECORD_TYPE_OFFSET,
  RECORD_VERSION,
  RECORD_VERSION_OFFSET,
  RecordType,
} from '../format/record.js';

/** What a commit did to the data file (spec §3.5). Page ids and counts are safe integers. */
export interface PagesSection {
  /** Page count of the data file after the commit, as in its meta. */
  pageCount: number;
  /** Entries in the tree after the commit, as in its meta. */
  entryCount: number;
  /** Tree depth after the commit, as in its meta (0 empty, 1 a single leaf root, …); a u32. */
  depth: number;
  /** Pages the commit wrote. */
  written: readonly number[];
  /** Committed pages the commit made unreachable that the durable meta may still reach. */
  freed: readonly number[];
  /** Committed pages the commit made unreachable that were written after the durable checkpoint. */
  freedYoung: readonly number[];
}

const MAX_U32 = 0xffff_ffff;

/**
 * The length in bytes of `pages` as a section: 8 per id, plus the 40-byte
 * tail. Checks every field first (`InvalidArgument`): counts and ids are
 * non-negative safe integers, depth and each list's length fit a u32.
 */
export function pagesSectionLength(pages: PagesSection): number {
  if (typeof pages !== 'object' || pages === null) throw new NorthstarError('InvalidArgument', `pages must be an object, got ${pages === null ? 'null' : typeof pages}`);
  checkSafe(pages.pageCount, 'pages.pageCount');
  checkSafe(pages.entryCount, 'pages.entryCount');
  if (typeof pages.depth !== 'number' || !Number.isInteger(pages.depth) || pages.depth < 0 || pages.depth > MAX_U32) {
    throw new NorthstarError('InvalidArgument', `pages.depth must be an integer from 0 to ${MAX_U32}, got ${String(pages.depth)}`);
  }
  const ids = checkIds(pages.written, 'pages.written') + checkIds(pages.freed, 'pages.freed') + checkIds(pages.freedYoung, 'pages.freedYoung');
  return ids * PAGES_ID_SIZE + PAGES_TAIL_SIZE;
}

/**
 * Writes `pages` at buf[at..], where the commit's ops end; returns the end of
 * the section, which is the end of the payload. The caller has checked
 * `pages` with pagesSectionLength and made room for that many bytes.
 */
export function writePagesSection(buf: Uint8Array, at: number, pages: PagesSection): number {
  let i = at;
  for (const list of [pages.written, pages.freed, pages.freedYoung]) {
    for (const id of list) {
      writeU64(buf, i, id);
      i += PAGES_ID_SIZE;
    }
  }
  writeU64(buf, i + PAGES_PAGE_COUNT_OFFSET, pages.pageCount);
  writeU64(buf, i + PAGES_ENTRY_COUNT_OFFSET, pages.entryCount);
  writeU32(buf, i + PAGES_DEPTH_OFFSET, pages.depth);
  writeU32(buf, i + PAGES_WRITTEN_COUNT_OFFSET, pages.written.length);
  writeU32(buf, i + PAGES_FREED_COUNT_OFFSET, pages.freed.length);
  writeU32(buf, i + PAGES_FREED_YOUNG_COUNT_OFFSET, pages.freedYoung.length);
  writeU32(buf, i + PAGES_RESERVED_OFFSET, 0);
  writeU32(buf, i + PAGES_MAGIC_OFFSET, PAGES_MAGIC);
  return i + PAGES_TAIL_SIZE;
}

/**
 * The pages section of the commit record at record[offset..], or null when
 * its header has flag bit 1 clear (any record type). Reads only the 40
 * header bytes and the section, which ends where the payload does; it never
 * walks the ops, so a caller may pread just the header, then the record's
 * last 52 bytes (section tail and trailer) to learn the id counts, then the
 * ids, into a buffer as long as the record whose other bytes it never fills.
 *
 * It checks no CRC: pass a record recordVerify has accepted, or one whose
 * header and section bytes the caller trusts. It still checks what it reads
 * against spec §5.2 and throws `Corrupt` rather than return a wrong section
 * (`UnsupportedFormat` for a record version other than 0), and
 * `InvalidArgument` when `offset` is not an integer or `record` ends before
 * the header or the payload the header describes.
 */
export function readPagesSection(record: Uint8Array, offset = 0): PagesSection | null {
  if (!(record instanceof Uint8Array)) throw new NorthstarError('InvalidArgument', 'record must be a Uint8Array');
  if (!Number.isSafeInteger(offset) || offset < 0 || record.length - offset < RECORD_HEADER_SIZE) {
    throw new NorthstarError('InvalidArgument', `no 40-byte record header at offset ${String(offset)} of a buffer of ${record.length} bytes`);
  }
  if (readU32(record, offset + RECORD_MAGIC_OFFSET) !== RECORD_MAGIC) throw corrupt(offset, 'no record magic');
  if (readU16(record, offset + RECORD_VERSION_OFFSET) !== RECORD_VERSION) {
    throw new NorthstarError('UnsupportedFormat', `commit-log record at ${offset}: record version ${readU16(record, offset + RECORD_VERSION_OFFSET)}`);
  }
  if ((readU16(record, offset + RECORD_FLAGS_OFFSET) & RECORD_FLAG_PAGES) === 0) return null;
  if (readU16(record, offset + RECORD_TYPE_OFFSET) !== RecordType.Commit) throw corrupt(offset, 'pages flag on a record that is not a commit');
  const length = readU32(record, offset + RECORD_PAYLOAD_LENGTH_OFFSET);
  const end = offset + RECORD_HEADER_SIZE + length;
  if (end > record.length) {
    throw new NorthstarError('InvalidArgument', `the payload of the record at ${offset} ends at ${end}, past the end of a buffer of ${record.length} bytes`);
  }
  if (length < COMMIT_OPS_OFFSET + PAGES_TAIL_SIZE) throw corrupt(offset, `payload of ${length} bytes has no room for a pages section`);
  const t = end - PAGES_TAIL_SIZE;
  if (readU32(record, t + PAGES_MAGIC_OFFSET) !== PAGES_MAGIC) throw corrupt(offset, 'bad pages-section magic');
  if (readU32(record, t + PAGES_RESERVED_OFFSET) !== 0) throw corrupt(offset, 'pages-section reserved field is not 0');
  const counts = [PAGES_WRITTEN_COUNT_OFFSET, PAGES_FREED_COUNT_OFFSET, PAGES_FREED_YOUNG_COUNT_OFFSET].map((f) => readU32(record, t + f));
  const ids = counts[0]! + counts[1]! + counts[2]!;
  if (ids * PAGES_ID_SIZE > length - COMMIT_OPS_OFFSET - PAGES_TAIL_SIZE) throw corrupt(offset, `${ids} page ids do not fit in a payload of ${length} bytes`);
  let i = t - ids * PAGES_ID_SIZE;
  const lists = counts.map((n) => {
    const list = new Array<number>(n);
    for (let j = 0; j < n; j++, i += PAGES_ID_SIZE) {
      const id = readU64(record, i);
      if (id < 0) throw corrupt(offset, 'a page id above 2^53 − 1');
      list[j] = id;
    }
    return list;
  });
  const pageCount = readU64(record, t + PAGES_PAGE_COUNT_OFFSET);
  const entryCount = readU64(record, t + PAGES_ENTRY_COUNT_OFFSET);
  if (pageCount < 0 || entryCount < 0) throw corrupt(offset, 'page count or entry count above 2^53 − 1');
  return { pageCount, entryCount, depth: readU32(record, t + PAGES_DEPTH_OFFSET), written: lists[0]!, freed: lists[1]!, freedYoung: lists[2]! };
}

function corrupt(offset: number, why: string): NorthstarError {
  return new NorthstarError('Corrupt', `commit-log record at ${offset}: ${why}`);
}

function checkSafe(v: unknown, what: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new NorthstarError('InvalidArgument', `${what} must be a non-negative safe integer, got ${String(v)}`);
  }
}

/** Checks a list of page ids; returns its length. */
function checkIds(list: unknown, what: string): number {
  if (!Array.isArray(list)) throw new NorthstarError('InvalidArgument', `${what} must be an array of page ids`);
  if (list.length > MAX_U32) throw new NorthstarError('InvalidArgument', `${what} holds ${list.length} ids, more than a u32 count`);
  for (let i = 0; i < list.length; i++) checkSafe(list[i], `${what}[${i}]`);
  return list.length;
}
