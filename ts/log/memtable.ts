// The in-memory key/value state replay builds (ts/log/replay.ts). Values are
// not copied: each entry points into a chunk of the log read by replay, kept
// alive for that. The index is an open-addressing hash table in typed arrays,
// so a million entries cost a few typed arrays instead of a million objects
// (measured: 1M single-put records, a Map of copies took ~6 s, this ~1 s).

import { compareBytes } from '../format/bytes.js';

const EMPTY = 0;
const MIN_CAPACITY = 1024;

/** FNV-1a over bytes [start, start + length) of buf. */
function hashBytes(buf: Uint8Array, start: number, length: number): number {
  let h = 0x811c9dc5;
  for (let i = start, end = start + length; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h >>> 0;
}

export class MemTable {
  /** Chunks of log bytes that entries point into. */
  private readonly chunks: Uint8Array[] = [];
  private chunkOf: Uint32Array<ArrayBuffer> = new Uint32Array(MIN_CAPACITY);
  private keyAt: Uint32Array<ArrayBuffer> = new Uint32Array(MIN_CAPACITY);
  private keyLen = new Uint16Array(MIN_CAPACITY);
  private valueLen: Uint32Array<ArrayBuffer> = new Uint32Array(MIN_CAPACITY);
  /** Key hash per entry: compared before the bytes, and reused by rehash. */
  private hashOf: Uint32Array<ArrayBuffer> = new Uint32Array(MIN_CAPACITY);
  /** 1 while the entry holds a value; deleted entries stay as tombstones for their key. */
  private live = new Uint8Array(MIN_CAPACITY);
  /** Per-entry state-hash lanes (ts/log/replay.ts), kept so an overwrite or delete can subtract them. */
  lo: Uint32Array<ArrayBuffer> = new Uint32Array(MIN_CAPACITY);
  hi: Uint32Array<ArrayBuffer> = new Uint32Array(MIN_CAPACITY);
  private count = 0;
  private liveCount = 0;
  /** Slot → entry index + 1 (0 = empty). */
  private slots = new Int32Array(MIN_CAPACITY * 2);

  /** Live keys. */
  get size(): number {
    return this.liveCount;
  }

  /** Registers a chunk of bytes entries may point into; returns its id. */
  addChunk(chunk: Uint8Array): number {
    this.chunks.push(chunk);
    return this.chunks.length - 1;
  }

  /**
   * Finds the entry for the key at chunk[keyStart, keyStart + keyLength), or
   * creates it (not live). Returns the entry index.
   */
  entry(chunkId: number, keyStart: number, keyLength: number): number {
    const chunk = this.chunks[chunkId]!;
    const mask = this.slots.length - 1;
    const hash = hashBytes(chunk, keyStart, keyLength);
    let s = hash & mask;
    for (;;) {
      const e = this.slots[s]!;
      if (e === EMPTY) break;
      const i = e - 1;
      if (this.hashOf[i] === hash && this.keyLen[i] === keyLength && this.sameKey(i, chunk, keyStart, keyLength)) return i;
      s = (s + 1) & mask;
    }
    if (this.count + 1 > this.chunkOf.length) this.grow();
    const i = this.count++;
    this.chunkOf[i] = chunkId;
    this.keyAt[i] = keyStart;
    this.keyLen[i] = keyLength;
    this.hashOf[i] = hash;
    this.valueLen[i] = 0;
    this.live[i] = 0;
    if (this.count * 2 > this.slots.length) this.rehash();
    else this.slots[s] = i + 1;
    return i;
  }

  /** Points entry i at a new value: key ‖ value at chunk[keyStart, …) (the key is the same bytes). */
  set(i: number, chunkId: number, keyStart: number, valueLength: number): void {
    if (this.live[i] === 0) this.liveCount++;
    this.chunkOf[i] = chunkId;
    this.keyAt[i] = keyStart;
    this.valueLen[i] = valueLength;
    this.live[i] = 1;
  }

  delete(i: number): void {
    if (this.live[i] === 1) this.liveCount--;
    this.live[i] = 0;
  }

  isLive(i: number): boolean {
    return this.live[i] === 1;
  }

  /** The value of a key (bytes, or a string as UTF-8): a copy, or undefined. */
  get(key: Uint8Array | string): Buffer | undefined {
    const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
    const mask = this.slots.length - 1;
    let s = hashBytes(k, 0, k.length) & mask;
    for (;;) {
      const e = this.slots[s]!;
      if (e === EMPTY) return undefined;
      const i = e - 1;
      if (this.keyLen[i] === k.length && compareBytes(this.chunks[this.chunkOf[i]!]!, this.keyAt[i]!, k.length, k) === 0) {
        return this.live[i] === 1 ? this.value(i) : undefined;
      }
      s = (s + 1) & mask;
    }
  }

  /** Live entries as [key, value] copies, in order of first insertion. */
  *entries(): IterableIterator<[Buffer, Buffer]> {
    for (let i = 0; i < this.count; i++) if (this.live[i] === 1) yield [this.key(i), this.value(i)];
  }

  [Symbol.iterator](): IterableIterator<[Buffer, Buffer]> {
    return this.entries();
  }

  key(i: number): Buffer {
    const c = this.chunks[this.chunkOf[i]!]!;
    return Buffer.from(c.subarray(this.keyAt[i]!, this.keyAt[i]! + this.keyLen[i]!));
  }

  value(i: number): Buffer {
    const c = this.chunks[this.chunkOf[i]!]!;
    const start = this.keyAt[i]! + this.keyLen[i]!;
    return Buffer.from(c.subarray(start, start + this.valueLen[i]!));
  }

  private sameKey(i: number, chunk: Uint8Array, start: number, length: number): boolean {
    const c = this.chunks[this.chunkOf[i]!]!;
    const a = this.keyAt[i]!;
    for (let j = 0; j < length; j++) if (c[a + j] !== chunk[start + j]) return false;
    return true;
  }

  private grow(): void {
    const n = this.chunkOf.length * 2;
    const g32 = (a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> => {
      const b = new Uint32Array(n);
      b.set(a);
      return b;
    };
    this.chunkOf = g32(this.chunkOf);
    this.keyAt = g32(this.keyAt);
    this.valueLen = g32(this.valueLen);
    this.hashOf = g32(this.hashOf);
    const kl = new Uint16Array(n);
    kl.set(this.keyLen);
    this.keyLen = kl;
    const lv = new Uint8Array(n);
    lv.set(this.live);
    this.live = lv;
    this.lo = g32(this.lo);
    this.hi = g32(this.hi);
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let i = 0; i < this.count; i++) {
      let s = this.hashOf[i]! & mask;
      while (slots[s] !== EMPTY) s = (s + 1) & mask;
      slots[s] = i + 1;
    }
    this.slots = slots;
  }
}
