// Differential test of the native cartridge entry-order kernel
// (crates/northstar-native/src/kernels/cartridge.rs) against its TypeScript
// twin (ts/native/fallback_cartridge.ts), spec/cartridge_v1.md §3 check 5: on
// random entry tables (sorted, with injected disorder, equal entries, nonzero
// reserved words, u64 fields past 2^53, at aligned and unaligned offsets,
// whole or in part) both must return the same value, which must also be a
// plain BigInt model's; on bad arguments both must throw the same class with
// the same message.
//
// The seed is printed; replay a failure with NORTHSTAR_SEED=<seed>.
// Skipped when the addon is not loaded (the `fallback` project, or no build),
// unless NORTHSTAR_REQUIRE_NATIVE=1 (and NORTHSTAR_NATIVE is not 0): then it fails.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { ENTRY_SIZE } from './fallback_cartridge.js';
import { type Kernels, fallbackKernels } from './kernels.js';
import { nativeOrFail, skipParity } from '../testing/parity.js';

const skip = skipParity;

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
if (!skip) console.log(`parity_cartridge.test.ts: NORTHSTAR_SEED=${seed}`);

/** A call's result, or the class and message of what it threw (TypeError or RangeError only). */
type Result = { ok: true; value: unknown } | { ok: false; error: string; message: string };

function result(call: () => unknown): Result {
  try {
    return { ok: true, value: call() };
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) return { ok: false, error: e.constructor.name, message: e.message };
    throw new Error(`kernel threw something other than TypeError/RangeError: ${String(e)}`);
  }
}

interface Entry {
  rank: number;
  reserved: number;
  readyAt: bigint;
  id: bigint;
}

const compare = (a: Entry, b: Entry): number =>
  a.rank !== b.rank ? a.rank - b.rank : a.readyAt !== b.readyAt ? (a.readyAt < b.readyAt ? -1 : 1) : a.id !== b.id ? (a.id < b.id ? -1 : 1) : 0;

/** The kernel's contract, read straight off the spec with BigInts: the reference both must match. */
function model(entries: readonly Entry[]): number {
  for (let i = 0; i < entries.length; i++) {
    if (entries[i]!.reserved !== 0) return -(i + 1);
    if (i > 0 && compare(entries[i - 1]!, entries[i]!) >= 0) return i;
  }
  return 0;
}

/** `entries` at byte `at` of a view `shift` bytes into its own buffer, with `tail` bytes after; the rest is 0xA5. */
function place(entries: readonly Entry[], at: number, shift: number, tail: number): Uint8Array {
  const length = at + entries.length * ENTRY_SIZE + tail;
  const b = new Uint8Array(new ArrayBuffer(shift + length), shift, length).fill(0xa5);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  entries.forEach((e, i) => {
    const o = at + i * ENTRY_SIZE;
    v.setUint32(o, e.rank, true);
    v.setUint32(o + 4, e.reserved, true);
    v.setBigUint64(o + 8, e.readyAt, true);
    v.setBigUint64(o + 16, e.id, true);
  });
  return b;
}

// Few distinct values, so that ties (and equal entries) are common, plus the
// edges of each word: the top bit, the 2^32 boundary of a u64, 2^53, 2^64 − 1.
const rankArb = fc.oneof({ weight: 4, arbitrary: fc.nat(3) }, { weight: 1, arbitrary: fc.constantFrom(0x7fffffff, 0x80000000, 0xffffffff) }, { weight: 1, arbitrary: fc.nat(0xffffffff) });
const u64Arb = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: 0n, max: 3n }) },
  { weight: 1, arbitrary: fc.constantFrom(0xffffffffn, 1n << 32n, (1n << 32n) + 1n, 2n ** 53n - 1n, 2n ** 53n, 1n << 63n, 2n ** 64n - 1n) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) },
);
const entryArb: fc.Arbitrary<Entry> = fc.record({ rank: rankArb, reserved: fc.constant(0), readyAt: u64Arb, id: u64Arb });

type Damage =
  | { t: 'none' }
  | { t: 'swap'; pick: number }
  | { t: 'duplicate'; pick: number }
  | { t: 'reserved'; pick: number; value: number }
  | { t: 'overwrite'; pick: number; entry: Entry };

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('none' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('swap' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('duplicate' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('reserved' as const), pick: fc.nat(), value: fc.oneof(fc.constantFrom(1, 0x80000000, 0xffffffff), fc.integer({ min: 1, max: 0xffffffff })) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('overwrite' as const), pick: fc.nat(), entry: entryArb }) },
);

/** The entries with each damage applied in turn (to copies). */
function damaged(sorted: readonly Entry[], damages: readonly Damage[]): Entry[] {
  const out = sorted.map((e) => ({ ...e }));
  for (const d of damages) {
    if (d.t === 'none' || out.length === 0) continue;
    const i = d.pick % out.length;
    if (d.t === 'swap' && i + 1 < out.length) [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
    if (d.t === 'duplicate' && i + 1 < out.length) out[i + 1] = { ...out[i]! };
    if (d.t === 'reserved') out[i]!.reserved = d.value;
    if (d.t === 'overwrite') out[i] = { ...d.entry };
  }
  return out;
}

describe.skipIf(skip)('native and fallback cartridgeDisorder are identical', () => {
  it('random entry tables: sorted, disordered, equal entries, nonzero reserved words, any alignment, whole or in part', () => {
    const native = nativeOrFail();
    fc.assert(
      fc.property(
        fc.array(entryArb, { maxLength: 60 }),
        fc.boolean(),
        fc.array(damageArb, { maxLength: 3 }),
        fc.nat(13),
        fc.tuple(fc.nat(7), fc.nat(7)),
        fc.nat(30),
        fc.nat(),
        fc.nat(),
        (raw, dedupe, damages, at, [nShift, fShift], tail, from, upTo) => {
          const sorted = [...raw].sort(compare).filter((e, i, all) => !dedupe || i === 0 || compare(all[i - 1]!, e) !== 0);
          const entries = damaged(sorted, damages);
          // The whole table, or the entries [start, start + count) of it.
          const whole = from % 3 === 0;
          const start = whole || entries.length === 0 ? 0 : from % entries.length;
          const count = whole ? entries.length : upTo % (entries.length - start + 1);
          const offset = at + start * ENTRY_SIZE;
          const n = place(entries, at, nShift, tail);
          const f = place(entries, at, fShift, tail);
          const want = model(entries.slice(start, start + count));
          expect(result(() => native.cartridgeDisorder(n, offset, count)), 'native').toEqual({ ok: true, value: want });
          expect(result(() => fallbackKernels.cartridgeDisorder(f, offset, count)), 'fallback').toEqual({ ok: true, value: want });
          // One entry too many reaches past the tail only when the tail is short.
          const over = (k: Kernels, b: Uint8Array): Result => result(() => k.cartridgeDisorder(b, offset, count + 1));
          expect(over(native, n)).toEqual(over(fallbackKernels, f));
        },
      ),
      { seed, numRuns: 3000 },
    );
  });

  it('large tables, and Buffers from the pool (any byteOffset)', () => {
    const native = nativeOrFail();
    const n = 100_000;
    const sorted: Entry[] = Array.from({ length: n }, (_, i) => ({ rank: i >>> 10, reserved: 0, readyAt: BigInt(i % 1024) << 31n, id: BigInt(i) }));
    for (const [what, entries] of [
      ['sorted', sorted],
      ['last equal', damaged(sorted, [{ t: 'duplicate', pick: n - 2 }])],
      ['last reserved', damaged(sorted, [{ t: 'reserved', pick: n - 1, value: 1 }])],
    ] as const) {
      for (const shift of [0, 1, 4, 6]) {
        const b = place(entries, 0, shift, 0);
        const want = model(entries);
        expect(native.cartridgeDisorder(b, 0, n), `${what}, shift ${shift}`).toBe(want);
        expect(fallbackKernels.cartridgeDisorder(b, 0, n), `${what}, shift ${shift}`).toBe(want);
      }
    }
    for (let size = 1; size <= 5; size++) {
      const entries = sorted.slice(0, size);
      const pooled = Buffer.from(place(entries, 0, 0, 0)); // small Buffers share the pool at any offset
      expect(native.cartridgeDisorder(pooled, 0, size)).toBe(0);
      expect(fallbackKernels.cartridgeDisorder(pooled, 0, size)).toBe(0);
    }
  });

  it('bad arguments: the same class and message on both, arguments checked in order', () => {
    const native = nativeOrFail();
    const b = place([{ rank: 1, reserved: 0, readyAt: 0n, id: 0n }], 0, 0, 0);
    const bads: unknown[] = ['x', null, undefined, 0, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, 2 ** 53 - 1, 1n, {}, [0], new Uint16Array(12)];
    const bytesArgs: unknown[] = [
      b,
      'x',
      null,
      undefined,
      [1, 2, 3],
      new Uint16Array(12),
      new Uint8ClampedArray(24),
      new Int8Array(24),
      new DataView(b.buffer),
      b.buffer,
      Buffer.from(b),
      new Uint8Array(0),
    ];
    const check = (bytes: unknown, at: unknown, count: unknown): void => {
      const call = (k: Kernels) => () => k.cartridgeDisorder(bytes as Uint8Array, at as number, count as number);
      expect(result(call(native)), fc.stringify([bytes, at, count])).toEqual(result(call(fallbackKernels)));
    };
    for (const bytes of bytesArgs) {
      for (const at of [0, 1, 24, ...bads]) {
        for (const count of [0, 1, 2, ...bads]) check(bytes, at, count);
      }
    }
    check(b, -0, -0);
    fc.assert(
      fc.property(fc.constantFrom(...bytesArgs), fc.oneof(fc.anything(), fc.double(), fc.integer()), fc.oneof(fc.anything(), fc.double(), fc.integer()), check),
      { seed, numRuns: 2000 },
    );
  });
});
