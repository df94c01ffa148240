// The cartridge file (spec/cartridge_v1.md §2–§3): encodeCartridge lays out
// the header, the group table, the entry table, the names and the checksum;
// Cartridge.decode runs every check of §3 before it hands out anything, so a
// damaged file is refused, never half-read. A decoded Cartridge answers from
// the bytes it was given (a file read whole, or a mapping) without copying
// the entries.

import { NorthstarError } from '../errors.js';
import { readU16, readU32, readU64, writeU16, writeU32, writeU64 } from '../format/bytes.js';
import { kernels } from '../native/kernels.js';
import { compareReadyEntries, type ReadyEntry } from '../queue/ready.js';

export const CARTRIDGE_MAGIC = 0x5443534e; // "NSCT" read as a little-endian u32
export const CARTRIDGE_VERSION = 1;
export const CARTRIDGE_TYPE_PENDING_TASKS_BY_TYPE = 1;
/** The task_queue_v0 key layout the entries come from. */
export const QUEUE_LAYOUT_VERSION = 0;
export const CARTRIDGE_HEADER_SIZE = 128;
export const CARTRIDGE_GROUP_SIZE = 32;
export const CARTRIDGE_ENTRY_SIZE = 24;
export const CARTRIDGE_TRAILER_SIZE = 8;

// Header field offsets (§2).
export const H_MAGIC = 0;
export const H_VERSION = 4;
export const H_TYPE = 6;
export const H_DB_ID = 8;
export const H_TXN_ID = 16;
export const H_LOG_END = 24;
export const H_QUEUE_LAYOUT = 32;
export const H_GROUP_COUNT = 36;
export const H_ENTRY_COUNT = 40;
export const H_GROUPS_OFFSET = 48;
export const H_ENTRIES_OFFSET = 56;
export const H_NAMES_OFFSET = 64;
export const H_FILE_LENGTH = 72;
export const H_HEADER_END = 120;

/** One ready task: its place in claim order within its (queue, type) group (the queue's ReadyEntry). */
export type CartridgeEntry = ReadyEntry;

/** One (queue, type) group and its entries in claim order (never empty). */
export interface CartridgeGroup {
  queue: Buffer;
  type: Buffer;
  entries: CartridgeEntry[];
}

/** What a cartridge says, besides its groups. */
export interface CartridgeHeader {
  version: number;
  type: number;
  dbId: number;
  txnId: number;
  logEnd: number;
  queueLayout: number;
  groupCount: number;
  entryCount: number;
  fileLength: number;
}

/** The whole content of a cartridge: `groups` sorted by (queue, type), each group's entries in claim order. */
export interface CartridgeContent {
  dbId: number;
  txnId: number;
  logEnd: number;
  groups: CartridgeGroup[];
}

const align8 = (n: number): number => (n + 7) & ~7;

/**
 * The lookup key of group (queue, type): names hold no zero byte (task_queue_v0
 * §2), so the zero between them is unambiguous.
 */
export function groupKey(queue: string, type: string): string {
  return `${queue}\0${type}`;
}

/** Byte order of (rank, readyAt, id): the order of the ready keys within a group. */
export const compareEntries = compareReadyEntries;

/** The file of `c` (§2). Its groups must be sorted and distinct, each non-empty and in claim order: a builder's bug throws here. */
export function encodeCartridge(c: CartridgeContent): Uint8Array {
  const steps = encodeSteps(c);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
  }
}

/** Entries handled, and bytes checksummed (× CARTRIDGE_ENTRY_SIZE), between two yields of encodeSteps. */
export const ENCODE_SLICE_ENTRIES = 100_000;

/**
 * encodeCartridge as steps: yields after each ENCODE_SLICE_ENTRIES entries
 * checked or laid out and each slice of the checksum, so that a caller on
 * the event loop (a background rebuild) can let other work run between them.
 */
export function* encodeSteps(c: CartridgeContent): Generator<void, Uint8Array, void> {
  let budget = ENCODE_SLICE_ENTRIES;
  // Names: each distinct queue name and type once, in first-use order.
  const nameAt = new Map<string, number>();
  const names: Buffer[] = [];
  let namesLength = 0;
  const place = (b: Buffer): number => {
    const k = b.toString('latin1');
    let at = nameAt.get(k);
    if (at === undefined) {
      at = namesLength;
      nameAt.set(k, at);
      names.push(b);
      namesLength += b.length;
    }
    return at;
  };
  let entryCount = 0;
  for (let g = 0; g < c.groups.length; g++) {
    const group = c.groups[g]!;
    if (group.entries.length === 0) throw new Error('encodeCartridge: an empty group');
    if (g > 0) {
      const prev = c.groups[g - 1]!;
      const order = Buffer.compare(prev.queue, group.queue) || Buffer.compare(prev.type, group.type);
      if (order >= 0) throw new Error('encodeCartridge: groups are not sorted and distinct');
    }
    for (let i = 1; i < group.entries.length; i++) {
      if (compareEntries(group.entries[i - 1]!, group.entries[i]!) >= 0) throw new Error('encodeCartridge: entries are not in claim order');
      if (--budget === 0) {
        budget = ENCODE_SLICE_ENTRIES;
        yield;
      }
    }
    entryCount += group.entries.length;
  }
  const groupNames = c.groups.map((g) => [place(g.queue), place(g.type)] as const);
  const groupsOffset = CARTRIDGE_HEADER_SIZE;
  const entriesOffset = groupsOffset + c.groups.length * CARTRIDGE_GROUP_SIZE;
  const namesOffset = entriesOffset + entryCount * CARTRIDGE_ENTRY_SIZE;
  const fileLength = align8(namesOffset + namesLength) + CARTRIDGE_TRAILER_SIZE;

  const out = new Uint8Array(fileLength);
  writeU32(out, H_MAGIC, CARTRIDGE_MAGIC);
  writeU16(out, H_VERSION, CARTRIDGE_VERSION);
  writeU16(out, H_TYPE, CARTRIDGE_TYPE_PENDING_TASKS_BY_TYPE);
  writeU64(out, H_DB_ID, c.dbId);
  writeU64(out, H_TXN_ID, c.txnId);
  writeU64(out, H_LOG_END, c.logEnd);
  writeU32(out, H_QUEUE_LAYOUT, QUEUE_LAYOUT_VERSION);
  writeU32(out, H_GROUP_COUNT, c.groups.length);
  writeU64(out, H_ENTRY_COUNT, entryCount);
  writeU64(out, H_GROUPS_OFFSET, groupsOffset);
  writeU64(out, H_ENTRIES_OFFSET, entriesOffset);
  writeU64(out, H_NAMES_OFFSET, namesOffset);
  writeU64(out, H_FILE_LENGTH, fileLength);
  writeU64(out, H_HEADER_END, CARTRIDGE_HEADER_SIZE);

  let first = 0;
  let e = entriesOffset;
  const words = LITTLE_ENDIAN ? new Uint32Array(out.buffer, out.byteOffset, out.byteLength >>> 2) : null;
  for (let g = 0; g < c.groups.length; g++) {
    const group = c.groups[g]!;
    const at = groupsOffset + g * CARTRIDGE_GROUP_SIZE;
    writeU32(out, at, groupNames[g]![0]);
    writeU16(out, at + 4, group.queue.length);
    writeU16(out, at + 6, group.type.length);
    writeU32(out, at + 8, groupNames[g]![1]);
    writeU64(out, at + 16, first);
    writeU64(out, at + 24, group.entries.length);
    for (const entry of group.entries) {
      if (words !== null) {
        // As little-endian u32 words (the layout decode checks them in): rank, 0, readyAt lo/hi, id lo/hi.
        const w = e >>> 2;
        words[w] = entry.rank;
        words[w + 2] = entry.readyAt % TWO_32;
        words[w + 3] = entry.readyAt / TWO_32;
        words[w + 4] = entry.id % TWO_32;
        words[w + 5] = entry.id / TWO_32;
      } else {
        writeU32(out, e, entry.rank);
        writeU64(out, e + 8, entry.readyAt);
        writeU64(out, e + 16, entry.id);
      }
      e += CARTRIDGE_ENTRY_SIZE;
      if (--budget === 0) {
        budget = ENCODE_SLICE_ENTRIES;
        yield;
      }
    }
    first += group.entries.length;
  }
  let n = namesOffset;
  for (const b of names) {
    out.set(b, n);
    n += b.length;
  }
  let crc = 0;
  const slice = ENCODE_SLICE_ENTRIES * CARTRIDGE_ENTRY_SIZE;
  for (let at = 0; at < fileLength - 4; at += slice) {
    crc = kernels.crc32c(out.subarray(at, Math.min(at + slice, fileLength - 4)), crc);
    if (at + slice < fileLength - 4) yield;
  }
  writeU32(out, fileLength - 4, crc);
  return out;
}

const TWO_32 = 2 ** 32;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function corrupt(check: number, what: string): NorthstarError {
  return new NorthstarError('Corrupt', `cartridge check ${check} failed: ${what}`);
}

/**
 * A checked cartridge (§3): its header, and its groups read from the bytes it
 * was decoded from. Lookups never copy the entry table.
 */
export class Cartridge {
  private readonly index = new Map<string, number>();

  private constructor(
    readonly bytes: Uint8Array,
    readonly header: CartridgeHeader,
    private readonly groupsOffset: number,
    private readonly entriesOffset: number,
    private readonly namesOffset: number,
  ) {
    for (let g = 0; g < header.groupCount; g++) this.index.set(groupKey(this.queueOf(g).toString('utf8'), this.typeOf(g).toString('utf8')), g);
  }

  /** Runs every check of spec §3 on `bytes`; Corrupt or UnsupportedFormat names the first that fails. */
  static decode(bytes: Uint8Array): Cartridge {
    const len = bytes.byteLength;
    if (len < CARTRIDGE_HEADER_SIZE + CARTRIDGE_TRAILER_SIZE) throw corrupt(1, `${len} bytes, shorter than a header and a trailer`);
    const fileLength = readU64(bytes, H_FILE_LENGTH);
    if (fileLength !== len) throw corrupt(1, `the header says ${fileLength} bytes, the file has ${len}`);
    const crc = kernels.crc32c(bytes.subarray(0, len - 4));
    if (readU32(bytes, len - 4) !== crc || readU32(bytes, len - 8) !== 0) throw corrupt(2, 'checksum mismatch');
    const magic = readU32(bytes, H_MAGIC);
    const version = readU16(bytes, H_VERSION);
    const type = readU16(bytes, H_TYPE);
    const queueLayout = readU32(bytes, H_QUEUE_LAYOUT);
    if (magic !== CARTRIDGE_MAGIC) throw new NorthstarError('UnsupportedFormat', `cartridge check 3 failed: magic 0x${magic.toString(16)} is not a cartridge's`);
    if (version !== CARTRIDGE_VERSION) throw new NorthstarError('UnsupportedFormat', `cartridge check 3 failed: format version ${version}, this code reads ${CARTRIDGE_VERSION}`);
    if (type !== CARTRIDGE_TYPE_PENDING_TASKS_BY_TYPE) throw new NorthstarError('UnsupportedFormat', `cartridge check 3 failed: cartridge type ${type} is unknown`);
    if (queueLayout !== QUEUE_LAYOUT_VERSION) throw new NorthstarError('UnsupportedFormat', `cartridge check 3 failed: queue layout ${queueLayout}, this code reads ${QUEUE_LAYOUT_VERSION}`);
    const groupCount = readU32(bytes, H_GROUP_COUNT);
    const entryCount = readU64(bytes, H_ENTRY_COUNT);
    const groupsOffset = readU64(bytes, H_GROUPS_OFFSET);
    const entriesOffset = readU64(bytes, H_ENTRIES_OFFSET);
    const namesOffset = readU64(bytes, H_NAMES_OFFSET);
    const namesEnd = len - CARTRIDGE_TRAILER_SIZE;
    for (let at = 80; at < H_HEADER_END; at++) if (bytes[at] !== 0) throw corrupt(4, 'reserved header bytes are not zero');
    if (readU64(bytes, H_HEADER_END) !== CARTRIDGE_HEADER_SIZE || groupsOffset !== CARTRIDGE_HEADER_SIZE) throw corrupt(4, 'the group table does not follow the header');
    if (entriesOffset !== groupsOffset + groupCount * CARTRIDGE_GROUP_SIZE) throw corrupt(4, 'the entry table does not follow the group table');
    if (namesOffset !== entriesOffset + entryCount * CARTRIDGE_ENTRY_SIZE || namesOffset > namesEnd) throw corrupt(4, 'the names do not follow the entry table inside the file');
    const header: CartridgeHeader = { version, type, dbId: readU64(bytes, H_DB_ID), txnId: readU64(bytes, H_TXN_ID), logEnd: readU64(bytes, H_LOG_END), queueLayout, groupCount, entryCount, fileLength };
    // Check 5, and the name ranges of check 4. The entry order is the kernel
    // cartridgeDisorder, once per group: the hot loop of a load (1M entries:
    // 0.7-0.8 ms native, 2-3 ms in its TypeScript twin).
    let expectFirst = 0;
    let prevQueue: Buffer | null = null;
    let prevType: Buffer | null = null;
    for (let g = 0; g < groupCount; g++) {
      const at = groupsOffset + g * CARTRIDGE_GROUP_SIZE;
      const qAt = readU32(bytes, at);
      const qLen = readU16(bytes, at + 4);
      const tLen = readU16(bytes, at + 6);
      const tAt = readU32(bytes, at + 8);
      if (readU32(bytes, at + 12) !== 0) throw corrupt(4, `group ${g}: reserved bytes are not zero`);
      if (qLen === 0 || tLen === 0 || namesOffset + qAt + qLen > namesEnd || namesOffset + tAt + tLen > namesEnd) throw corrupt(4, `group ${g}: a name lies outside the names`);
      const queue = Buffer.from(bytes.buffer, bytes.byteOffset + namesOffset + qAt, qLen);
      const typ = Buffer.from(bytes.buffer, bytes.byteOffset + namesOffset + tAt, tLen);
      if (prevQueue !== null && (Buffer.compare(prevQueue, queue) || Buffer.compare(prevType!, typ)) >= 0) throw corrupt(5, `group ${g} is not after group ${g - 1}`);
      prevQueue = queue;
      prevType = typ;
      const first = readU64(bytes, at + 16);
      const count = readU64(bytes, at + 24);
      if (first !== expectFirst || count === 0 || count > entryCount - first) throw corrupt(5, `group ${g}: entries ${first}+${count} do not continue at ${expectFirst} inside the ${entryCount} entries`);
      const bad = kernels.cartridgeDisorder(bytes, entriesOffset + first * CARTRIDGE_ENTRY_SIZE, count);
      if (bad > 0) throw corrupt(5, `group ${g}: entry ${first + bad} is not after entry ${first + bad - 1}`);
      if (bad < 0) throw corrupt(4, `entry ${first - bad - 1}: reserved bytes are not zero`);
      expectFirst = first + count;
    }
    if (expectFirst !== entryCount) throw corrupt(5, `the groups hold ${expectFirst} entries, the header says ${entryCount}`);
    return new Cartridge(bytes, header, groupsOffset, entriesOffset, namesOffset);
  }

  /** Every (queue, type) group with its entry count, in the file's order. */
  groups(): { queue: string; type: string; count: number }[] {
    const out: { queue: string; type: string; count: number }[] = [];
    for (let g = 0; g < this.header.groupCount; g++) out.push({ queue: this.queueOf(g).toString('utf8'), type: this.typeOf(g).toString('utf8'), count: this.countOf(g) });
    return out;
  }

  /** How many tasks of `type` are ready in queue `queue` (0 when none). */
  count(queue: string, type: string): number {
    const g = this.index.get(groupKey(queue, type));
    return g === undefined ? 0 : this.countOf(g);
  }

  /** Up to `limit` ready tasks of `type` in queue `queue`, in claim order. */
  entries(queue: string, type: string, limit = Infinity): CartridgeEntry[] {
    const g = this.index.get(groupKey(queue, type));
    if (g === undefined) return [];
    return this.entriesOf(g, limit);
  }

  /** Every group with all its entries: what encodeCartridge took (a test and a verify compare them). */
  content(): CartridgeContent {
    const groups: CartridgeGroup[] = [];
    for (let g = 0; g < this.header.groupCount; g++) groups.push({ queue: Buffer.from(this.queueOf(g)), type: Buffer.from(this.typeOf(g)), entries: this.entriesOf(g, Infinity) });
    return { dbId: this.header.dbId, txnId: this.header.txnId, logEnd: this.header.logEnd, groups };
  }

  /** The index of group (queue, type), or undefined when the cartridge has none. */
  groupIndex(queue: string, type: string): number | undefined {
    return this.index.get(groupKey(queue, type));
  }

  /** Entry `i` of group `g` (0 ≤ i < its count). */
  entryAt(g: number, i: number): CartridgeEntry {
    const first = readU64(this.bytes, this.groupsOffset + g * CARTRIDGE_GROUP_SIZE + 16);
    const e = this.entriesOffset + (first + i) * CARTRIDGE_ENTRY_SIZE;
    return { rank: readU32(this.bytes, e), readyAt: readU64(this.bytes, e + 8), id: readU64(this.bytes, e + 16) };
  }

  /** The queue name and type of group `g`, as bytes (views of the file). */
  groupNames(g: number): [Buffer, Buffer] {
    return [this.queueOf(g), this.typeOf(g)];
  }

  private entriesOf(g: number, limit: number): CartridgeEntry[] {
    const at = this.groupsOffset + g * CARTRIDGE_GROUP_SIZE;
    const first = readU64(this.bytes, at + 16);
    const n = Math.min(readU64(this.bytes, at + 24), limit);
    const out: CartridgeEntry[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const e = this.entriesOffset + (first + i) * CARTRIDGE_ENTRY_SIZE;
      out[i] = { rank: readU32(this.bytes, e), readyAt: readU64(this.bytes, e + 8), id: readU64(this.bytes, e + 16) };
    }
    return out;
  }

  /** The number of entries of group `g`. */
  countOf(g: number): number {
    return readU64(this.bytes, this.groupsOffset + g * CARTRIDGE_GROUP_SIZE + 24);
  }

  private queueOf(g: number): Buffer {
    const at = this.groupsOffset + g * CARTRIDGE_GROUP_SIZE;
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.namesOffset + readU32(this.bytes, at), readU16(this.bytes, at + 4));
  }

  private typeOf(g: number): Buffer {
    const at = this.groupsOffset + g * CARTRIDGE_GROUP_SIZE;
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.namesOffset + readU32(this.bytes, at + 8), readU16(this.bytes, at + 6));
  }
}
