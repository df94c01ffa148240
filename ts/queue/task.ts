// The task record (spec/task_queue_v0.md §3): the value of a queue's T key.
// Big-endian, version byte first; fixed fields, then the variable ones.
//
//   0  u8   version (TASK_RECORD_VERSION)
//   1  u8   state (TaskState)
//   2  u16  reserved, 0
//   4  i32  priority
//   8  u32  attempt: claims so far
//   12 u32  maxAttempts
//   16 u64  id
//   24 u64  createdAt (ms)
//   32 u64  readyAt (ms): when it may run (pending), when it last became ready (otherwise)
//   40 u64  leaseUntil (ms): claimed; 0 otherwise
//   48 u64  token: the fencing token of its latest claim; 0 before the first
//   56 u64  updatedAt (ms)
//   64 u64  finishedAt (ms): done, dead, cancelled; 0 otherwise
//   72      type, worker, key: u16 length + UTF-8 each
//           payload, result, error: u8 kind (0 none, 1 JSON, 2 bytes) + u32 length + bytes each

import { NorthstarError } from '../errors.js';
import { bufferView } from '../format/bytes.js';
import { readU64, writeU64 } from './keys.js';

export const TASK_RECORD_VERSION = 1;
export const TASK_FIXED_BYTES = 72;

export const TaskState = { pending: 0, claimed: 1, done: 2, dead: 3, cancelled: 4 } as const;
export type TaskStateName = keyof typeof TaskState;
export const STATE_NAMES: readonly TaskStateName[] = ['pending', 'claimed', 'done', 'dead', 'cancelled'];

export const BLOB_NONE = 0;
export const BLOB_JSON = 1;
export const BLOB_BYTES = 2;

/** A payload, result or error as stored: JSON text or raw bytes. */
export interface Blob {
  kind: typeof BLOB_JSON | typeof BLOB_BYTES;
  bytes: Buffer;
}

/** A task record, decoded. Times are ms since the epoch of the queue's clock. */
export interface TaskRecord {
  id: number;
  state: number;
  priority: number;
  attempt: number;
  maxAttempts: number;
  createdAt: number;
  readyAt: number;
  leaseUntil: number;
  token: number;
  updatedAt: number;
  finishedAt: number;
  type: string;
  worker: string;
  key: string;
  payload: Blob | null;
  result: Blob | null;
  error: Blob | null;
}

/** A JSON value or bytes, as stored. Throws InvalidArgument for anything JSON cannot hold. */
export function toBlob(value: unknown, what: string): Blob {
  if (value instanceof Uint8Array) return { kind: BLOB_BYTES, bytes: Buffer.from(value) };
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new NorthstarError('InvalidArgument', `${what} is not JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw new NorthstarError('InvalidArgument', `${what} must be a JSON value or a Uint8Array, got ${typeof value}`);
  return { kind: BLOB_JSON, bytes: Buffer.from(text, 'utf8') };
}

/** The value a blob holds, as it was given (bytes as a Buffer). */
export function fromBlob(blob: Blob | null): unknown {
  if (blob === null) return undefined;
  return blob.kind === BLOB_BYTES ? Buffer.from(blob.bytes) : JSON.parse(blob.bytes.toString('utf8'));
}

function blobBytes(b: Blob | null): number {
  return 5 + (b === null ? 0 : b.bytes.length);
}

export function encodeTask(t: TaskRecord): Buffer {
  // Every claim and completion re-encodes its task: the strings are measured and
  // written in place, not first copied into Buffers of their own.
  const typeLen = Buffer.byteLength(t.type, 'utf8');
  const workerLen = Buffer.byteLength(t.worker, 'utf8');
  const keyLen = Buffer.byteLength(t.key, 'utf8');
  const size = TASK_FIXED_BYTES + 6 + typeLen + workerLen + keyLen + blobBytes(t.payload) + blobBytes(t.result) + blobBytes(t.error);
  const b = Buffer.allocUnsafe(size);
  b[0] = TASK_RECORD_VERSION;
  b[1] = t.state;
  b.writeUInt16BE(0, 2);
  b.writeInt32BE(t.priority, 4);
  b.writeUInt32BE(t.attempt, 8);
  b.writeUInt32BE(t.maxAttempts, 12);
  writeU64(b, 16, t.id);
  writeU64(b, 24, t.createdAt);
  writeU64(b, 32, t.readyAt);
  writeU64(b, 40, t.leaseUntil);
  writeU64(b, 48, t.token);
  writeU64(b, 56, t.updatedAt);
  writeU64(b, 64, t.finishedAt);
  let at = writeString(b, TASK_FIXED_BYTES, t.type, typeLen);
  at = writeString(b, at, t.worker, workerLen);
  at = writeString(b, at, t.key, keyLen);
  at = writeBlob(b, at, t.payload);
  at = writeBlob(b, at, t.result);
  writeBlob(b, at, t.error);
  return b;
}

/** u16 length + UTF-8 at `at`; returns the offset after it. */
function writeString(b: Buffer, at: number, s: string, n: number): number {
  b.writeUInt16BE(n, at);
  if (n > 0) b.write(s, at + 2, n, 'utf8');
  return at + 2 + n;
}

/** u8 kind + u32 length + bytes at `at`; returns the offset after it. */
function writeBlob(b: Buffer, at: number, blob: Blob | null): number {
  b[at] = blob === null ? BLOB_NONE : blob.kind;
  const n = blob === null ? 0 : blob.bytes.length;
  b.writeUInt32BE(n, at + 1);
  if (blob !== null) blob.bytes.copy(b, at + 5);
  return at + 5 + n;
}

/**
 * Decodes a T value; Corrupt (naming the task) when it is not a v1 task record.
 * The blobs are views of `v`, not copies: `v` must be the caller's own bytes
 * (get() and scan() hand out copies).
 */
export function decodeTask(v: Uint8Array, queue: string): TaskRecord {
  const b = bufferView(v.buffer, v.byteOffset, v.byteLength);
  const bad = (why: string): NorthstarError => new NorthstarError('Corrupt', `queue ${queue}: task record ${b.length >= 24 ? readU64(b, 16) : '?'}: ${why}`);
  if (b.length < TASK_FIXED_BYTES + 6 + 15) throw bad(`${b.length} bytes is too short`);
  if (b[0] !== TASK_RECORD_VERSION) throw bad(`version ${b[0]} (this build reads ${TASK_RECORD_VERSION})`);
  if (b[1]! > TaskState.cancelled) throw bad(`state ${b[1]}`);
  let at = TASK_FIXED_BYTES;
  const str = (): string => {
    if (at + 2 > b.length) throw bad('truncated');
    const n = b.readUInt16BE(at);
    if (at + 2 + n > b.length) throw bad('truncated');
    const s = b.toString('utf8', at + 2, at + 2 + n);
    at += 2 + n;
    return s;
  };
  const blob = (): Blob | null => {
    if (at + 5 > b.length) throw bad('truncated');
    const kind = b[at]!;
    const n = b.readUInt32BE(at + 1);
    if (kind > BLOB_BYTES || (kind === BLOB_NONE && n !== 0) || at + 5 + n > b.length) throw bad('bad blob');
    const bytes = bufferView(b.buffer, b.byteOffset + at + 5, n);
    at += 5 + n;
    return kind === BLOB_NONE ? null : { kind: kind as Blob['kind'], bytes };
  };
  const t: TaskRecord = {
    id: readU64(b, 16),
    state: b[1]!,
    priority: b.readInt32BE(4),
    attempt: b.readUInt32BE(8),
    maxAttempts: b.readUInt32BE(12),
    createdAt: readU64(b, 24),
    readyAt: readU64(b, 32),
    leaseUntil: readU64(b, 40),
    token: readU64(b, 48),
    updatedAt: readU64(b, 56),
    finishedAt: readU64(b, 64),
    type: str(),
    worker: str(),
    key: str(),
    payload: blob(),
    result: blob(),
    error: blob(),
  };
  if (at !== b.length) throw bad(`${b.length - at} bytes past the end`);
  return t;
}
