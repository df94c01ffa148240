// The transactions' argument checks (ts/txn/args.ts, spec §7): keys, values and
// scan options are bytes or UTF-8 strings; anything else, an empty key, a key
// or value over its limit, or a bad limit throws InvalidArgument; the scan
// options fold into one range whose bounds are the caller's bytes copied.
// The property test prints its seed: NORTHSTAR_SEED=<seed> replays it.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { ScanRange } from '../btree/cursor.js';
import { compareBytes } from '../format/bytes.js';
import { MAX_VALUE_SIZE } from '../format/constants.js';
import { expectCode } from '../testing/fixtures.js';
import { toBytes, toKey, toRange, toValue, type ScanOptions } from './args.js';

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
console.log(`txn/args.test.ts: NORTHSTAR_SEED=${seed}`);

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const notBytes: unknown[] = [undefined, null, 0, 1n, true, {}, [1, 2], new Uint16Array(2), new ArrayBuffer(2), new DataView(new ArrayBuffer(2)), Symbol('k')];

describe('toBytes', () => {
  it('takes a Uint8Array (a Buffer too) as it is and a string as its UTF-8 bytes', () => {
    const u = bytes(1, 2, 3);
    expect(toBytes(u, 'key')).toBe(u);
    const b = Buffer.from('xy');
    expect(toBytes(b, 'key')).toBe(b);
    expect([...toBytes('é€', 'key')]).toEqual([0xc3, 0xa9, 0xe2, 0x82, 0xac]);
    expect(toBytes('', 'value').length).toBe(0);
  });

  it('refuses anything else with InvalidArgument naming the argument and the type it got', () => {
    for (const v of notBytes) {
      const e = expectCode(() => toBytes(v, 'gte'), 'InvalidArgument');
      expect(e.message).toMatch(/^gte must be a Uint8Array or a string, got /);
    }
    expect(expectCode(() => toBytes(null, 'key'), 'InvalidArgument').message).toMatch(/got null$/);
    expect(expectCode(() => toBytes(7, 'key'), 'InvalidArgument').message).toMatch(/got number$/);
  });
});

describe('toKey', () => {
  it('accepts 1 to maxKey bytes, counting a string in UTF-8 bytes, not characters', () => {
    expect([...toKey(bytes(0), 10)]).toEqual([0]);
    expect(toKey('a'.repeat(10), 10).length).toBe(10);
    expect(toKey(Buffer.alloc(10, 0xff), 10).length).toBe(10);
    // 4 characters, 12 bytes.
    expect(expectCode(() => toKey('€€€€', 10), 'InvalidArgument').message).toMatch(/key of 12 bytes exceeds the limit of 10 bytes/);
  });

  it('refuses an empty key, a key over the limit and a key of another type with InvalidArgument', () => {
    expect(expectCode(() => toKey('', 10), 'InvalidArgument').message).toMatch(/must not be empty/);
    expect(expectCode(() => toKey(new Uint8Array(0), 10), 'InvalidArgument').message).toMatch(/must not be empty/);
    expectCode(() => toKey('a'.repeat(11), 10), 'InvalidArgument');
    expectCode(() => toKey(new Uint8Array(11), 10), 'InvalidArgument');
    for (const v of notBytes) expect(expectCode(() => toKey(v, 10), 'InvalidArgument').message).toMatch(/^key must be/);
  });
});

describe('toValue', () => {
  it('accepts 0 to MAX_VALUE_SIZE bytes', () => {
    expect(toValue('').length).toBe(0);
    expect(toValue(new Uint8Array(0)).length).toBe(0);
    const max = Buffer.allocUnsafe(MAX_VALUE_SIZE);
    expect(toValue(max)).toBe(max);
  });

  it('refuses a value of MAX_VALUE_SIZE + 1 bytes, or of another type, with InvalidArgument', () => {
    const over = Buffer.allocUnsafe(MAX_VALUE_SIZE + 1);
    expect(expectCode(() => toValue(over), 'InvalidArgument').message).toMatch(new RegExp(`value of ${MAX_VALUE_SIZE + 1} bytes exceeds the limit of ${MAX_VALUE_SIZE} bytes`));
    for (const v of notBytes) expect(expectCode(() => toValue(v), 'InvalidArgument').message).toMatch(/^value must be/);
  });
});

/** Whether key lies in r, read as the cursor reads it. */
function inRange(r: ScanRange, key: Uint8Array): boolean {
  if (r.lower !== undefined) {
    const c = compareBytes(key, 0, key.length, r.lower);
    if (c < 0 || (c === 0 && !r.lowerInclusive)) return false;
  }
  if (r.upper !== undefined) {
    const c = compareBytes(key, 0, key.length, r.upper);
    if (c > 0 || (c === 0 && !r.upperInclusive)) return false;
  }
  return true;
}

/** Whether key satisfies every option by itself: what the folded range must mean. */
function matchesEach(o: ScanOptions, key: Uint8Array): boolean {
  const b = (v: unknown): Buffer => Buffer.from(toBytes(v, 'bound'));
  const k = Buffer.from(key);
  if (o.gte !== undefined && Buffer.compare(k, b(o.gte)) < 0) return false;
  if (o.gt !== undefined && Buffer.compare(k, b(o.gt)) <= 0) return false;
  if (o.lte !== undefined && Buffer.compare(k, b(o.lte)) > 0) return false;
  if (o.lt !== undefined && Buffer.compare(k, b(o.lt)) >= 0) return false;
  if (o.prefix !== undefined && !k.subarray(0, b(o.prefix).length).equals(b(o.prefix))) return false;
  return true;
}

describe('toRange', () => {
  it('no options: the whole key space, forward, no limit', () => {
    const whole: ScanRange = { lower: undefined, lowerInclusive: true, upper: undefined, upperInclusive: false, reverse: false, limit: Infinity };
    expect(toRange(undefined)).toEqual(whole);
    expect(toRange({})).toEqual(whole);
  });

  it('folds several bounds into the tightest: on equal keys the exclusive one wins', () => {
    const r = toRange({ gte: 'b', gt: 'a', lte: 'y', lt: 'z' });
    expect(Buffer.from(r.lower!).toString()).toBe('b');
    expect(r.lowerInclusive).toBe(true);
    expect(Buffer.from(r.upper!).toString()).toBe('y');
    expect(r.upperInclusive).toBe(true);
    const e = toRange({ gte: 'm', gt: 'm', lte: 'q', lt: 'q' });
    expect(e.lowerInclusive).toBe(false);
    expect(e.upperInclusive).toBe(false);
  });

  it('a prefix is [prefix, prefixEnd): trailing 0xff bytes carry, all 0xff has no upper bound, an empty prefix is no bound', () => {
    const r = toRange({ prefix: bytes(0x61, 0xff, 0xff) });
    expect([...r.lower!]).toEqual([0x61, 0xff, 0xff]);
    expect(r.lowerInclusive).toBe(true);
    expect([...r.upper!]).toEqual([0x62]);
    expect(r.upperInclusive).toBe(false);
    expect(toRange({ prefix: bytes(0xff, 0xff) }).upper).toBeUndefined();
    expect(toRange({ prefix: '' })).toEqual(toRange({}));
    // With other bounds: still the tightest of all.
    const both = toRange({ prefix: 'ab', gt: 'abc', lte: 'zz' });
    expect(Buffer.from(both.lower!).toString()).toBe('abc');
    expect(both.lowerInclusive).toBe(false);
    expect(Buffer.from(both.upper!).toString()).toBe('ac');
  });

  it('contradictory bounds are kept as they are (an empty range), not refused', () => {
    const r = toRange({ gte: 'b', lt: 'a' });
    for (const k of ['a', 'ab', 'b', 'c']) expect(inRange(r, Buffer.from(k))).toBe(false);
  });

  it('copies every bound: changing the caller’s bytes afterwards does not move the range', () => {
    const lo = bytes(1, 2);
    const hi = bytes(9);
    const p = bytes(1);
    const r = toRange({ gt: lo, lte: hi });
    const q = toRange({ prefix: p });
    lo[0] = 5;
    hi[0] = 0;
    p[0] = 7;
    expect([...r.lower!]).toEqual([1, 2]);
    expect([...r.upper!]).toEqual([9]);
    expect([...q.lower!]).toEqual([1]);
    expect([...q.upper!]).toEqual([2]);
  });

  it('reverse only when true; limit a non-negative integer or Infinity', () => {
    expect(toRange({ reverse: true }).reverse).toBe(true);
    expect(toRange({ reverse: 1 as unknown as boolean }).reverse).toBe(false);
    expect(toRange({ limit: 0 }).limit).toBe(0);
    expect(toRange({ limit: 7 }).limit).toBe(7);
    expect(toRange({ limit: Infinity }).limit).toBe(Infinity);
    for (const limit of [-1, 1.5, Number.NaN, -Infinity, '3', null, 2n]) {
      expect(expectCode(() => toRange({ limit: limit as number }), 'InvalidArgument').message).toMatch(/limit must be a non-negative integer/);
    }
  });

  it('refuses options that are not an object, and bounds that are not bytes, naming the option', () => {
    for (const o of [5, 'gte', true]) expect(expectCode(() => toRange(o as ScanOptions), 'InvalidArgument').message).toMatch(/scan options must be an object/);
    for (const name of ['gte', 'gt', 'lte', 'lt', 'prefix'] as const) {
      expect(expectCode(() => toRange({ [name]: 42 } as ScanOptions), 'InvalidArgument').message).toMatch(new RegExp(`^${name} must be a Uint8Array or a string`));
    }
  });

  it('a key lies in the folded range exactly when it satisfies every option alone (seed printed)', () => {
    const key = fc.uint8Array({ minLength: 0, maxLength: 4, max: 3 }).map((a) => a.map((x) => [0x00, 0x01, 0xfe, 0xff][x]!));
    const opt = fc.option(key, { nil: undefined });
    const options = fc.record({ gte: opt, gt: opt, lte: opt, lt: opt, prefix: opt });
    fc.assert(
      fc.property(options, fc.array(key, { maxLength: 20 }), (o, keys) => {
        const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as ScanOptions;
        const r = toRange(given);
        for (const k of keys) expect(inRange(r, k), `key ${Buffer.from(k).toString('hex')} in ${JSON.stringify(given)}`).toBe(matchesEach(given, k));
      }),
      { seed, numRuns: 2000 },
    );
  });
});
