// Pure-TypeScript twins of the commit-log record kernels
// (crates/northstar-native/src/kernels/log.rs). Contract, shared byte for byte with
// the Rust side: spec/commit_record_v0.md §4 (recordSeal), §5 (recordVerify)
// and §5.3 (recordDecode). Bad arguments throw TypeError (wrong type) or
// RangeError (bad offset, a record that does not fit, an invalid record handed
// to recordDecode). A kernel never reads or writes outside its buffers,
// whatever the bytes in them say.

import { readU16, readU32, writeU32 } from '../format/bytes.js';
import {
  CHECKPOINT_MAGIC,
  CHECKPOINT_PAGE_COUNT_OFFSET,
  CHECKPOINT_PAYLOAD_SIZE,
  CHECKPOINT_REPLAY_FROM_OFFSET,
  CHECKPOINT_RESERVED_OFFSET,
  CHECKPOINT_ROOT_OFFSET,
  CHECKPOINT_TXN_ID_OFFSET,
  COMMIT_MAGIC,
  COMMIT_OP_COUNT_OFFSET,
  COMMIT_OPS_OFFSET,
  COMMIT_RESERVED_OFFSET,
  COMMIT_ROOT_OFFSET,
  COMMIT_TXN_ID_OFFSET,
  MAX_PAYLOAD_CEILING,
  MAX_RECORD_KEY_SIZE,
  MAX_RECORD_VALUE_SIZE,
  MIN_RECORD_KEY_SIZE,
  OP_FLAGS_OFFSET,
  OP_KEY_LENGTH_OFFSET,
  OP_KEY_OFFSET,
  OP_TYPE_OFFSET,
  OP_VALUE_LENGTH_OFFSET,
  OpType,
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
  RECORD_FLAGS_KNOWN,
  RECORD_FLAGS_OFFSET,
  RECORD_HEADER_CRC_OFFSET,
  RECORD_HEADER_LENGTH_OFFSET,
  RECORD_HEADER_SIZE,
  RECORD_MAGIC,
  RECORD_MAGIC_OFFSET,
  RECORD_OVERHEAD,
  RECORD_PAYLOAD_CRC_OFFSET,
  RECORD_PAYLOAD_LENGTH_OFFSET,
  RECORD_PREV_POSITION_OFFSET,
  RECORD_TXN_ID_OFFSET,
  RECORD_TYPE_OFFSET,
  RECORD_VERSION,
  RECORD_VERSION_OFFSET,
  RecordStatus,
  RecordType,
  TRAILER_CRC_OFFSET,
  TRAILER_LENGTH_OFFSET,
  TRAILER_MAGIC,
  TRAILER_MAGIC_OFFSET,
} from '../format/record.js';
import { crc32cRange } from './crc32c.js';

/** Key offsets handed out by recordDecode are u32: the record must end below 2^32. */
const MAX_DECODE_END = 0xffffffff;
/** High word of a u64 whose value is still a safe integer (< 2^53). */
const MAX_SAFE_HI = 0x1f_ffff;
const ZERO4 = new Uint8Array(4);

function checkBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
}

function checkOffset(v: unknown, max: number, what: string): asserts v is number {
  if (typeof v !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} ${v} out of range 0..${max}`);
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return (
    a.byteLength > 0 &&
    b.byteLength > 0 &&
    a.buffer === b.buffer &&
    a.byteOffset < b.byteOffset + b.byteLength &&
    b.byteOffset < a.byteOffset + a.byteLength
  );
}

/** Header CRC (spec §4): the 40 header bytes at `o` with the header-CRC field read as zero. */
function headerCrc(buf: Uint8Array, o: number): number {
  let c = crc32cRange(buf, o, o + RECORD_HEADER_CRC_OFFSET, 0);
  c = crc32cRange(ZERO4, 0, 4, c);
  return crc32cRange(buf, o + RECORD_PAYLOAD_CRC_OFFSET, o + RECORD_HEADER_SIZE, c);
}

/** Trailer CRC (spec §4): the 40 header bytes as stored, then the trailer's first 8 bytes. */
function trailerCrc(buf: Uint8Array, o: number, t: number): number {
  const c = crc32cRange(buf, o, o + RECORD_HEADER_SIZE, 0);
  return crc32cRange(buf, t, t + TRAILER_CRC_OFFSET, c);
}

/** True when the u64 at `o` is at most 2^53 − 1 (spec §1). */
function safeU64(buf: Uint8Array, o: number): boolean {
  return readU32(buf, o + 4) <= MAX_SAFE_HI;
}

function sameU64(buf: Uint8Array, a: number, b: number): boolean {
  return readU32(buf, a) === readU32(buf, b) && readU32(buf, a + 4) === readU32(buf, b + 4);
}

/**
 * Completes the record whose header fields (magic … payload length) and
 * payload are already at buf[offset..]: writes the payload CRC, the header
 * CRC and the trailer. Returns the record's total length. Validates nothing
 * but what it needs to stay inside `buf` (spec §4).
 */
export function recordSeal(buf: Uint8Array, offset: number): number {
  checkBytes(buf, 'buf');
  checkOffset(offset, buf.length, 'offset');
  if (buf.length - offset < RECORD_HEADER_SIZE) {
    throw new RangeError(`record header at ${offset} does not fit in a buffer of ${buf.length} bytes`);
  }
  const payloadLength = readU32(buf, offset + RECORD_PAYLOAD_LENGTH_OFFSET);
  if (payloadLength > MAX_PAYLOAD_CEILING) {
    throw new RangeError(`payload length ${payloadLength} exceeds the format's ceiling of ${MAX_PAYLOAD_CEILING} bytes`);
  }
  const total = RECORD_OVERHEAD + payloadLength;
  if (buf.length - offset < total) {
    throw new RangeError(`record of ${total} bytes at ${offset} does not fit in a buffer of ${buf.length} bytes`);
  }
  const p = offset + RECORD_HEADER_SIZE;
  const t = p + payloadLength;
  writeU32(buf, offset + RECORD_PAYLOAD_CRC_OFFSET, crc32cRange(buf, p, t, 0));
  writeU32(buf, offset + RECORD_HEADER_CRC_OFFSET, headerCrc(buf, offset));
  writeU32(buf, t + TRAILER_MAGIC_OFFSET, TRAILER_MAGIC);
  writeU32(buf, t + TRAILER_LENGTH_OFFSET, total);
  writeU32(buf, t + TRAILER_CRC_OFFSET, trailerCrc(buf, offset, t));
  return total;
}

/**
 * The total length (> 0) of the record at buf[offset..] if it is whole and
 * valid, else the first failing RecordStatus (< 0) in the order of spec §5.
 */
export function recordVerify(buf: Uint8Array, offset: number): number {
  checkBytes(buf, 'buf');
  checkOffset(offset, buf.length, 'offset');
  return verifyAt(buf, offset);
}

/**
 * For the valid commit record at buf[offset..]: four u32 per op into `out`,
 * [opType, keyOffset, keyLength, valueLength], keyOffset an index into `buf`
 * and the value right after the key. Returns the op count. Runs every check
 * of recordVerify first: a record it rejects is a RangeError here.
 */
export function recordDecode(buf: Uint8Array, offset: number, out: Uint32Array): number {
  checkBytes(buf, 'buf');
  checkOffset(offset, buf.length, 'offset');
  if (!(out instanceof Uint32Array)) throw new TypeError('out must be a Uint32Array');
  if (overlaps(buf, out)) throw new RangeError('out overlaps buf');
  const total = verifyAt(buf, offset);
  if (total < 0) throw new RangeError(`record at ${offset} is not valid (status ${total})`);
  if (readU16(buf, offset + RECORD_TYPE_OFFSET) !== RecordType.Commit) {
    throw new RangeError(`record at ${offset} is not a commit record`);
  }
  if (offset + total > MAX_DECODE_END) throw new RangeError(`record at ${offset} ends beyond 2^32 − 1: key offsets would not fit in a u32`);
  const p = offset + RECORD_HEADER_SIZE;
  const count = readU32(buf, p + COMMIT_OP_COUNT_OFFSET);
  if (out.length < count * 4) throw new RangeError(`out holds ${out.length >>> 2} ops, record has ${count}`);
  let i = p + COMMIT_OPS_OFFSET;
  for (let n = 0, j = 0; n < count; n++, j += 4) {
    const klen = readU16(buf, i + OP_KEY_LENGTH_OFFSET);
    const vlen = readU32(buf, i + OP_VALUE_LENGTH_OFFSET);
    out[j] = buf[i + OP_TYPE_OFFSET]!;
    out[j + 1] = i + OP_KEY_OFFSET;
    out[j + 2] = klen;
    out[j + 3] = vlen;
    i += OP_KEY_OFFSET + klen + vlen;
  }
  return count;
}

/** recordVerify after the argument checks (`0 <= o <= buf.length`). */
function verifyAt(buf: Uint8Array, o: number): number {
  const avail = buf.length - o;
  if (avail < 4) return RecordStatus.Incomplete;
  if (readU32(buf, o + RECORD_MAGIC_OFFSET) !== RECORD_MAGIC) return RecordStatus.BadMagic;
  if (avail < RECORD_HEADER_SIZE) return RecordStatus.Incomplete;
  if (readU32(buf, o + RECORD_HEADER_CRC_OFFSET) !== headerCrc(buf, o)) return RecordStatus.BadHeaderChecksum;
  if (readU16(buf, o + RECORD_VERSION_OFFSET) !== RECORD_VERSION) return RecordStatus.UnsupportedVersion;
  const type = readU16(buf, o + RECORD_TYPE_OFFSET);
  const flags = readU16(buf, o + RECORD_FLAGS_OFFSET);
  const payloadLength = readU32(buf, o + RECORD_PAYLOAD_LENGTH_OFFSET);
  if (
    readU16(buf, o + RECORD_HEADER_LENGTH_OFFSET) !== RECORD_HEADER_SIZE ||
    (flags & ~RECORD_FLAGS_KNOWN) !== 0 ||
    ((flags & RECORD_FLAG_PAGES) !== 0 && type !== RecordType.Commit) ||
    type > RecordType.Checkpoint ||
    !safeU64(buf, o + RECORD_TXN_ID_OFFSET) ||
    !safeU64(buf, o + RECORD_PREV_POSITION_OFFSET) ||
    payloadLength > MAX_PAYLOAD_CEILING
  ) {
    return RecordStatus.BadHeader;
  }
  const total = RECORD_OVERHEAD + payloadLength;
  if (avail < total) return RecordStatus.Incomplete;
  const p = o + RECORD_HEADER_SIZE;
  const t = p + payloadLength;
  if (readU32(buf, o + RECORD_PAYLOAD_CRC_OFFSET) !== crc32cRange(buf, p, t, 0)) return RecordStatus.BadPayloadChecksum;
  if (
    readU32(buf, t + TRAILER_MAGIC_OFFSET) !== TRAILER_MAGIC ||
    readU32(buf, t + TRAILER_LENGTH_OFFSET) !== total ||
    readU32(buf, t + TRAILER_CRC_OFFSET) !== trailerCrc(buf, o, t)
  ) {
    return RecordStatus.BadTrailer;
  }
  const ok =
    type === RecordType.Commit
      ? commitPayloadValid(buf, o, p, payloadLength, (flags & RECORD_FLAG_PAGES) !== 0)
      : checkpointPayloadValid(buf, o, p, payloadLength);
  return ok ? total : RecordStatus.BadPayload;
}

/**
 * Commit payload rules of spec §5.2; the payload lies in buf[p, p + len) and
 * ends in a pages section when `pages` (header flag bit 1).
 */
function commitPayloadValid(buf: Uint8Array, o: number, p: number, len: number, pages: boolean): boolean {
  if (len < COMMIT_OPS_OFFSET) return false;
  if (readU32(buf, p) !== COMMIT_MAGIC) return false;
  if (!sameU64(buf, p + COMMIT_TXN_ID_OFFSET, o + RECORD_TXN_ID_OFFSET)) return false;
  if (!safeU64(buf, p + COMMIT_ROOT_OFFSET)) return false;
  if (readU32(buf, p + COMMIT_RESERVED_OFFSET) !== 0) return false;
  // The ops end where the pages section starts, or at the end of the payload.
  const end = pages ? pagesSectionStart(buf, p, len) : p + len;
  if (end < 0) return false;
  let i = p + COMMIT_OPS_OFFSET;
  // Each op takes at least 9 bytes, so a huge count runs out of payload quickly.
  for (let n = readU32(buf, p + COMMIT_OP_COUNT_OFFSET); n > 0; n--) {
    if (end - i < OP_KEY_OFFSET) return false;
    const type = buf[i + OP_TYPE_OFFSET]!;
    const klen = readU16(buf, i + OP_KEY_LENGTH_OFFSET);
    const vlen = readU32(buf, i + OP_VALUE_LENGTH_OFFSET);
    if (
      type > OpType.Del ||
      buf[i + OP_FLAGS_OFFSET] !== 0 ||
      klen < MIN_RECORD_KEY_SIZE ||
      klen > MAX_RECORD_KEY_SIZE ||
      vlen > MAX_RECORD_VALUE_SIZE ||
      (type === OpType.Del && vlen !== 0)
    ) {
      return false;
    }
    i += OP_KEY_OFFSET + klen + vlen;
    if (i > end) return false;
  }
  return i === end;
}

/**
 * Where the pages section (spec §3.5) of the commit payload buf[p, p + len)
 * starts, or -1 when it breaks a rule of spec §5.2: the tail fits after the
 * commit header, its magic matches, reserved is 0, the ids fit between the
 * commit header and the tail, and page count, entry count and every id are
 * at most 2^53 − 1.
 */
function pagesSectionStart(buf: Uint8Array, p: number, len: number): number {
  if (len < COMMIT_OPS_OFFSET + PAGES_TAIL_SIZE) return -1;
  const t = p + len - PAGES_TAIL_SIZE;
  if (
    readU32(buf, t + PAGES_MAGIC_OFFSET) !== PAGES_MAGIC ||
    readU32(buf, t + PAGES_RESERVED_OFFSET) !== 0 ||
    !safeU64(buf, t + PAGES_PAGE_COUNT_OFFSET) ||
    !safeU64(buf, t + PAGES_ENTRY_COUNT_OFFSET)
  ) {
    return -1;
  }
  // Below 3 × 2^32: exact in a double.
  const ids = readU32(buf, t + PAGES_WRITTEN_COUNT_OFFSET) + readU32(buf, t + PAGES_FREED_COUNT_OFFSET) + readU32(buf, t + PAGES_FREED_YOUNG_COUNT_OFFSET);
  if (ids * PAGES_ID_SIZE > len - COMMIT_OPS_OFFSET - PAGES_TAIL_SIZE) return -1;
  const start = t - ids * PAGES_ID_SIZE;
  for (let i = start; i < t; i += PAGES_ID_SIZE) if (!safeU64(buf, i)) return -1;
  return start;
}

/** Checkpoint payload rules of spec §3.3. */
function checkpointPayloadValid(buf: Uint8Array, o: number, p: number, len: number): boolean {
  return (
    len === CHECKPOINT_PAYLOAD_SIZE &&
    readU32(buf, p) === CHECKPOINT_MAGIC &&
    readU32(buf, p + CHECKPOINT_RESERVED_OFFSET) === 0 &&
    sameU64(buf, p + CHECKPOINT_TXN_ID_OFFSET, o + RECORD_TXN_ID_OFFSET) &&
    safeU64(buf, p + CHECKPOINT_ROOT_OFFSET) &&
    safeU64(buf, p + CHECKPOINT_PAGE_COUNT_OFFSET) &&
    safeU64(buf, p + CHECKPOINT_REPLAY_FROM_OFFSET)
  );
}
