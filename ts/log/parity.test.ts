// Differential test of the native commit-log record kernels
// (crates/northstar-native/src/kernels/log.rs) against their TypeScript twins
// (ts/native/fallback_log.ts), spec/commit_record_v0.md §4–§5. It lives with
// the log, not with the kernels, because it builds its records with the
// log's RecordBuilder (ts/native/ imports nothing from ts/log/). On valid
// records (commits with and without a pages section), records damaged and
// then resealed (so the damage reaches the structure checks, pages sections
// included), random garbage, unaligned views and wrong argument types, both must return the same values, throw the same error class
// (TypeError vs RangeError) and leave every byte the same.
//
// The seed is printed; replay a failure with NORTHSTAR_SEED=<seed>.
// Skipped when the addon is not loaded (the `fallback` project, or no build),
// unless NORTHSTAR_REQUIRE_NATIVE=1 (and NORTHSTAR_NATIVE is not 0): then it fails.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { readU32, writeU16, writeU32 } from '../format/bytes.js';
import {
  COMMIT_OP_COUNT_OFFSET,
  MAX_PAYLOAD_CEILING,
  PAGES_ENTRY_COUNT_OFFSET,
  PAGES_FREED_COUNT_OFFSET,
  PAGES_FREED_YOUNG_COUNT_OFFSET,
  PAGES_MAGIC_OFFSET,
  PAGES_PAGE_COUNT_OFFSET,
  PAGES_RESERVED_OFFSET,
  PAGES_TAIL_SIZE,
  PAGES_WRITTEN_COUNT_OFFSET,
  RECORD_FLAGS_OFFSET,
  RECORD_HEADER_SIZE,
  RECORD_HEADER_LENGTH_OFFSET,
  RECORD_MAGIC,
  RECORD_PAYLOAD_LENGTH_OFFSET,
  RECORD_TYPE_OFFSET,
  RecordStatus,
  TRAILER_SIZE,
  RecordType,
  recordStatusName,
} from '../format/record.js';
import type { PagesSection } from './pages.js';
import { RecordBuilder, buildCheckpointRecord } from './record.js';
import { type Kernels, fallbackKernels } from '../native/kernels.js';
import { nativeOrFail, outcome, skipParity } from '../testing/parity.js';

const skip = skipParity;

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
if (!skip) console.log(`log/parity.test.ts: NORTHSTAR_SEED=${seed}`);


function expectSameBytes(n: Uint8Array, f: Uint8Array, what: string): void {
  if (n.length === f.length && Buffer.from(n.buffer, n.byteOffset, n.length).equals(Buffer.from(f.buffer, f.byteOffset, f.length))) return;
  let i = 0;
  while (i < n.length && n[i] === f[i]) i++;
  expect.fail(`${what}: native and fallback differ first at byte ${i} (native ${n[i]}, fallback ${f[i]}; lengths ${n.length}/${f.length})`);
}

/** A copy of `b` at `shift` (0..7) bytes into a larger ArrayBuffer: unaligned pointers. */
function placed(b: Uint8Array, shift: number): Uint8Array {
  const v = new Uint8Array(new ArrayBuffer(b.length + 8), shift, b.length);
  v.set(b);
  return v;
}

/**
 * Calls all three kernels on a native copy and a fallback copy of `buf` at
 * `offset` and asserts the same outcomes, the same decoded ops and the same
 * bytes after recordSeal.
 */
function compareAll(native: Kernels, buf: Uint8Array, offset: number, shift: number, outLength: number): void {
  const n = placed(buf, shift);
  const f = placed(buf, (shift + 3) & 7);
  const verified = outcome(() => native.recordVerify(n, offset));
  expect(verified, 'recordVerify').toEqual(outcome(() => fallbackKernels.recordVerify(f, offset)));
  if (verified.ok) seen.add((verified.value as number) > 0 ? 'valid' : recordStatusName(verified.value as number));
  const on = new Uint32Array(outLength).fill(0xdeadbeef);
  const of = new Uint32Array(outLength).fill(0xdeadbeef);
  expect(outcome(() => native.recordDecode(n, offset, on)), 'recordDecode').toEqual(outcome(() => fallbackKernels.recordDecode(f, offset, of)));
  expect([...on], 'recordDecode out').toEqual([...of]);
  expect(outcome(() => native.recordSeal(n, offset)), 'recordSeal').toEqual(outcome(() => fallbackKernels.recordSeal(f, offset)));
  expectSameBytes(n, f, 'after recordSeal');
  expect(outcome(() => native.recordVerify(n, offset)), 'recordVerify after recordSeal').toEqual(outcome(() => fallbackKernels.recordVerify(f, offset)));
}

/** recordVerify results seen so far, by status name: the generators must reach every one. */
const seen = new Set<string>();

// ---- generators --------------------------------------------------------------------------

interface Txn {
  txnId: number;
  prev: number;
  root: number;
  ops: { del: boolean; key: Uint8Array; value: Uint8Array }[];
  pages: PagesSection;
}

const pageIdArb = fc.oneof({ weight: 4, arbitrary: fc.nat(1 << 20) }, { weight: 1, arbitrary: fc.maxSafeNat() });
const pageIdsArb = fc.array(pageIdArb, { maxLength: 6 });

const txnArb: fc.Arbitrary<Txn> = fc.record({
  txnId: fc.oneof(fc.nat(1000), fc.maxSafeNat()),
  prev: fc.oneof(fc.nat(1 << 20), fc.maxSafeNat()),
  root: fc.nat(1 << 20),
  ops: fc.array(
    fc.record({
      del: fc.boolean(),
      key: fc.oneof({ weight: 5, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 24 }) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4096 }) }),
      value: fc.oneof({ weight: 5, arbitrary: fc.uint8Array({ maxLength: 64 }) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 5000 }) }),
    }),
    { maxLength: 12 },
  ),
  pages: fc.record({
    pageCount: pageIdArb,
    entryCount: pageIdArb,
    depth: fc.oneof(fc.nat(64), fc.constant(0xffffffff)),
    written: pageIdsArb,
    freed: pageIdsArb,
    freedYoung: pageIdsArb,
  }),
});

const builder = new RecordBuilder({ initialCapacity: 1024 });

/**
 * A record of some kind, built and sealed with the fallback kernels (a copy):
 * 0 commit, 1 checkpoint, 3 commit with a pages section (2 is no record type, spec §3.4).
 */
function record(kind: number, t: Txn): Uint8Array {
  if (kind === 1) return buildCheckpointRecord({ txnId: t.txnId, rootPageId: t.root, pageCount: t.root + 1, replayFrom: t.prev }, t.prev, fallbackKernels);
  builder.reset(t.txnId);
  for (const op of t.ops) {
    if (op.del) builder.del(op.key);
    else builder.put(op.key, op.value);
  }
  return builder.seal(t.prev, t.root, fallbackKernels, 0, kind === 3 ? t.pages : null).slice();
}

/**
 * u32 fields of a pages section (or wherever the last 52 bytes of a record
 * put them) that a 'section' damage sets or moves, as [tail offset, what];
 * offset -8 is the high word of an id, -1 the payload's op count.
 */
const SECTION_FIELDS: readonly [number, string][] = [
  [PAGES_MAGIC_OFFSET, 'magic'],
  [PAGES_RESERVED_OFFSET, 'reserved'],
  [PAGES_PAGE_COUNT_OFFSET + 4, 'page count, high word'],
  [PAGES_ENTRY_COUNT_OFFSET + 4, 'entry count, high word'],
  [PAGES_WRITTEN_COUNT_OFFSET, 'written'],
  [PAGES_FREED_COUNT_OFFSET, 'freed'],
  [PAGES_FREED_YOUNG_COUNT_OFFSET, 'freedYoung'],
  [-8, 'an id, high word'],
  [-1, 'op count (ops overlapping the section)'],
];

/** Where a 'section' damage writes in `b`, or -1 when the record is too short. */
function sectionField(b: Uint8Array, which: number, id: number): number {
  const t = b.length - TRAILER_SIZE - PAGES_TAIL_SIZE;
  if (t < RECORD_HEADER_SIZE) return -1;
  const f = SECTION_FIELDS[which]![0];
  if (f === -1) return RECORD_HEADER_SIZE + COMMIT_OP_COUNT_OFFSET;
  if (f >= 0) return t + f;
  // The high word of one of the ids before the tail (if the record has any room for them).
  const room = Math.floor((t - RECORD_HEADER_SIZE) / 8);
  return room === 0 ? -1 : t - 8 * (1 + (id % room)) + 4;
}

type Damage =
  | { t: 'none' }
  | { t: 'flip'; pos: number; bit: number; reseal: boolean }
  | { t: 'byte'; pos: number; value: number; reseal: boolean }
  | { t: 'truncate'; keep: number }
  | { t: 'field'; which: number; value: number }
  | { t: 'section'; which: number; value: number; add: boolean; id: number };

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ t: fc.constant('none' as const) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('flip' as const), pos: fc.nat(), bit: fc.nat(7), reseal: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('byte' as const), pos: fc.nat(), value: fc.nat(255), reseal: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('truncate' as const), keep: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('field' as const), which: fc.nat(3), value: fc.oneof(fc.nat(8), fc.nat(0xffff), fc.constant(0xffffffff)) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('section' as const),
      which: fc.nat(SECTION_FIELDS.length - 1),
      value: fc.oneof(fc.nat(3), fc.constant(0x1fffff), fc.constant(0x200000), fc.constant(0xffffffff), fc.nat()),
      add: fc.boolean(),
      id: fc.nat(),
    }),
  },
);

/**
 * Applies a damage; `reseal` (and every header-field rewrite) reseals with
 * the fallback, so the damage passes the checksums and reaches the checks
 * behind them.
 */
function damaged(r: Uint8Array, d: Damage): Uint8Array {
  const b = r.slice();
  switch (d.t) {
    case 'none':
      return b;
    case 'flip':
    case 'byte': {
      // Resealing rewrites bytes 32..40 and the trailer, so aim those damages at the rest.
      const span = d.reseal ? b.length - 12 : b.length;
      let at = d.pos % span;
      if (d.reseal && at >= 32 && at < 40) at -= 8;
      if (d.t === 'flip') b[at]! ^= 1 << d.bit;
      else b[at] = d.value;
      if (d.reseal) reseal(b);
      return b;
    }
    case 'truncate':
      return b.subarray(0, d.keep % b.length);
    case 'field': {
      // Version (4), type (6), header length (8), flags (10): u16 fields.
      writeU16(b, 4 + 2 * d.which, d.value);
      reseal(b);
      return b;
    }
    case 'section': {
      const at = sectionField(b, d.which, d.id);
      if (at >= 0) writeU32(b, at, d.add ? (readU32(b, at) + d.value) >>> 0 : d.value);
      reseal(b);
      return b;
    }
  }
}

/** Reseals with the fallback when the header still gives a length that fits. */
function reseal(b: Uint8Array): void {
  try {
    fallbackKernels.recordSeal(b, 0);
  } catch {
    // A length the flip made too large: leave the bytes as they are.
  }
}

describe.skipIf(skip)('native and fallback record kernels are identical', () => {
  it('valid and damaged commit and checkpoint records, at offsets in unaligned views', () => {
    const native = nativeOrFail();
    fc.assert(
      fc.property(
        fc.constantFrom(0, 0, 0, 1, 1, 3, 3, 3),
        txnArb,
        damageArb,
        fc.nat(16),
        fc.nat(7),
        fc.nat(64),
        fc.nat(16),
        (kind, t, d, lead, shift, outExtra, tail) => {
          const r = damaged(record(kind, t), d);
          const buf = new Uint8Array(lead + r.length + tail);
          buf.set(r, lead);
          for (let i = lead + r.length; i < buf.length; i++) buf[i] = (i * 131) & 0xff;
          compareAll(native, buf, lead, shift, Math.max(0, 4 * t.ops.length + outExtra - 8));
        },
      ),
      { seed, numRuns: 1500 },
    );
    expect([...seen].sort()).toEqual(['valid', ...Object.keys(RecordStatus)].sort());
  });

  it('pages sections damaged field by field, resealed: the same verdict on both, BadPayload or valid', () => {
    const native = nativeOrFail();
    const verdicts = new Set<string>();
    fc.assert(
      fc.property(txnArb, fc.nat(SECTION_FIELDS.length - 1), fc.oneof(fc.nat(3), fc.constant(0x200000), fc.constant(0xffffffff), fc.nat()), fc.boolean(), fc.nat(), fc.nat(7), (t, which, value, add, id, shift) => {
        const b = damaged(record(3, t), { t: 'section', which, value, add, id });
        compareAll(native, b, 0, shift, 4 * t.ops.length + 8);
        const v = fallbackKernels.recordVerify(b, 0);
        expect(v === b.length || v === RecordStatus.BadPayload, `${SECTION_FIELDS[which]![1]}: ${recordStatusName(v)}`).toBe(true);
        verdicts.add(`${SECTION_FIELDS[which]![1]}: ${v > 0 ? 'valid' : recordStatusName(v)}`);
      }),
      { seed, numRuns: 1500 },
    );
    for (const [, what] of SECTION_FIELDS) expect(verdicts, what).toContain(`${what}: BadPayload`);
  });

  it('the pages flag, alone and beside other bits, on every record type', () => {
    const native = nativeOrFail();
    const t: Txn = { txnId: 3, prev: 0, root: 1, ops: [], pages: { pageCount: 4, entryCount: 0, depth: 0, written: [], freed: [], freedYoung: [] } };
    for (const kind of [0, 1, 3]) {
      for (const flags of [0, 1, 2, 3, 4, 0x8002]) {
        const b = record(kind, t);
        writeU16(b, RECORD_FLAGS_OFFSET, flags);
        reseal(b);
        compareAll(native, b, 0, flags & 7, 8);
      }
    }
  });

  it('random garbage, with a planted magic, header length and small payload length, sealed or not', () => {
    const native = nativeOrFail();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 400 }),
        fc.record({ magic: fc.boolean(), fields: fc.boolean(), seal: fc.boolean(), type: fc.nat(3), payload: fc.nat(400) }),
        fc.nat(),
        fc.nat(7),
        fc.nat(40),
        (bytes, plant, offsetPick, shift, outLength) => {
          const b = bytes.slice();
          if (plant.magic && b.length >= 4) writeU32(b, 0, RECORD_MAGIC);
          if (plant.fields && b.length >= 40) {
            b.fill(0, 4, 12); // version 0, type 0, header length, flags 0
            writeU16(b, RECORD_TYPE_OFFSET, plant.type);
            writeU16(b, RECORD_HEADER_LENGTH_OFFSET, 40);
            b.fill(0, 18, 20); // txn id and prevPosition stay below 2^53
            b.fill(0, 26, 28);
            writeU32(b, RECORD_PAYLOAD_LENGTH_OFFSET, plant.payload % Math.max(1, b.length - 51));
            if (plant.seal) reseal(b);
          }
          // Offsets in range mostly at 0, sometimes anywhere, sometimes past the end.
          const offset = offsetPick % 4 === 0 ? offsetPick % (b.length + 3) : 0;
          compareAll(native, b, offset, shift, outLength);
        },
      ),
      { seed, numRuns: 3000 },
    );
  });

  it('seal of headers with any payload length, up to and past the ceiling and the buffer', () => {
    const native = nativeOrFail();
    for (const length of [0, 1, 38, 100, 4096, MAX_PAYLOAD_CEILING, MAX_PAYLOAD_CEILING + 1, 0xffffffff]) {
      for (const size of [39, 40, 52, 53, 200, 5000]) {
        const b = new Uint8Array(size).map((_, i) => i * 7);
        if (size >= 40) writeU32(b, RECORD_PAYLOAD_LENGTH_OFFSET, length);
        compareAll(native, b, 0, size & 7, 16);
      }
    }
  });

  it('a large commit record (1 MiB of values): same bytes, same decode', () => {
    const native = nativeOrFail();
    const big = new RecordBuilder();
    big.reset(99);
    for (let i = 0; i < 64; i++) big.put(new Uint8Array([i, i + 1]), new Uint8Array(16384).fill(i));
    const r = big.seal(1234, 5, fallbackKernels).slice();
    compareAll(native, r, 0, 5, 4 * 64);
    expect(native.recordVerify(r, 0)).toBe(r.length);
  });

  it('wrong argument types and values throw the same class on both', () => {
    const native = nativeOrFail();
    const r = record(RecordType.Commit, { txnId: 1, prev: 0, root: 0, ops: [{ del: false, key: new Uint8Array([1]), value: new Uint8Array([2]) }] });
    const shared = new Uint8Array(512);
    shared.set(r);
    const calls: ((k: Kernels) => unknown)[] = [
      (k) => k.recordVerify('x' as unknown as Uint8Array, 0),
      (k) => k.recordVerify(new Uint16Array(64) as unknown as Uint8Array, 0),
      (k) => k.recordVerify(new DataView(r.buffer) as unknown as Uint8Array, 0),
      (k) => k.recordVerify(Buffer.from(r), 0),
      (k) => k.recordVerify(r, '0' as unknown as number),
      (k) => k.recordVerify(r, 0n as unknown as number),
      (k) => k.recordVerify(r, undefined as unknown as number),
      (k) => k.recordVerify(r, -1),
      (k) => k.recordVerify(r, 0.5),
      (k) => k.recordVerify(r, Number.NaN),
      (k) => k.recordVerify(r, Number.POSITIVE_INFINITY),
      (k) => k.recordVerify(r, r.length),
      (k) => k.recordVerify(r, r.length + 1),
      (k) => k.recordVerify(r, 2 ** 53),
      (k) => k.recordSeal(null as unknown as Uint8Array, 0),
      (k) => k.recordSeal(r.slice(), -0),
      (k) => k.recordSeal(r.slice(), 1e300),
      (k) => k.recordSeal(new Uint8Array(0), 0),
      (k) => k.recordDecode(r, 0, [0, 0, 0, 0] as unknown as Uint32Array),
      (k) => k.recordDecode(r, 0, new Int32Array(8) as unknown as Uint32Array),
      (k) => k.recordDecode(r, 0, undefined as unknown as Uint32Array),
      (k) => k.recordDecode(r, 0, new Uint32Array(3)),
      (k) => k.recordDecode(r, 0, new Uint32Array(0)),
      (k) => k.recordDecode(r, 0, new Uint32Array(4)),
      (k) => k.recordDecode(r, -1, new Uint32Array(4)),
      (k) => k.recordDecode(r, 'x' as unknown as number, new Uint32Array(4)),
      (k) => k.recordDecode(shared, 0, new Uint32Array(shared.buffer, 256, 8)),
      (k) => k.recordDecode(shared, 0, new Uint32Array(shared.buffer, 0, 8)),
      (k) => k.recordDecode(shared.subarray(0, 200), 0, new Uint32Array(shared.buffer, 200, 8)),
      (k) => k.recordDecode(r, 0, new Uint32Array(new ArrayBuffer(64), 4, 4)),
    ];
    calls.forEach((call, i) => {
      const on = outcome(() => call(native));
      const of = outcome(() => call(fallbackKernels));
      expect(on, `call ${i}`).toEqual(of);
    });
  });
});
