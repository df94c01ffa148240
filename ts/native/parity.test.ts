// Differential test of the native kernels (crates/northstar-native) against
// their pure-TypeScript twins (ts/native/fallback.ts), spec/file_format_v1.md
// §2 and §4: the same random sequence of kernel calls is applied to a page
// pair of each implementation, and after every call the return values, the
// thrown error class (TypeError vs RangeError) and every byte of both pages
// must be identical.
//
// The seed is printed; replay a failure with NORTHSTAR_SEED=<seed>.
// Skipped when the addon is not loaded (the `fallback` project, or no build),
// unless NORTHSTAR_REQUIRE_NATIVE=1 (and NORTHSTAR_NATIVE is not 0): then it fails.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { readU16, writeU16, writeU32, writeU64 } from '../format/bytes.js';
import {
  MAX_NODE_BUFFER,
  NODE_CELL_START_OFFSET,
  NODE_COUNT_OFFSET,
  NODE_DEAD_OFFSET,
  NODE_SLOTS_OFFSET,
  OVERFLOW_REF_SIZE,
  PAGE_ID_OFFSET,
  PAGE_MAGIC,
  PAGE_SIZES,
  PAYLOAD_LENGTH_OFFSET,
  PageType,
  TYPE_OFFSET,
  VALUE_OVERFLOW_BIT,
  VERSION_OFFSET,
} from '../format/constants.js';
import { type Kernels, fallbackKernels } from './kernels.js';
import { nativeOrFail, outcome, skipParity } from '../testing/parity.js';

const skip = skipParity;

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
if (!skip) console.log(`parity.test.ts: NORTHSTAR_SEED=${seed}`);


const same = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

/** Asserts equal bytes without printing 64 KiB on failure: names the first differing offset. */
function expectSameBytes(n: Uint8Array, f: Uint8Array, what: string): void {
  if (same(n, f)) return;
  let i = 0;
  while (i < n.length && n[i] === f[i]) i++;
  expect.fail(`${what}: native and fallback differ first at byte ${i} (native ${n[i]}, fallback ${f[i]}; lengths ${n.length}/${f.length})`);
}

/** A `size`-byte view at `offset` (0..7) into a larger ArrayBuffer: exercises unaligned pointers. */
function view(size: number, offset: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size + 8), offset, size);
}

function emptyNode(type: number, size: number, offset = 0): Uint8Array {
  const p = view(size, offset);
  p[TYPE_OFFSET] = type;
  writeU32(p, NODE_CELL_START_OFFSET, size);
  return p;
}

function copyOf(p: Uint8Array, offset: number): Uint8Array {
  const c = view(p.length, offset);
  c.set(p);
  return c;
}

/** Value bytes of length n, from a fill seed: cheap to generate, distinct enough to catch misplaced bytes. */
function valueBytes(n: number, fill: number): Uint8Array {
  const v = new Uint8Array(n);
  for (let i = 0; i < n; i++) v[i] = (i * 31 + fill) & 0xff;
  return v;
}

// ---- the random call sequence ---------------------------------------------------

type Op =
  | { t: 'insert'; key: Uint8Array; vlen: number; fill: number; overflow: boolean; at: number | null; child: number; childTxn: number }
  | { t: 'remove'; pick: number; raw: number | null }
  | { t: 'compact' }
  | { t: 'split'; pick: number; fresh: boolean }
  | { t: 'merge'; intoA: boolean }
  | { t: 'search'; present: boolean; pick: number; key: Uint8Array }
  | { t: 'decode'; extra: number }
  | { t: 'swap' }
  | { t: 'bad'; which: number; pick: number };

const keyArb = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 300 }) },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 16 }) },
);

/** Mostly null (use the derived, valid argument), sometimes a raw value from `arb`. */
function rarely<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('insert' as const),
      key: keyArb,
      vlen: fc.oneof(fc.nat(2000), fc.nat(64)),
      fill: fc.nat(255),
      overflow: fc.boolean(),
      at: rarely(fc.integer({ min: -1, max: 200 })), // null: the key's sorted position
      child: fc.oneof(fc.nat(), fc.maxSafeNat()),
      childTxn: fc.oneof(fc.nat(), fc.maxSafeNat()),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('remove' as const), pick: fc.nat(), raw: rarely(fc.integer({ min: -2, max: 400 })) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('compact' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('split' as const), pick: fc.nat(), fresh: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('merge' as const), intoA: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('search' as const), present: fc.boolean(), pick: fc.nat(), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('decode' as const), extra: fc.nat(8) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('swap' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('bad' as const), which: fc.nat(), pick: fc.nat() }) },
);

interface Side {
  k: Kernels;
  a: Uint8Array;
  b: Uint8Array;
}

/**
 * Bad calls, each built from one side's pages. Both sides get the same
 * arguments apart from their own pages, so they must throw the same class.
 */
const BAD_CALLS: ReadonlyArray<(s: Side, pick: number) => unknown> = [
  (s) => s.k.leafSearch(s.a, 'key' as unknown as Uint8Array),
  (s) => s.k.branchSearch(42 as unknown as Uint8Array, new Uint8Array(1)),
  (s) => s.k.nodeRemove(s.a, -1),
  (s) => s.k.nodeRemove(s.a, 0.5),
  (s) => s.k.nodeRemove(s.a, '0' as unknown as number),
  (s) => s.k.nodeRemove(s.a, Number.NaN),
  (s) => s.k.nodeRemove(s.a, 2 ** 33),
  (s) => s.k.nodeRemove(s.a, Number.POSITIVE_INFINITY),
  (s) => s.k.leafInsert(s.a, 0, new Uint8Array(1), new Uint8Array(0), -1),
  (s) => s.k.leafInsert(s.a, 0, new Uint8Array(1), new Uint8Array(0), 2 ** 32),
  (s) => s.k.leafInsert(s.a, 0, new Uint16Array(2) as unknown as Uint8Array, new Uint8Array(0), 0),
  (s) => s.k.leafInsert(s.a, 0, new Uint8Array(1), new Uint8Array(3), 2),
  (s) => s.k.leafInsert(s.a, 0, new Uint8Array(1), new Uint8Array(3), VALUE_OVERFLOW_BIT),
  (s) => s.k.leafInsert(s.a, 0, new Uint8Array(0x10000), new Uint8Array(0), 0),
  (s) => s.k.leafInsert(s.a, 0, s.a.subarray(100, 104), new Uint8Array(0), 0),
  (s) => s.k.leafInsert(s.a, 0, new Uint8Array(1), s.a.subarray(s.a.length - 2), 2),
  (s) => s.k.leafInsert(s.a, 0n as unknown as number, new Uint8Array(1), new Uint8Array(0), 0),
  (s) => s.k.leafInsert(s.a, 0, new Uint8Array(1), null as unknown as Uint8Array, 0),
  (s) => s.k.branchInsert(s.a, 0, new Uint8Array(1), -1, 1),
  (s) => s.k.branchInsert(s.a, 0, new Uint8Array(1), 2 ** 53, 1),
  (s) => s.k.branchInsert(s.a, 0, new Uint8Array(1), 1n as unknown as number, 1),
  (s) => s.k.branchInsert(s.a, 0, new Uint8Array(1), 1, -1),
  (s) => s.k.branchInsert(s.a, 0, new Uint8Array(1), 1, 2 ** 53),
  (s) => s.k.branchInsert(s.a, 0, new Uint8Array(1), 1, 0.5),
  (s) => s.k.branchInsert(s.a, 0, new Uint8Array(1), 1, undefined as unknown as number),
  (s) => s.k.branchInsert(s.a, 0, s.a.subarray(60, 61), 1, 1),
  (s) => s.k.nodeSplit(s.a, s.a, 0),
  (s, pick) => s.k.nodeSplit(s.a, new Uint8Array(s.a.buffer, s.a.byteOffset + (pick % 2) * 4, 4096), 0),
  (s) => s.k.nodeSplit(s.a, s.b, -1),
  (s) => s.k.nodeSplit(s.a, s.b, 'x' as unknown as number),
  (s) => s.k.nodeSplit(s.a, s.b, 100000),
  (s) => s.k.nodeMerge(s.a, emptyNode(s.a[TYPE_OFFSET] === PageType.Leaf ? PageType.Branch : PageType.Leaf, 4096)),
  (s) => s.k.nodeMerge(s.a, undefined as unknown as Uint8Array),
  (s) => s.k.nodeDecode(s.a, new Int32Array(1024) as unknown as Uint32Array),
  (s) => s.k.nodeDecode(s.a, new Uint32Array(0)),
  (s) => s.k.nodeDecode(s.a, new Uint32Array(s.a.buffer, 0, 8)),
  (s) => s.k.nodeCompact(new DataView(s.a.buffer) as unknown as Uint8Array),
  (s) => s.k.nodeCompact(new Uint8Array(3 * 4096)),
  (s) => s.k.nodeCompact(new Uint8Array(2 * MAX_NODE_BUFFER)),
  (s) => s.k.pageVerify(s.a, -1),
  (s) => s.k.pageVerify(s.a, 1.5),
  (s) => s.k.pageSeal(new Uint8Array(100)),
  (s) => s.k.leafSearch(s.b, s.a),
  (s) => s.k.branchSearch(s.a, s.a),
];

/** Turns a generated op into one concrete call, with arguments derived from the fallback side's state. */
function concretize(op: Op, f: Side): (s: Side) => unknown {
  const count = readU16(f.a, NODE_COUNT_OFFSET);
  const leaf = f.a[TYPE_OFFSET] === PageType.Leaf;
  switch (op.t) {
    case 'insert': {
      const key = op.key.slice();
      const search = leaf ? fallbackKernels.leafSearch(f.a, key) >>> 1 : fallbackKernels.branchSearch(f.a, key);
      const index = op.at ?? search;
      if (!leaf) return (s) => s.k.branchInsert(s.a, index, key, op.child, op.childTxn);
      const value = op.overflow ? valueBytes(OVERFLOW_REF_SIZE, op.fill) : valueBytes(op.vlen, op.fill);
      const vlenField = op.overflow ? (VALUE_OVERFLOW_BIT | (op.vlen * 1000 + op.fill)) >>> 0 : op.vlen;
      return (s) => s.k.leafInsert(s.a, index, key, value, vlenField);
    }
    case 'remove': {
      const index = op.raw ?? (count === 0 ? 0 : op.pick % count);
      return (s) => s.k.nodeRemove(s.a, index);
    }
    case 'compact':
      return (s) => s.k.nodeCompact(s.a);
    case 'split': {
      const at = op.pick % (count + 1);
      return (s) => {
        if (op.fresh) s.b = emptyNode(s.a[TYPE_OFFSET]!, s.b.length, s.b.byteOffset);
        return s.k.nodeSplit(s.a, s.b, at);
      };
    }
    case 'merge':
      return (s) => (op.intoA ? s.k.nodeMerge(s.a, s.b) : s.k.nodeMerge(s.b, s.a));
    case 'search': {
      let key = op.key.slice();
      if (op.present && count > 0) {
        const out = new Uint32Array(4 * count);
        fallbackKernels.nodeDecode(f.a, out);
        const i = op.pick % count;
        key = f.a.slice(out[4 * i]!, out[4 * i]! + out[4 * i + 1]!);
      }
      return (s) => (s.a[TYPE_OFFSET] === PageType.Leaf ? s.k.leafSearch(s.a, key) : s.k.branchSearch(s.a, key));
    }
    case 'decode':
      return (s) => {
        const out = new Uint32Array(4 * count + op.extra).fill(0xdeadbeef);
        const n = s.k.nodeDecode(s.a, out);
        return [n, [...out]];
      };
    case 'swap':
      return (s) => {
        [s.a, s.b] = [s.b, s.a];
      };
    case 'bad': {
      const call = BAD_CALLS[op.which % BAD_CALLS.length]!;
      return (s) => call(s, op.pick);
    }
  }
}

function runSequence(size: number, bSize: number, type: number, offsets: [number, number], ops: Op[]): void {
  const n: Side = { k: nativeOrFail(), a: emptyNode(type, size, offsets[0]), b: emptyNode(type, bSize, offsets[1]) };
  const f: Side = { k: fallbackKernels, a: emptyNode(type, size), b: emptyNode(type, bSize) };
  for (const [i, op] of ops.entries()) {
    const call = concretize(op, f);
    const on = outcome(() => call(n));
    const of = outcome(() => call(f));
    expect(on, `step ${i} ${op.t}`).toEqual(of);
    expectSameBytes(n.a, f.a, `step ${i} ${op.t}, page a`);
    expectSameBytes(n.b, f.b, `step ${i} ${op.t}, page b`);
  }
}

const NODE_SIZES = [...PAGE_SIZES, MAX_NODE_BUFFER];

describe.skipIf(skip)('native and fallback kernels are byte-identical', () => {
  for (const size of NODE_SIZES) {
    // The scratch node is split into and merged with a real page, as in redistribution.
    const bSize = size === MAX_NODE_BUFFER ? 32768 : size;
    it(`random call sequences on ${size}-byte nodes (second node ${bSize})`, () => {
      fc.assert(
        fc.property(
          fc.constantFrom(PageType.Leaf, PageType.Leaf, PageType.Branch),
          fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 7 })),
          fc.array(opArb, { minLength: 1, maxLength: 150, size: 'max' }),
          (type, offsets, ops) => runSequence(size, bSize, type, offsets, ops),
        ),
        { seed, numRuns: size >= 32768 ? 60 : 100 },
      );
    });
  }

  it('pageSeal and pageVerify agree on random pages, flipped bits, wrong ids and versions', () => {
    const native = nativeOrFail();
    fc.assert(
      fc.property(
        fc.constantFrom(...PAGE_SIZES),
        fc.integer({ min: 0, max: 7 }),
        fc.nat(0x7fffffff),
        fc.record({
          version: fc.constantFrom(1, 1, 1, 0, 2, 0xffff),
          type: fc.integer({ min: 0, max: 7 }),
          id: fc.oneof(fc.nat(1000), fc.maxSafeNat()),
          payload: fc.oneof(fc.nat(0x10000), fc.constant(-1)),
          zero: fc.boolean(),
        }),
        fc.constantFrom('none', 'header', 'crc', 'reserved', 'body'),
        fc.nat(),
        fc.nat(7),
        fc.constantFrom('same', 'other', 'big'),
        (size, offset, fill, h, where, pos, bit, idCase) => {
          const p = view(size, offset);
          if (!h.zero) {
            p.set(valueBytes(size, fill));
            writeU32(p, 0, PAGE_MAGIC);
            writeU16(p, VERSION_OFFSET, h.version);
            p[TYPE_OFFSET] = h.type;
            writeU64(p, PAGE_ID_OFFSET, h.id);
            writeU32(p, PAYLOAD_LENGTH_OFFSET, h.payload < 0 ? size - 40 : h.payload);
          }
          const f = p.slice();
          native.pageSeal(p);
          fallbackKernels.pageSeal(f);
          expectSameBytes(p, f, 'after pageSeal');
          const flipAt = { none: -1, header: pos % 28, crc: 28 + (pos % 8), reserved: 36 + (pos % 4), body: 40 + (pos % (size - 40)) }[where];
          if (flipAt >= 0) {
            p[flipAt]! ^= 1 << bit;
            f[flipAt]! ^= 1 << bit;
          }
          const expected = { same: h.id, other: h.id + 1, big: 2 ** 53 - 1 }[idCase];
          expect(outcome(() => native.pageVerify(p, expected))).toEqual(outcome(() => fallbackKernels.pageVerify(f, expected)));
        },
      ),
      { seed, numRuns: 400 },
    );
  });

  it('edge cases: empty nodes, 1-byte keys, page-sized keys, unaligned views', () => {
    const native = nativeOrFail();
    for (const size of NODE_SIZES) {
      for (const offset of [0, 1, 3, 7]) {
        for (const type of [PageType.Leaf, PageType.Branch]) {
          const pair = (): [Uint8Array, Uint8Array] => [emptyNode(type, size, offset), emptyNode(type, size)];
          const both = (call: (k: Kernels, p: Uint8Array) => unknown): void => {
            const [n, f] = pair();
            expect(outcome(() => call(native, n))).toEqual(outcome(() => call(fallbackKernels, f)));
            expectSameBytes(n, f, 'edge case');
          };
          both((k, p) => k.nodeCompact(p));
          both((k, p) => k.nodeRemove(p, 0));
          both((k, p) => k.nodeDecode(p, new Uint32Array(0)));
          both((k, p) => k.leafSearch(p, new Uint8Array(0)));
          both((k, p) => k.branchSearch(p, new Uint8Array(1)));
          both((k, p) => k.nodeSplit(p, emptyNode(type, size), 0));
          both((k, p) => k.nodeMerge(p, emptyNode(type, size)));
          both((k, p) => k.pageSeal(p));
          both((k, p) => k.pageVerify(p, 0));
          // Keys as long as the node: too big to fit (false), or too long for the u16 length (RangeError).
          for (const klen of [size - 64, size - 56, 0xffff, 0x10000]) {
            both((k, p) => k.leafInsert(p, 0, new Uint8Array(klen).fill(1), new Uint8Array(0), 0));
            both((k, p) => k.branchInsert(p, 0, new Uint8Array(klen).fill(1), 7, 8));
          }
          // Fill with 1-byte keys until full (the last fit leaves a gap of exactly
          // zero for leaves: 10 bytes per cell and slot), then drain from the front.
          const [n, f] = pair();
          for (let i = 0, full = 0; full < 3; i++) {
            const key = new Uint8Array([i & 0xff]);
            const call = (k: Kernels, p: Uint8Array): unknown =>
              type === PageType.Leaf ? k.leafInsert(p, i % 7 === 0 ? 0 : readU16(p, NODE_COUNT_OFFSET), key, key, 1) : k.branchInsert(p, 0, key, i, i + 1);
            const o = outcome(() => call(fallbackKernels, f));
            expect(outcome(() => call(native, n))).toEqual(o);
            if (o.ok && o.value === false) full++;
            if (i % 97 === 0 && readU16(f, NODE_COUNT_OFFSET) > 2) {
              native.nodeRemove(n, 1); // dead bytes, reclaimed by a later compaction
              fallbackKernels.nodeRemove(f, 1);
            }
          }
          expectSameBytes(n, f, '1-byte keys');
          while (readU16(f, NODE_COUNT_OFFSET) > 0) {
            native.nodeRemove(n, 0);
            fallbackKernels.nodeRemove(f, 0);
          }
          expectSameBytes(n, f, 'drained');
        }
      }
    }
  });

  it('corrupt nodes (slot, count, cellStart, dead, cell lengths) throw RangeError on both, and the process survives', () => {
    const native = nativeOrFail();
    fc.assert(
      fc.property(
        fc.constantFrom(...NODE_SIZES),
        fc.constantFrom(PageType.Leaf, PageType.Branch),
        fc.array(keyArb, { minLength: 1, maxLength: 12 }),
        fc.constantFrom('slot', 'count', 'cellStart', 'dead', 'cellLength'),
        fc.nat(),
        fc.nat(0xffffffff),
        fc.nat(BAD_CALLS.length + 20),
        (size, type, ks, field, pick, garbage, which) => {
          const f = emptyNode(type, size);
          ks.forEach((key, i) =>
            type === PageType.Leaf ? fallbackKernels.leafInsert(f, i, key, key, key.length) : fallbackKernels.branchInsert(f, i, key, i, i * 3),
          );
          const count = readU16(f, NODE_COUNT_OFFSET);
          const slotAt = NODE_SLOTS_OFFSET + 2 * (pick % Math.max(count, 1));
          if (field === 'slot') writeU16(f, slotAt, garbage);
          if (field === 'count') writeU16(f, NODE_COUNT_OFFSET, garbage);
          if (field === 'cellStart') writeU32(f, NODE_CELL_START_OFFSET, garbage);
          if (field === 'dead') writeU16(f, NODE_DEAD_OFFSET, garbage);
          if (field === 'cellLength') {
            const o = readU16(f, slotAt);
            writeU16(f, o + (type === PageType.Leaf ? pick % 2 === 0 ? 0 : 4 : 8), garbage);
          }
          const n = copyOf(f, pick % 8);
          const sides: [Side, Side] = [
            { k: native, a: n, b: emptyNode(type, size) },
            { k: fallbackKernels, a: f, b: emptyNode(type, size) },
          ];
          const calls: ((s: Side) => unknown)[] = [
            (s) => s.k.leafSearch(s.a, ks[0]!),
            (s) => s.k.branchSearch(s.a, ks[0]!),
            (s) => s.k.nodeCompact(s.a),
            (s) => s.k.nodeRemove(s.a, pick % 3),
            (s) => s.k.nodeDecode(s.a, new Uint32Array(4 * 0x8000)),
            (s) => s.k.leafInsert(s.a, 0, new Uint8Array(3), new Uint8Array(size / 2), size / 2),
            (s) => s.k.leafInsert(s.a, 0, new Uint8Array(3), new Uint8Array(4), 4),
            (s) => s.k.branchInsert(s.a, 0, new Uint8Array(size / 2), 5, 6),
            (s) => s.k.nodeSplit(s.a, s.b, 0),
            (s) => s.k.nodeSplit(s.a, s.b, pick % 4),
            (s) => s.k.nodeMerge(s.b, s.a),
            (s) => s.k.nodeMerge(s.a, s.b),
            ...BAD_CALLS.map((c) => (s: Side) => c(s, pick)),
          ];
          const call = calls[which % calls.length]!;
          const [on, of] = sides.map((s) => outcome(() => call(s)));
          expect(on).toEqual(of);
          expectSameBytes(sides[0].a, sides[1].a, `corrupt ${field}, page`);
          expectSameBytes(sides[0].b, sides[1].b, `corrupt ${field}, second page`);
        },
      ),
      { seed, numRuns: 3000 },
    );
  });

  it('random bytes as node pages: every kernel only returns or throws TypeError/RangeError, like the fallback', () => {
    const native = nativeOrFail();
    fc.assert(
      fc.property(
        fc.constantFrom(4096, 8192, 16384),
        fc.nat(0x7fffffff),
        fc.constantFrom(PageType.Leaf, PageType.Branch, 0, 1, 255),
        fc.nat(300),
        fc.nat(),
        fc.nat(14),
        (size, fill, type, count, cellStart, which) => {
          // Random bytes, with a header that passes the node check often enough to reach the cells.
          const f = new Uint8Array(size);
          let x = fill | 1;
          for (let i = 0; i < size; i++) {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            f[i] = x & 0xff;
          }
          f[TYPE_OFFSET] = type;
          writeU16(f, NODE_COUNT_OFFSET, count);
          writeU32(f, NODE_CELL_START_OFFSET, NODE_SLOTS_OFFSET + 2 * count + (cellStart % size));
          const n = copyOf(f, fill % 8);
          const key = f.slice(1000, 1000 + (fill % 40));
          const calls: ((k: Kernels, p: Uint8Array, q: Uint8Array) => unknown)[] = [
            (k, p) => k.leafSearch(p, key),
            (k, p) => k.branchSearch(p, key),
            (k, p) => k.nodeCompact(p),
            (k, p) => k.nodeRemove(p, fill % 5),
            (k, p) => k.nodeDecode(p, new Uint32Array(4 * 400)),
            (k, p) => k.leafInsert(p, 0, key, key, key.length),
            (k, p) => k.branchInsert(p, 0, key, 3, 4),
            (k, p, q) => k.nodeSplit(p, q, fill % 3),
            (k, p, q) => k.nodeMerge(q, p),
            (k, p, q) => k.nodeMerge(p, q),
            (k, p) => k.pageSeal(p),
            (k, p) => k.pageVerify(p, 0),
            (k, p) => k.crc32c(p, fill),
            (k, p) => k.nodeRemove(p, 0),
            (k, p) => k.leafInsert(p, count, key, key, key.length),
          ];
          const call = calls[which % calls.length]!;
          const qType = type === PageType.Branch ? PageType.Branch : PageType.Leaf;
          const qn = emptyNode(qType, size);
          const qf = emptyNode(qType, size);
          expect(outcome(() => call(native, n, qn))).toEqual(outcome(() => call(fallbackKernels, f, qf)));
          expectSameBytes(n, f, 'random page');
          expectSameBytes(qn, qf, 'second page');
        },
      ),
      { seed, numRuns: 5000 },
    );
  });
});
