// Commit-log records (spec/commit_record_v0.md): the writer's RecordBuilder
// beside the readers decodeRecord and scanRecords. Byte work that touches a
// whole record (CRCs, walking the ops) is done by the recordSeal,
// recordVerify and recordDecode kernels; this file lays out fields and checks
// the limits of spec §6 before anything is written.

import { NorthstarError } from '../errors.js';
import { readU16, readU32, readU64, writeU16, writeU32, writeU64 } from '../format/bytes.js';
import type { Kernels } from '../native/kernels.js';
import {
  CHECKPOINT_MAGIC,
  CHECKPOINT_MAGIC_OFFSET,
  CHECKPOINT_PAGE_COUNT_OFFSET,
  CHECKPOINT_PAYLOAD_SIZE,
  CHECKPOINT_REPLAY_FROM_OFFSET,
  CHECKPOINT_RESERVED_OFFSET,
  CHECKPOINT_ROOT_OFFSET,
  CHECKPOINT_TXN_ID_OFFSET,
  COMMIT_MAGIC,
  COMMIT_MAGIC_OFFSET,
  COMMIT_OP_COUNT_OFFSET,
  COMMIT_OPS_OFFSET,
  COMMIT_RESERVED_OFFSET,
  COMMIT_ROOT_OFFSET,
  COMMIT_TXN_ID_OFFSET,
  DEFAULT_MAX_PAYLOAD,
  MAX_PAYLOAD_CEILING,
  MAX_RECORD_KEY_SIZE,
  MAX_RECORD_VALUE_SIZE,
  MIN_MAX_PAYLOAD,
  MIN_RECORD_KEY_SIZE,
  OP_FLAGS_OFFSET,
  OP_KEY_LENGTH_OFFSET,
  OP_KEY_OFFSET,
  OP_TYPE_OFFSET,
  OP_VALUE_LENGTH_OFFSET,
  OpType,
  RECORD_FLAG_PAGES,
  RECORD_FLAG_UNSYNCED_BEFORE,
  RECORD_FLAGS_OFFSET,
  RECORD_HEADER_LENGTH_OFFSET,
  RECORD_HEADER_SIZE,
  RECORD_MAGIC,
  RECORD_MAGIC_OFFSET,
  RECORD_OVERHEAD,
  RECORD_PAYLOAD_LENGTH_OFFSET,
  RECORD_PREV_POSITION_OFFSET,
  RECORD_TXN_ID_OFFSET,
  RECORD_TYPE_OFFSET,
  RECORD_VERSION,
  RECORD_VERSION_OFFSET,
  RecordStatus,
  RecordType,
  TRAILER_SIZE,
  recordStatusName,
} from '../format/record.js';
import { type PagesSection, pagesSectionLength, readPagesSection, writePagesSection } from './pages.js';

// The pages section has its own file (reader beside writer); readers of
// records find it here too.
export { type PagesSection, readPagesSection } from './pages.js';

/** Payload offset of a record that starts at 0. */
const P = RECORD_HEADER_SIZE;
const DEFAULT_INITIAL_CAPACITY = 64 * 1024;

export interface RecordBuilderOptions {
  /**
   * Largest payload a commit record may have, in bytes: the largest
   * transaction the database accepts. Default `DEFAULT_MAX_PAYLOAD` (64 MiB);
   * at most `MAX_PAYLOAD_CEILING` (1 GiB), at least what one put of a largest
   * key and value needs, so that any single put fits.
   */
  maxPayload?: number;
  /** Starting size of the buffer, in bytes; it doubles as needed. Default 64 KiB. */
  initialCapacity?: number;
}

/**
 * Accumulates the ops of one write transaction, in the writer's order, as
 * the payload of a commit record (spec §3), in one reusable buffer that
 * starts at `initialCapacity` and doubles as needed (it never shrinks).
 *
 * Usage: `reset(txnId)`, then `put`/`del` per op, then `seal(...)`. A call
 * that breaks a limit of spec §6 throws `InvalidArgument` before anything is
 * written: the builder is exactly as before the call. Only the write
 * transaction's owner calls it; it is not safe to share between writers.
 */
export class RecordBuilder {
  readonly maxPayload: number;
  private buf: Uint8Array;
  /** End of the payload so far, as an index into `buf` (the record starts at 0). */
  private end = P + COMMIT_OPS_OFFSET;
  private count = 0;
  private txn = 0;

  constructor(options: RecordBuilderOptions = {}) {
    const max = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (!Number.isSafeInteger(max) || max < MIN_MAX_PAYLOAD || max > MAX_PAYLOAD_CEILING) {
      throw new NorthstarError('InvalidArgument', `maxPayload must be an integer from ${MIN_MAX_PAYLOAD} to ${MAX_PAYLOAD_CEILING}, got ${String(max)}`);
    }
    const cap = options.initialCapacity ?? DEFAULT_INITIAL_CAPACITY;
    if (!Number.isSafeInteger(cap) || cap < 0) {
      throw new NorthstarError('InvalidArgument', `initialCapacity must be a non-negative integer, got ${String(cap)}`);
    }
    this.maxPayload = max;
    this.buf = new Uint8Array(Math.max(cap, RECORD_OVERHEAD + COMMIT_OPS_OFFSET));
  }

  /** Starts the record of transaction `txnId`, dropping any ops; invalidates the last sealed record. */
  reset(txnId: number): void {
    checkU64(txnId, 'txnId');
    this.txn = txnId;
    this.end = P + COMMIT_OPS_OFFSET;
    this.count = 0;
  }

  /** The transaction id given to the last `reset` (0 before any). */
  get txnId(): number {
    return this.txn;
  }

  /** Ops added since the last `reset`. */
  get opCount(): number {
    return this.count;
  }

  /** Payload length of the record so far: the commit header plus every op. */
  get payloadBytes(): number {
    return this.end - P;
  }

  /** Appends a put of `value` under `key`. Both are copied; the caller may reuse them. */
  put(key: Uint8Array, value: Uint8Array): void {
    checkKey(key);
    if (!(value instanceof Uint8Array)) throw new NorthstarError('InvalidArgument', `value must be a Uint8Array, got ${describe(value)}`);
    if (value.length > MAX_RECORD_VALUE_SIZE) {
      throw new NorthstarError('InvalidArgument', `value of ${value.length} bytes exceeds the limit of ${MAX_RECORD_VALUE_SIZE} bytes`);
    }
    const i = this.reserve(OP_KEY_OFFSET + key.length + value.length);
    const b = this.buf;
    b[i + OP_TYPE_OFFSET] = OpType.Put;
    b[i + OP_FLAGS_OFFSET] = 0;
    writeU16(b, i + OP_KEY_LENGTH_OFFSET, key.length);
    writeU32(b, i + OP_VALUE_LENGTH_OFFSET, value.length);
    b.set(key, i + OP_KEY_OFFSET);
    b.set(value, i + OP_KEY_OFFSET + key.length);
    this.count++;
  }

  /** Appends a delete of `key` (copied). */
  del(key: Uint8Array): void {
    checkKey(key);
    const i = this.reserve(OP_KEY_OFFSET + key.length);
    const b = this.buf;
    b[i + OP_TYPE_OFFSET] = OpType.Del;
    b[i + OP_FLAGS_OFFSET] = 0;
    writeU16(b, i + OP_KEY_LENGTH_OFFSET, key.length);
    writeU32(b, i + OP_VALUE_LENGTH_OFFSET, 0);
    b.set(key, i + OP_KEY_OFFSET);
    this.count++;
  }

  /**
   * Completes the commit record: header and commit-header fields, then
   * `kernels.recordSeal` (CRCs, trailer). `prevPosition` is the log position
   * of the previous record, or this record's own position when it is the
   * first of the log (spec §2.1); `rootPageId` is the tree root after the
   * commit; `flags` the header flags the caller chooses, 0 or
   * RECORD_FLAG_UNSYNCED_BEFORE (spec §2.2). `pages`, when given, is written
   * as the pages section after the ops and sets RECORD_FLAG_PAGES (spec
   * §3.5); it is read during the call only.
   *
   * Throws `InvalidArgument`, changing nothing, when an argument breaks a
   * limit of spec §6 or the section would take the payload past `MAX_PAYLOAD_CEILING` (the ops alone are held to `maxPayload`).
   * Returns a view of the whole record inside the builder's buffer, valid
   * until the next `reset`, `put`, `del` or `seal`. May be called again after
   * more ops; the new record then includes them.
   */
  seal(prevPosition: number, rootPageId: number, kernels: Kernels, flags = 0, pages?: PagesSection | null): Uint8Array {
    checkU64(prevPosition, 'prevPosition');
    checkU64(rootPageId, 'rootPageId');
    if (!Number.isInteger(flags) || (flags & ~RECORD_FLAG_UNSYNCED_BEFORE) !== 0) {
      throw new NorthstarError('InvalidArgument', `flags must be 0 or RECORD_FLAG_UNSYNCED_BEFORE (the pages flag comes with pages), got ${String(flags)}`);
    }
    let payloadEnd = this.end;
    if (pages !== undefined && pages !== null) {
      // maxPayload bounds the transaction (its ops); the section, a few bytes per page
      // the commit touched, may go past it up to what every reader accepts.
      const section = pagesSectionLength(pages);
      this.ensureRoom(this.end - P + section, MAX_PAYLOAD_CEILING);
      payloadEnd = writePagesSection(this.buf, this.end, pages);
      flags |= RECORD_FLAG_PAGES;
    }
    const b = this.buf;
    writeHeader(b, RecordType.Commit, this.txn, prevPosition, payloadEnd - P, flags);
    writeU32(b, P + COMMIT_MAGIC_OFFSET, COMMIT_MAGIC);
    writeU64(b, P + COMMIT_TXN_ID_OFFSET, this.txn);
    writeU64(b, P + COMMIT_ROOT_OFFSET, rootPageId);
    writeU32(b, P + COMMIT_OP_COUNT_OFFSET, this.count);
    writeU32(b, P + COMMIT_RESERVED_OFFSET, 0);
    const total = kernels.recordSeal(b, 0);
    return b.subarray(0, total);
  }

  /**
   * Makes room for `size` more payload bytes (and the trailer after them);
   * returns where they start. Throws, changing nothing, when the payload
   * would exceed `maxPayload`.
   */
  private reserve(size: number): number {
    const at = this.end;
    this.ensureRoom(at - P + size);
    this.end = at + size;
    return at;
  }

  /**
   * Grows the buffer, keeping the bytes up to `end`, to hold a payload of
   * `payload` bytes and the trailer after it. Throws, changing nothing, when
   * `payload` exceeds `maxPayload`.
   */
  private ensureRoom(payload: number, limit = this.maxPayload): void {
    if (payload > limit) {
      throw new NorthstarError(
        'InvalidArgument',
        `transaction too large: its commit record would need a payload of ${payload} bytes, above the limit of ${limit} bytes`,
      );
    }
    const need = P + payload + TRAILER_SIZE;
    if (need > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < need) cap *= 2;
      const grown = new Uint8Array(cap);
      grown.set(this.buf.subarray(0, this.end));
      this.buf = grown;
    }
  }
}

// ---- other record types ------------------------------------------------------------

/** Fields of a checkpoint record (spec §3.3). */
export interface CheckpointFields {
  /** The last commit whose state the data file holds durably (its meta is synced). */
  txnId: number;
  /** Root page id recorded in that meta. */
  rootPageId: number;
  /** Page count recorded in that meta. */
  pageCount: number;
  /** Log position of the first record recovery must replay (the one after commit `txnId`'s). */
  replayFrom: number;
}

/** A new sealed checkpoint record; `prevPosition` as for `RecordBuilder.seal`. */
export function buildCheckpointRecord(fields: CheckpointFields, prevPosition: number, kernels: Kernels): Uint8Array {
  checkU64(fields.txnId, 'txnId');
  checkU64(fields.rootPageId, 'rootPageId');
  checkU64(fields.pageCount, 'pageCount');
  checkU64(fields.replayFrom, 'replayFrom');
  checkU64(prevPosition, 'prevPosition');
  const b = new Uint8Array(RECORD_OVERHEAD + CHECKPOINT_PAYLOAD_SIZE);
  writeHeader(b, RecordType.Checkpoint, fields.txnId, prevPosition, CHECKPOINT_PAYLOAD_SIZE);
  writeU32(b, P + CHECKPOINT_MAGIC_OFFSET, CHECKPOINT_MAGIC);
  writeU32(b, P + CHECKPOINT_RESERVED_OFFSET, 0);
  writeU64(b, P + CHECKPOINT_TXN_ID_OFFSET, fields.txnId);
  writeU64(b, P + CHECKPOINT_ROOT_OFFSET, fields.rootPageId);
  writeU64(b, P + CHECKPOINT_PAGE_COUNT_OFFSET, fields.pageCount);
  writeU64(b, P + CHECKPOINT_REPLAY_FROM_OFFSET, fields.replayFrom);
  kernels.recordSeal(b, 0);
  return b;
}

function writeHeader(b: Uint8Array, type: RecordType, txnId: number, prevPosition: number, payloadLength: number, flags = 0): void {
  writeU32(b, RECORD_MAGIC_OFFSET, RECORD_MAGIC);
  writeU16(b, RECORD_VERSION_OFFSET, RECORD_VERSION);
  writeU16(b, RECORD_TYPE_OFFSET, type);
  writeU16(b, RECORD_HEADER_LENGTH_OFFSET, RECORD_HEADER_SIZE);
  writeU16(b, RECORD_FLAGS_OFFSET, flags);
  writeU64(b, RECORD_TXN_ID_OFFSET, txnId);
  writeU64(b, RECORD_PREV_POSITION_OFFSET, prevPosition);
  writeU32(b, RECORD_PAYLOAD_LENGTH_OFFSET, payloadLength);
}

// ---- reading ---------------------------------------------------------------------------

export interface DecodedOp {
  type: OpType;
  /** View into the buffer the record was decoded from. */
  key: Uint8Array;
  /** View into the buffer the record was decoded from; empty for a delete. */
  value: Uint8Array;
}

interface RecordCommon {
  /** Total length of the record in bytes (header + payload + trailer). */
  length: number;
  txnId: number;
  prevPosition: number;
}

export interface CommitRecord extends RecordCommon {
  type: typeof RecordType.Commit;
  rootPageId: number;
  ops: DecodedOp[];
  /** The pages section (spec §3.5), or null when the record has none. */
  pages: PagesSection | null;
}

export interface CheckpointRecord extends RecordCommon, CheckpointFields {
  type: typeof RecordType.Checkpoint;
}

export type DecodedRecord = CommitRecord | CheckpointRecord;

/** Scratch for recordDecode; grows to the largest op count seen. */
let opScratch = new Uint32Array(4 * 256);

/**
 * Decodes the record at buf[offset..] for tools and tests. Keys, values and
 * payloads are views into `buf`, valid as long as its bytes are. Throws
 * `UnsupportedFormat` for a newer record version and `Corrupt` for any
 * other status of recordVerify (Incomplete included), naming the status.
 */
export function decodeRecord(buf: Uint8Array, offset: number, kernels: Kernels): DecodedRecord {
  const length = kernels.recordVerify(buf, offset);
  if (length < 0) {
    const code = length === RecordStatus.UnsupportedVersion ? 'UnsupportedFormat' : 'Corrupt';
    throw new NorthstarError(code, `commit-log record at ${offset}: ${recordStatusName(length)}`);
  }
  return decodeVerified(buf, offset, length, kernels);
}

/** decodeRecord of a record recordVerify has accepted with total `length`. */
function decodeVerified(buf: Uint8Array, offset: number, length: number, kernels: Kernels): DecodedRecord {
  const type = readU16(buf, offset + RECORD_TYPE_OFFSET) as RecordType;
  const txnId = readU64(buf, offset + RECORD_TXN_ID_OFFSET);
  const prevPosition = readU64(buf, offset + RECORD_PREV_POSITION_OFFSET);
  const p = offset + P;
  if (type === RecordType.Checkpoint) {
    return {
      type,
      length,
      txnId,
      prevPosition,
      rootPageId: readU64(buf, p + CHECKPOINT_ROOT_OFFSET),
      pageCount: readU64(buf, p + CHECKPOINT_PAGE_COUNT_OFFSET),
      replayFrom: readU64(buf, p + CHECKPOINT_REPLAY_FROM_OFFSET),
    };
  }
  const count = readU32(buf, p + COMMIT_OP_COUNT_OFFSET);
  if (opScratch.length < 4 * count) opScratch = new Uint32Array(4 * count);
  const out = opScratch;
  kernels.recordDecode(buf, offset, out);
  const ops: DecodedOp[] = new Array<DecodedOp>(count);
  for (let i = 0; i < count; i++) {
    const k = out[4 * i + 1]!;
    const v = k + out[4 * i + 2]!;
    ops[i] = { type: out[4 * i]! as OpType, key: buf.subarray(k, v), value: buf.subarray(v, v + out[4 * i + 3]!) };
  }
  return { type, length, txnId, prevPosition, rootPageId: readU64(buf, p + COMMIT_ROOT_OFFSET), ops, pages: readPagesSection(buf, offset) };
}

/** One step of scanRecords: a valid record, or where and why the scan stopped. */
export type ScanEntry =
  | { kind: 'record'; position: number; record: DecodedRecord }
  | {
      kind: 'end';
      position: number;
      /** 0: the buffer ends exactly after the last record; else the RecordStatus at `position`. */
      status: number;
    };

/**
 * Every record of `buf` from byte 0, back to back, for tests and tools; the
 * last entry is always `kind: 'end'`. Positions are indexes into `buf`. It
 * stops at the first record recordVerify rejects and does not check the
 * `prevPosition` chain or txn order: the reader rules of spec §7 are the
 * recovery's.
 */
export function* scanRecords(buf: Uint8Array, kernels: Kernels): Generator<ScanEntry, void, undefined> {
  let position = 0;
  while (position < buf.length) {
    const length = kernels.recordVerify(buf, position);
    if (length < 0) {
      yield { kind: 'end', position, status: length };
      return;
    }
    yield { kind: 'record', position, record: decodeVerified(buf, position, length, kernels) };
    position += length;
  }
  yield { kind: 'end', position, status: 0 };
}

// ---- argument checks ----------------------------------------------------------------

function describe(v: unknown): string {
  return v === null ? 'null' : typeof v;
}

function checkKey(key: unknown): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array)) throw new NorthstarError('InvalidArgument', `key must be a Uint8Array, got ${describe(key)}`);
  if (key.length < MIN_RECORD_KEY_SIZE) throw new NorthstarError('InvalidArgument', 'key must not be empty');
  if (key.length > MAX_RECORD_KEY_SIZE) {
    throw new NorthstarError('InvalidArgument', `key of ${key.length} bytes exceeds the limit of ${MAX_RECORD_KEY_SIZE} bytes`);
  }
}

function checkU64(v: unknown, what: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new NorthstarError('InvalidArgument', `${what} must be a non-negative safe integer, got ${String(v)}`);
  }
}
