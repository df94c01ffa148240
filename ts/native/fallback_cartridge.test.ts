// Known-answer tests of the cartridge entry-order kernel (cartridgeDisorder,
// ts/native/fallback_cartridge.ts) against spec/cartridge_v1.md §2–§3, on the
// fallback and, when loaded, the native addon. The Rust twin pins the same
// vector in crates/northstar-native/src/kernels/cartridge.rs;
// parity_cartridge.test.ts checks the two against each other on random tables.

import { describe, expect, it } from 'vitest';

import { writeU32, writeU64 } from '../format/bytes.js';
import { parseTables, readSpec, tablesWithHeader } from '../testing/spec_tables.js';
import { ENTRY_SIZE } from './fallback_cartridge.js';
import { type Kernels, fallbackKernels, nativeKernels } from './kernels.js';

type Entry = [rank: number, reserved: number, readyAt: number, id: number];

/** Entries laid out back to back after `at` bytes of 0xEE. */
function table(at: number, entries: Entry[]): Uint8Array {
  const b = new Uint8Array(at + entries.length * ENTRY_SIZE).fill(0xee);
  entries.forEach(([rank, reserved, readyAt, id], i) => {
    const e = at + i * ENTRY_SIZE;
    writeU32(b, e, rank);
    writeU32(b, e + 4, reserved);
    writeU64(b, e + 8, readyAt);
    writeU64(b, e + 16, id);
  });
  return b;
}

/** A table with u64 fields given as bigints (values past 2^53). */
function bigTable(entries: [number, number, bigint, bigint][]): Uint8Array {
  const b = new Uint8Array(entries.length * ENTRY_SIZE);
  const v = new DataView(b.buffer);
  entries.forEach(([rank, reserved, readyAt, id], i) => {
    v.setUint32(i * ENTRY_SIZE, rank, true);
    v.setUint32(i * ENTRY_SIZE + 4, reserved, true);
    v.setBigUint64(i * ENTRY_SIZE + 8, readyAt, true);
    v.setBigUint64(i * ENTRY_SIZE + 16, id, true);
  });
  return b;
}

/** The class and message of what `call` throws (the native errors also carry a `code`). */
function thrown(call: () => unknown): [string, string] {
  try {
    call();
  } catch (e) {
    return [(e as Error).constructor.name, (e as Error).message];
  }
  return ['nothing', ''];
}

const implementations: [string, Kernels][] = [['fallback', fallbackKernels], ...(nativeKernels ? [['native', nativeKernels] as [string, Kernels]] : [])];

describe('spec/cartridge_v1.md §2', () => {
  it('the entry is CARTRIDGE_ENTRY_SIZE bytes: rank u32, reserved u32, readyAt u64, id u64', () => {
    const tables = parseTables(readSpec('cartridge_v1.md'));
    const constants = tablesWithHeader(tables, 'constant', 'value')[0]!;
    expect(constants.rows.find((r) => r.cells[0] === '`CARTRIDGE_ENTRY_SIZE`')?.cells[1]).toBe(String(ENTRY_SIZE));
    const entry = tablesWithHeader(tables, 'offset', 'size', 'field').find((t) => t.rows[0]?.cells[2]?.startsWith('rank'))!;
    // The words the kernel reads: rank 0, reserved 1, readyAt 2–3, id 4–5.
    expect(entry.rows.map((r) => [Number(r.cells[0]), Number(r.cells[1]), r.cells[2]!.split(/[ :]/)[0]])).toEqual([
      [0, 4, 'rank'],
      [4, 4, 'reserved'],
      [8, 8, 'readyAt'],
      [16, 8, 'id'],
    ]);
  });
});

for (const [name, k] of implementations) {
  describe(`cartridgeDisorder (${name})`, () => {
    it('known answer: the vector the Rust kernel pins', () => {
      const hex =
        'eeeeee' +
        '01000000000000000500000000000000' + '0900000000000000' +
        '01000000000000000500000000000000' + '0a00000000000000' +
        '02000000000000000000000000000000' + '0000000000000000' +
        '01000000000000000000000000000000' + '0000000000000000';
      const b = new Uint8Array(Buffer.from(hex, 'hex'));
      expect(b).toEqual(table(3, [[1, 0, 5, 9], [1, 0, 5, 10], [2, 0, 0, 0], [1, 0, 0, 0]]));
      expect(k.cartridgeDisorder(b, 3, 3)).toBe(0);
      expect(k.cartridgeDisorder(b, 3, 4)).toBe(3);
      expect(k.cartridgeDisorder(b, 3 + ENTRY_SIZE, 3)).toBe(2);
      expect(k.cartridgeDisorder(b, 3 + 3 * ENTRY_SIZE, 1)).toBe(0);
      // Read 4 bytes early, entry 0's readyAt (5) is the reserved word.
      expect(k.cartridgeDisorder(b, 7, 1)).toBe(-1);
    });

    it('empty and single tables are in order', () => {
      expect(k.cartridgeDisorder(new Uint8Array(0), 0, 0)).toBe(0);
      expect(k.cartridgeDisorder(new Uint8Array(3), 3, 0)).toBe(0);
      expect(k.cartridgeDisorder(bigTable([[0xffffffff, 0, 2n ** 64n - 1n, 2n ** 64n - 1n]]), 0, 1)).toBe(0);
    });

    it('orders by rank, then readyAt, then id, as unsigned; equal entries are out of order', () => {
      const max = 2n ** 64n - 1n;
      const cases: [[number, number, bigint, bigint][], number][] = [
        [[[1, 0, 9n, 9n], [2, 0, 0n, 0n]], 0],
        [[[1, 0, 0n, 0n], [1, 0, 1n, 0n]], 0],
        [[[1, 0, 1n, 0n], [1, 0, 1n, 1n]], 0],
        [[[2, 0, 0n, 0n], [1, 0, 9n, 9n]], 1],
        [[[1, 0, 1n, 0n], [1, 0, 0n, 9n]], 1],
        [[[1, 0, 1n, 2n], [1, 0, 1n, 1n]], 1],
        [[[1, 0, 1n, 1n], [1, 0, 1n, 1n]], 1],
        [[[0, 0, 0n, 0n], [0, 0, 0n, 0n]], 1],
        [[[1, 0, 0n, 0n], [0x80000000, 0, 0n, 0n]], 0],
        [[[0x80000000, 0, 0n, 0n], [1, 0, 0n, 0n]], 1],
        [[[1, 0, 1n << 63n, 0n], [1, 0, max, 0n]], 0],
        [[[1, 0, 0n, max], [1, 0, 1n, 0n]], 0],
        [[[1, 0, 0xffffffffn, 0n], [1, 0, 1n << 32n, 0n]], 0],
        [[[1, 0, 1n << 32n, 0n], [1, 0, 0xffffffffn, 0n]], 1],
        [[[1, 0, 7n, 0xffffffffn], [1, 0, 7n, 1n << 32n]], 0],
        [[[1, 0, 7n, 1n << 32n], [1, 0, 7n, 0xffffffffn]], 1],
        [[[1, 0, 0n, 0n], [2, 0, 0n, 0n], [3, 0, 0n, 0n], [3, 0, 0n, 0n], [1, 0, 0n, 0n]], 3],
      ];
      for (const [entries, want] of cases) expect(k.cartridgeDisorder(bigTable(entries), 0, entries.length), String(entries)).toBe(want);
    });

    it('a nonzero reserved word gives −(i + 1), checked before entry i is compared with entry i − 1', () => {
      const d = (entries: Entry[]): number => k.cartridgeDisorder(table(0, entries), 0, entries.length);
      expect(d([[1, 1, 0, 0]])).toBe(-1);
      expect(d([[1, 0, 0, 0], [2, 0x80000000, 0, 0]])).toBe(-2);
      expect(d([[2, 0, 0, 0], [1, 1, 0, 0]])).toBe(-2);
      expect(d([[2, 0, 0, 0], [1, 0, 0, 0], [3, 1, 0, 0]])).toBe(1);
      expect(d([[1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0], [4, 7, 0, 0]])).toBe(-4);
    });

    it('finds every first break at every alignment', () => {
      const n = 40;
      const sorted: Entry[] = Array.from({ length: n }, (_, i) => [i >>> 2, 0, i % 4, i]);
      for (let at = 0; at < 8; at++) {
        // A view `at` bytes into its buffer as well as `at` bytes into the view.
        const place = (entries: Entry[]): Uint8Array => {
          const t = table(at, entries);
          const v = new Uint8Array(new ArrayBuffer(t.length + at), at, t.length);
          v.set(t);
          return v;
        };
        expect(k.cartridgeDisorder(place(sorted), at, n)).toBe(0);
        for (let i = 1; i < n; i++) {
          const dup = sorted.map((e) => [...e] as Entry);
          dup[i] = [...dup[i - 1]!];
          expect(k.cartridgeDisorder(place(dup), at, n)).toBe(i);
          const reserved = sorted.map((e) => [...e] as Entry);
          reserved[i]![1] = 2 ** (i % 32);
          expect(k.cartridgeDisorder(place(reserved), at, n)).toBe(-(i + 1));
        }
      }
    });

    it('throws TypeError for wrong types and RangeError for bad values, argument by argument', () => {
      const b = table(0, [[1, 0, 0, 0], [2, 0, 0, 0]]);
      expect(k.cartridgeDisorder(b, 48, 0)).toBe(0);
      expect(thrown(() => k.cartridgeDisorder(b, 1, 2))).toEqual(['RangeError', '2 entries at 1 pass the end of 48 bytes']);
      expect(() => k.cartridgeDisorder(b, 0, 3)).toThrow(RangeError);
      expect(() => k.cartridgeDisorder(b, 49, 0)).toThrow(RangeError);
      expect(() => k.cartridgeDisorder(b, 2 ** 53 - 1, 2 ** 53 - 1)).toThrow(RangeError);
      expect(thrown(() => k.cartridgeDisorder('x' as unknown as Uint8Array, -1, 0))).toEqual(['TypeError', 'bytes must be a Uint8Array']);
      expect(() => k.cartridgeDisorder(new Uint16Array(24) as unknown as Uint8Array, 0, 0)).toThrow(TypeError);
      expect(thrown(() => k.cartridgeDisorder(b, '0' as unknown as number, 0))).toEqual(['TypeError', 'at must be a number']);
      expect(thrown(() => k.cartridgeDisorder(b, -1, 'x' as unknown as number))).toEqual(['RangeError', 'at must be a non-negative safe integer']);
      expect(thrown(() => k.cartridgeDisorder(b, 0, 0.5))).toEqual(['RangeError', 'count must be a non-negative safe integer']);
      expect(() => k.cartridgeDisorder(b, 2 ** 53, 0)).toThrow(RangeError);
      expect(() => k.cartridgeDisorder(b, 0, 1n as unknown as number)).toThrow(TypeError);
    });
  });
}
