// The key layout of a task queue (spec/task_queue_v0.md §2). Every key of
// queue NAME starts with QUEUE_KEY_PREFIX, NAME's UTF-8 bytes and a zero byte,
// then one tag byte naming the table:
//
//   T id                              the task record (task.ts)
//   R type 00 rank readyAt id         ready index: pending tasks that may run now
//   D readyAt id                      delayed index: pending tasks that may run later
//   A readyAt id                      age index: ready tasks by the time they became ready
//   L leaseUntil id                   lease index: claimed tasks by lease expiry
//   F finishedAt id                   finished index: done, dead and cancelled tasks
//   K key                             idempotency key of a live task -> id (8 bytes)
//   S state type                      tasks in that state with that type -> count (8 bytes)
//   C name                            counter -> value (8 bytes): seq, token, claims, completions
//
// Numbers are unsigned big-endian (8 bytes for ids and times in ms, 4 for the
// rank), so byte order is numeric order. rank = 2^31 - 1 - priority: higher
// priority sorts first.

import { NorthstarError } from '../errors.js';

/** The bytes every queue key starts with: no user key that does not start with them is ever touched. */
export const QUEUE_KEY_PREFIX = Buffer.from([0x00, 0x6e, 0x73, 0x71, 0x00]); // "\0nsq\0"

export const TAG_TASK = 0x54; // T
export const TAG_READY = 0x52; // R
export const TAG_DELAYED = 0x44; // D
export const TAG_AGE = 0x41; // A
export const TAG_LEASE = 0x4c; // L
export const TAG_FINISHED = 0x46; // F
export const TAG_IDEMPOTENCY = 0x4b; // K
export const TAG_COUNT = 0x53; // S
export const TAG_COUNTER = 0x43; // C

export const MAX_QUEUE_NAME_BYTES = 64;
export const MAX_TYPE_BYTES = 128;
export const MAX_IDEMPOTENCY_KEY_BYTES = 256;
export const MIN_PRIORITY = -(2 ** 31);
export const MAX_PRIORITY = 2 ** 31 - 1;

const TWO_32 = 2 ** 32;

export function writeU64(buf: Uint8Array, at: number, n: number): void {
  const hi = Math.floor(n / TWO_32);
  const lo = n - hi * TWO_32;
  buf[at] = hi >>> 24;
  buf[at + 1] = (hi >>> 16) & 0xff;
  buf[at + 2] = (hi >>> 8) & 0xff;
  buf[at + 3] = hi & 0xff;
  buf[at + 4] = lo >>> 24;
  buf[at + 5] = (lo >>> 16) & 0xff;
  buf[at + 6] = (lo >>> 8) & 0xff;
  buf[at + 7] = lo & 0xff;
}

export function readU64(buf: Uint8Array, at: number): number {
  const hi = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
  const lo = ((buf[at + 4]! << 24) | (buf[at + 5]! << 16) | (buf[at + 6]! << 8) | buf[at + 7]!) >>> 0;
  return hi * TWO_32 + lo;
}

/** 8-byte value of a counter or count. */
export function u64Value(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, 0, n);
  return b;
}

function utf8(s: string, what: string, max: number): Buffer {
  if (typeof s !== 'string' || s.length === 0) throw new NorthstarError('InvalidArgument', `${what} must be a non-empty string`);
  const b = Buffer.from(s, 'utf8');
  if (b.length > max) throw new NorthstarError('InvalidArgument', `${what} is ${b.length} bytes; the limit is ${max}`);
  if (b.includes(0)) throw new NorthstarError('InvalidArgument', `${what} must not contain a zero byte`);
  return b;
}

/** Checks a task type and returns its bytes. */
export function typeBytes(type: unknown): Buffer {
  return utf8(type as string, 'type', MAX_TYPE_BYTES);
}

/** The keys of one queue. Builders return fresh buffers the caller may keep. */
export class QueueKeys {
  /** QUEUE_KEY_PREFIX, the name, 0. */
  readonly base: Buffer;

  constructor(readonly name: string) {
    this.base = Buffer.concat([QUEUE_KEY_PREFIX, utf8(name, 'queue name', MAX_QUEUE_NAME_BYTES), Buffer.from([0])]);
  }

  /** The first key of table `tag`, and the first key past it (scan bounds). */
  table(tag: number): { gte: Buffer; lt: Buffer } {
    return { gte: this.withTag(tag, 0), lt: this.withTag(tag + 1, 0) };
  }

  private withTag(tag: number, extra: number): Buffer {
    const b = Buffer.allocUnsafe(this.base.length + 1 + extra);
    this.base.copy(b, 0);
    b[this.base.length] = tag;
    return b;
  }

  /** Key of table `tag` ending in two u64s (D, A, L, F). */
  private timeId(tag: number, time: number, id: number): Buffer {
    const b = this.withTag(tag, 16);
    const at = this.base.length + 1;
    writeU64(b, at, time);
    writeU64(b, at + 8, id);
    return b;
  }

  task(id: number): Buffer {
    const b = this.withTag(TAG_TASK, 8);
    writeU64(b, this.base.length + 1, id);
    return b;
  }

  delayed(readyAt: number, id: number): Buffer {
    return this.timeId(TAG_DELAYED, readyAt, id);
  }

  age(readyAt: number, id: number): Buffer {
    return this.timeId(TAG_AGE, readyAt, id);
  }

  lease(leaseUntil: number, id: number): Buffer {
    return this.timeId(TAG_LEASE, leaseUntil, id);
  }

  finished(finishedAt: number, id: number): Buffer {
    return this.timeId(TAG_FINISHED, finishedAt, id);
  }

  /** The ready index's range for one type. */
  readyOfType(type: Buffer): { gte: Buffer; lt: Buffer } {
    const gte = this.withTag(TAG_READY, type.length + 1);
    type.copy(gte, this.base.length + 1);
    gte[gte.length - 1] = 0;
    const lt = Buffer.from(gte);
    lt[lt.length - 1] = 1;
    return { gte, lt };
  }

  ready(type: Buffer, priority: number, readyAt: number, id: number): Buffer {
    const b = this.withTag(TAG_READY, type.length + 1 + 4 + 16);
    let at = this.base.length + 1;
    type.copy(b, at);
    at += type.length;
    b[at++] = 0;
    b.writeUInt32BE(MAX_PRIORITY - priority, at);
    writeU64(b, at + 4, readyAt);
    writeU64(b, at + 12, id);
    return b;
  }

  idempotency(key: Buffer): Buffer {
    const b = this.withTag(TAG_IDEMPOTENCY, key.length);
    key.copy(b, this.base.length + 1);
    return b;
  }

  count(state: number, type: Buffer): Buffer {
    const b = this.withTag(TAG_COUNT, 1 + type.length);
    b[this.base.length + 1] = state;
    type.copy(b, this.base.length + 2);
    return b;
  }

  counter(name: string): Buffer {
    const n = Buffer.from(name, 'latin1');
    const b = this.withTag(TAG_COUNTER, n.length);
    n.copy(b, this.base.length + 1);
    return b;
  }

  // ---- reading keys back ----

  /** The two u64s ending a D, A, L or F key: [time, id]. */
  timeIdOf(key: Uint8Array): [number, number] {
    const at = key.length - 16;
    return [readU64(key, at), readU64(key, at + 8)];
  }

  /** The id ending a T or R key. */
  idOf(key: Uint8Array): number {
    return readU64(key, key.length - 8);
  }

  /** An R key's fields: [priority, readyAt, id] (its type is the range it came from). */
  readyFieldsOf(key: Uint8Array): [number, number, number] {
    const at = key.length - 20;
    const rank = ((key[at]! << 24) | (key[at + 1]! << 16) | (key[at + 2]! << 8) | key[at + 3]!) >>> 0;
    return [MAX_PRIORITY - rank, readU64(key, at + 4), readU64(key, at + 12)];
  }

  /** An R key's type bytes. */
  readyTypeOf(key: Uint8Array): Buffer {
    return Buffer.from(key.subarray(this.base.length + 1, key.length - 21));
  }

  /** An S key's [state, type]. */
  countFieldsOf(key: Uint8Array): [number, string] {
    return [key[this.base.length + 1]!, Buffer.from(key.subarray(this.base.length + 2)).toString('utf8')];
  }

  /** A K key's idempotency key. */
  idempotencyKeyOf(key: Uint8Array): string {
    return Buffer.from(key.subarray(this.base.length + 1)).toString('utf8');
  }
}

/** Checks an idempotency key and returns its bytes. */
export function idempotencyKeyBytes(key: unknown): Buffer {
  if (typeof key !== 'string' || key.length === 0) throw new NorthstarError('InvalidArgument', 'key must be a non-empty string');
  const b = Buffer.from(key, 'utf8');
  if (b.length > MAX_IDEMPOTENCY_KEY_BYTES) throw new NorthstarError('InvalidArgument', `key is ${b.length} bytes; the limit is ${MAX_IDEMPOTENCY_KEY_BYTES}`);
  return b;
}
