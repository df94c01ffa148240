// Known-answer tests of the pure-TypeScript kernels (ts/native/fallback.ts)
// against spec/file_format_v1.md §2 and §4. The Rust twin has the same
// vectors in crates/northstar-native/src/kernels/{page,node}.rs; parity.test.ts
// checks the two against each other on random inputs.

import { describe, expect, it } from 'vitest';

import { readU16, readU32, readU64, writeU16, writeU32, writeU64 } from '../format/bytes.js';
import {
  BRANCH_CELL_CHILD_TXN,
  FORMAT_VERSION,
  HEADER_CRC_OFFSET,
  HEADER_SIZE,
  NODE_CELL_START_OFFSET,
  NODE_COUNT_OFFSET,
  NODE_DEAD_OFFSET,
  NODE_LINK_OFFSET,
  NODE_SLOTS_OFFSET,
  OVERFLOW_REF_PAGE,
  OVERFLOW_REF_SIZE,
  OVERFLOW_REF_TXN,
  PAGE_CRC_OFFSET,
  PAGE_ID_OFFSET,
  PAGE_MAGIC,
  PAYLOAD_LENGTH_OFFSET,
  PageStatus,
  PageType,
  TYPE_OFFSET,
  VALUE_OVERFLOW_BIT,
  VERSION_OFFSET,
} from '../format/constants.js';
import { crc32c } from './crc32c.js';
import * as k from './fallback.js';

const te = new TextEncoder();
const b = (s: string): Uint8Array => te.encode(s);

function emptyNode(type: number, size = 4096): Uint8Array {
  const p = new Uint8Array(size);
  p[TYPE_OFFSET] = type;
  writeU32(p, NODE_CELL_START_OFFSET, size);
  return p;
}

const count = (p: Uint8Array): number => readU16(p, NODE_COUNT_OFFSET);
const cellStart = (p: Uint8Array): number => readU32(p, NODE_CELL_START_OFFSET);
const dead = (p: Uint8Array): number => readU16(p, NODE_DEAD_OFFSET);
const slot = (p: Uint8Array, i: number): number => readU16(p, NODE_SLOTS_OFFSET + 2 * i);

function keys(p: Uint8Array): string[] {
  const out = new Uint32Array(4 * count(p));
  const n = k.nodeDecode(p, out);
  const td = new TextDecoder();
  return Array.from({ length: n }, (_, i) => td.decode(p.subarray(out[4 * i]!, out[4 * i]! + out[4 * i + 1]!)));
}

/** Inserts in key order, as the engine does. */
function put(p: Uint8Array, key: string, value: string | Uint8Array): boolean {
  const r = k.leafSearch(p, b(key));
  expect(r & 1).toBe(0);
  const v = typeof value === 'string' ? b(value) : value;
  return k.leafInsert(p, r >>> 1, b(key), v, v.length);
}

function sealedLeaf(size: number, id: number): Uint8Array {
  const p = emptyNode(PageType.Leaf, size);
  writeU32(p, 0, PAGE_MAGIC);
  writeU16(p, VERSION_OFFSET, FORMAT_VERSION);
  writeU64(p, PAGE_ID_OFFSET, id);
  writeU32(p, PAYLOAD_LENGTH_OFFSET, size - HEADER_SIZE);
  p[100] = 0xab;
  k.pageSeal(p);
  return p;
}

describe('pageSeal / pageVerify (spec §2)', () => {
  it('writes the page CRC over the body, then the header CRC with its own field as zero', () => {
    const p = sealedLeaf(4096, 9);
    expect(readU32(p, PAGE_CRC_OFFSET)).toBe(crc32c(p.subarray(HEADER_SIZE)));
    const h = p.slice(0, HEADER_SIZE);
    h.fill(0, HEADER_CRC_OFFSET, HEADER_CRC_OFFSET + 4);
    expect(readU32(p, HEADER_CRC_OFFSET)).toBe(crc32c(h));
  });

  it('returns the statuses in the order of §2.3', () => {
    const p = sealedLeaf(8192, 9);
    expect(k.pageVerify(p, 9)).toBe(PageStatus.Ok);
    expect(k.pageVerify(p, 10)).toBe(PageStatus.WrongPageId);
    expect(k.pageVerify(new Uint8Array(8192), 0)).toBe(PageStatus.BadMagic);
    const flip = (o: number): Uint8Array => {
      const q = p.slice();
      q[o]! ^= 1;
      return q;
    };
    expect(k.pageVerify(flip(20), 9)).toBe(PageStatus.BadHeaderChecksum);
    expect(k.pageVerify(flip(PAGE_CRC_OFFSET), 9)).toBe(PageStatus.BadHeaderChecksum);
    expect(k.pageVerify(flip(8191), 9)).toBe(PageStatus.BadPageChecksum);
    const resealed = (edit: (q: Uint8Array) => void): Uint8Array => {
      const q = p.slice();
      edit(q);
      k.pageSeal(q);
      return q;
    };
    expect(k.pageVerify(resealed((q) => writeU16(q, VERSION_OFFSET, 0)), 9)).toBe(PageStatus.UnsupportedVersion);
    expect(k.pageVerify(resealed((q) => (q[TYPE_OFFSET] = 7)), 9)).toBe(PageStatus.BadPageType);
    expect(k.pageVerify(resealed((q) => (q[TYPE_OFFSET] = 0)), 9)).toBe(PageStatus.BadPageType);
    expect(k.pageVerify(resealed((q) => (q[TYPE_OFFSET] = 6)), 9)).toBe(PageStatus.Ok); // history (spec §6.2)
    expect(k.pageVerify(resealed((q) => writeU32(q, PAYLOAD_LENGTH_OFFSET, 8192 - 39)), 9)).toBe(
      PageStatus.BadPayloadLength,
    );
    const big = sealedLeaf(4096, 2 ** 53 - 1);
    expect(k.pageVerify(big, 2 ** 53 - 1)).toBe(PageStatus.Ok);
    expect(k.pageVerify(big, 2 ** 53 - 2)).toBe(PageStatus.WrongPageId);
  });

  it('rejects bad arguments by class', () => {
    expect(() => k.pageSeal(new Uint8Array(4000))).toThrow(RangeError);
    expect(() => k.pageSeal(new Uint8Array(65536))).toThrow(RangeError);
    expect(() => k.pageSeal([] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => k.pageVerify(new Uint8Array(4096), -1)).toThrow(RangeError);
    expect(() => k.pageVerify(new Uint8Array(4096), 2 ** 53)).toThrow(RangeError);
    expect(() => k.pageVerify(new Uint8Array(4096), 1.5)).toThrow(RangeError);
    expect(() => k.pageVerify(new Uint8Array(4096), '1' as unknown as number)).toThrow(TypeError);
    expect(() => k.pageVerify(new Uint8Array(4096), 1n as unknown as number)).toThrow(TypeError);
  });
});

describe('leaf kernels (spec §4)', () => {
  it('keeps slots in key order while cells grow down from the end', () => {
    const p = emptyNode(PageType.Leaf);
    expect(put(p, 'm', '1')).toBe(true);
    expect(put(p, 'c', '22')).toBe(true);
    expect(put(p, 'x', '')).toBe(true);
    expect(keys(p)).toEqual(['c', 'm', 'x']);
    expect([slot(p, 0), slot(p, 1), slot(p, 2)]).toEqual([4079, 4088, 4072]);
    expect(cellStart(p)).toBe(4072);
    expect([...p.subarray(4079, 4088)]).toEqual([1, 0, 2, 0, 0, 0, 0x63, 0x32, 0x32]);
  });

  it('searches as a lower bound: 2 × index + found', () => {
    const p = emptyNode(PageType.Leaf);
    for (const key of ['c', 'm', 'x']) put(p, key, 'v');
    const s = (key: string): number => k.leafSearch(p, b(key));
    expect([s('c'), s('m'), s('x')]).toEqual([1, 3, 5]);
    expect([s(''), s('d'), s('mm'), s('z')]).toEqual([0, 2, 4, 6]);
    expect(k.leafSearch(emptyNode(PageType.Leaf), b('a'))).toBe(0);
  });

  it('compares keys as unsigned bytes, then by length', () => {
    const p = emptyNode(PageType.Leaf);
    const raw = [[0xff], [0x00], [0x7f], [0x80], [0x00, 0x00], [0x61], [0x61, 0x62]];
    for (const key of raw) {
      const r = k.leafSearch(p, new Uint8Array(key));
      k.leafInsert(p, r >>> 1, new Uint8Array(key), b('v'), 1);
    }
    const out = new Uint32Array(4 * raw.length);
    k.nodeDecode(p, out);
    const got = raw.map((_, i) => [...p.subarray(out[4 * i]!, out[4 * i]! + out[4 * i + 1]!)]);
    expect(got).toEqual([[0x00], [0x00, 0x00], [0x61], [0x61, 0x62], [0x7f], [0x80], [0xff]]);
  });

  it('removing the lowest cell zeroes it and moves cellStart; others become dead', () => {
    const p = emptyNode(PageType.Leaf);
    put(p, 'a', '1');
    put(p, 'b', '2');
    put(p, 'c', '3');
    k.nodeRemove(p, 2);
    expect([count(p), cellStart(p), dead(p)]).toEqual([2, 4080, 0]);
    expect(p.subarray(4072, 4080).every((x) => x === 0)).toBe(true);
    expect(readU16(p, NODE_SLOTS_OFFSET + 4)).toBe(0);
    k.nodeRemove(p, 0);
    expect([count(p), cellStart(p), dead(p)]).toEqual([1, 4080, 8]);
    expect(keys(p)).toEqual(['b']);
    k.nodeRemove(p, 0);
    expect(p).toEqual(emptyNode(PageType.Leaf));
  });

  it('compacts in slot order, slot 0 highest, and zeroes the gap', () => {
    const p = emptyNode(PageType.Leaf);
    for (const key of ['c', 'a', 'b', 'd']) put(p, key, 'vv');
    k.nodeRemove(p, 1);
    k.nodeCompact(p);
    expect([count(p), cellStart(p), dead(p)]).toEqual([3, 4096 - 27, 0]);
    expect([slot(p, 0), slot(p, 1), slot(p, 2)]).toEqual([4087, 4078, 4069]);
    expect(keys(p)).toEqual(['a', 'c', 'd']);
    expect(p.subarray(NODE_SLOTS_OFFSET + 6, 4069).every((x) => x === 0)).toBe(true);
  });

  it('compacts to make room when gap + dead suffices, else returns false unchanged', () => {
    const p = emptyNode(PageType.Leaf);
    const v = new Uint8Array(990).fill(7);
    for (const key of ['a', 'b', 'c', 'd']) expect(put(p, key, v)).toBe(true);
    const before = p.slice();
    expect(put(p, 'e', v)).toBe(false);
    expect(p).toEqual(before);
    k.nodeRemove(p, 1);
    expect(put(p, 'e', v)).toBe(true);
    expect(dead(p)).toBe(0);
    expect(keys(p)).toEqual(['a', 'c', 'd', 'e']);
  });

  it('stores overflow references (first page id, chain txn id) as 16 inline bytes with bit 31 set', () => {
    const p = emptyNode(PageType.Leaf);
    const ref = new Uint8Array(OVERFLOW_REF_SIZE);
    writeU64(ref, OVERFLOW_REF_PAGE, 42);
    writeU64(ref, OVERFLOW_REF_TXN, 9);
    expect(k.leafInsert(p, 0, b('k'), ref, (VALUE_OVERFLOW_BIT | 5000) >>> 0)).toBe(true);
    expect(cellStart(p)).toBe(4096 - 23);
    const out = new Uint32Array(4);
    expect(k.nodeDecode(p, out)).toBe(1);
    expect([...out]).toEqual([4079, 1, 4080, (VALUE_OVERFLOW_BIT | 5000) >>> 0]);
    expect(readU64(p, 4080 + OVERFLOW_REF_TXN)).toBe(9);
    expect(() => k.leafInsert(p, 0, b('j'), new Uint8Array(8), VALUE_OVERFLOW_BIT)).toThrow(RangeError);
  });
});

describe('branch kernels', () => {
  it('routes to the number of separators <= key and decodes children', () => {
    const p = emptyNode(PageType.Branch);
    writeU64(p, NODE_LINK_OFFSET, 100);
    ['b', 'd', 'f'].forEach((key, i) => expect(k.branchInsert(p, i, b(key), 101 + i, 7 + i)).toBe(true));
    const route = (key: string): number => k.branchSearch(p, b(key));
    expect(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map(route)).toEqual([0, 1, 1, 2, 2, 3, 3]);
    expect(k.branchInsert(p, 3, b('h'), 2 ** 53 - 1, 2 ** 53 - 1)).toBe(true);
    const out = new Uint32Array(16);
    expect(k.nodeDecode(p, out)).toBe(4);
    // Cell 0 at 4096 - 19: child u64, child txn u64, key length u16, key.
    expect([...out.subarray(0, 4)]).toEqual([4095, 1, 101, 0]);
    expect(readU64(p, 4096 - 19 + BRANCH_CELL_CHILD_TXN)).toBe(7);
    expect([...out.subarray(12)]).toEqual([4096 - 4 * 19 + 18, 1, 0xffffffff, 0x1fffff]);
    expect(readU64(p, 4096 - 4 * 19 + BRANCH_CELL_CHILD_TXN)).toBe(2 ** 53 - 1);
  });
});

describe('split and merge', () => {
  it('moves [at, count) to dst and compacts src', () => {
    const src = emptyNode(PageType.Leaf);
    for (const key of ['a', 'b', 'c', 'd', 'e']) put(src, key, 'val');
    const dst = emptyNode(PageType.Leaf);
    expect(k.nodeSplit(src, dst, 2)).toBe(true);
    expect(keys(src)).toEqual(['a', 'b']);
    expect(keys(dst)).toEqual(['c', 'd', 'e']);
    expect([cellStart(src), dead(src)]).toEqual([4096 - 20, 0]);
    expect(src.subarray(NODE_SLOTS_OFFSET + 4, 4096 - 20).every((x) => x === 0)).toBe(true);
    expect(k.nodeMerge(src, dst)).toBe(true);
    expect(keys(src)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('returns false with both nodes unchanged when dst cannot hold the cells', () => {
    const src = emptyNode(PageType.Leaf, 8192);
    const v = new Uint8Array(1500).fill(1);
    for (const key of ['a', 'b', 'c', 'd', 'e']) expect(put(src, key, v)).toBe(true);
    const dst = emptyNode(PageType.Leaf);
    const [s0, d0] = [src.slice(), dst.slice()];
    expect(k.nodeSplit(src, dst, 1)).toBe(false);
    expect(src).toEqual(s0);
    expect(dst).toEqual(d0);
    expect(k.nodeMerge(dst, src)).toBe(false);
    expect(dst).toEqual(d0);
    expect(k.nodeSplit(src, dst, 3)).toBe(true);
  });

  it('rejects overlapping buffers and mixed node types with RangeError', () => {
    const big = new Uint8Array(8192);
    const a = big.subarray(0, 4096);
    const leaf = emptyNode(PageType.Leaf);
    a.set(leaf);
    expect(() => k.nodeSplit(a, a, 0)).toThrow(RangeError);
    expect(() => k.nodeMerge(emptyNode(PageType.Branch), leaf)).toThrow(RangeError);
  });
});

describe('bad arguments and corrupt nodes', () => {
  it('throws TypeError for wrong JavaScript types', () => {
    const p = emptyNode(PageType.Leaf);
    const bad = 'x' as unknown as Uint8Array;
    expect(() => k.leafSearch(bad, b('a'))).toThrow(TypeError);
    expect(() => k.leafSearch(p, bad)).toThrow(TypeError);
    expect(() => k.leafInsert(p, '0' as unknown as number, b('a'), b(''), 0)).toThrow(TypeError);
    expect(() => k.nodeDecode(p, new Uint8Array(4) as unknown as Uint32Array)).toThrow(TypeError);
    expect(() => k.nodeCompact(new Uint8ClampedArray(4096) as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('throws RangeError for bad lengths, indexes, kinds and overlapping views', () => {
    const p = emptyNode(PageType.Leaf);
    expect(() => k.nodeCompact(new Uint8Array(6000))).toThrow(RangeError);
    expect(() => k.branchSearch(p, b('a'))).toThrow(RangeError);
    expect(() => k.nodeRemove(p, 0)).toThrow(RangeError);
    expect(() => k.leafInsert(p, 1, b('a'), b(''), 0)).toThrow(RangeError);
    expect(() => k.leafInsert(p, -1, b('a'), b(''), 0)).toThrow(RangeError);
    expect(() => k.leafInsert(p, 0, b('a'), b(''), 2 ** 32)).toThrow(RangeError);
    expect(() => k.leafInsert(p, 0, p.subarray(4000, 4001), b(''), 0)).toThrow(RangeError);
    expect(() => k.nodeDecode(p, new Uint32Array(p.buffer, 0, 4))).toThrow(RangeError);
  });

  it('throws RangeError on a corrupt node and never touches memory outside it', () => {
    const p = emptyNode(PageType.Leaf);
    put(p, 'a', '1');
    put(p, 'b', '2');
    const slotPastEnd = p.slice();
    writeU16(slotPastEnd, NODE_SLOTS_OFFSET, 4095);
    expect(() => k.leafSearch(slotPastEnd, b('a'))).toThrow(RangeError);
    expect(() => k.nodeCompact(slotPastEnd)).toThrow(RangeError);
    expect(() => k.nodeRemove(slotPastEnd, 0)).toThrow(RangeError);
    expect(() => k.nodeDecode(slotPastEnd, new Uint32Array(8))).toThrow(RangeError);
    const cellStartPastEnd = p.slice();
    writeU32(cellStartPastEnd, NODE_CELL_START_OFFSET, 5000);
    expect(() => k.leafSearch(cellStartPastEnd, b('a'))).toThrow(RangeError);
    const slotsPastCells = p.slice();
    writeU16(slotsPastCells, NODE_COUNT_OFFSET, 3000);
    expect(() => k.nodeCompact(slotsPastCells)).toThrow(RangeError);
    // A dead count that lies: compaction frees less than the header promised.
    const lyingDead = p.slice();
    writeU16(lyingDead, NODE_DEAD_OFFSET, 4000);
    expect(() => k.leafInsert(lyingDead, 0, b('0'), new Uint8Array(4020), 4020)).toThrow(RangeError);
    expect(keys(lyingDead)).toEqual(['a', 'b']);
  });
});
