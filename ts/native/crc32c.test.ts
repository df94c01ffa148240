import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { crc32c as fallbackCrc32c } from './crc32c.js';
import { loadNativeBinding, nativeLoadError } from './loader.js';

type Crc32c = (data: Uint8Array, seed?: number) => number;

const binding = loadNativeBinding();
const nativeDisabled = process.env.NORTHSTAR_NATIVE === '0';
const nativeRequired = process.env.NORTHSTAR_REQUIRE_NATIVE === '1' && !nativeDisabled;
// Native tests run whenever the addon loaded, and also when it is required but
// did not load, so that they fail and say why instead of quietly skipping.
const skipNative = binding === null && !nativeRequired;

function nativeCrc32c(): Crc32c {
  if (binding === null) {
    throw new Error(`native addon required (NORTHSTAR_REQUIRE_NATIVE=1) but not loaded: ${nativeLoadError}`);
  }
  return binding.crc32c;
}

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

const KNOWN_ANSWERS: ReadonlyArray<{ name: string; data: Uint8Array; crc: number }> = [
  { name: 'empty', data: new Uint8Array(0), crc: 0 },
  { name: '"123456789"', data: ascii('123456789'), crc: 0xe3069283 },
  { name: '32 zero bytes', data: new Uint8Array(32), crc: 0x8a9136aa },
  { name: '32 0xFF bytes', data: new Uint8Array(32).fill(0xff), crc: 0x62a8ab43 },
  { name: 'one byte "a"', data: ascii('a'), crc: 0xc1d04330 },
];

/** 16 KiB of a fixed pseudo-random pattern, the size of a large page. */
function pattern(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function implementationTests(crc: () => Crc32c): void {
  it.each(KNOWN_ANSWERS)('matches the known answer for $name', ({ data, crc: expected }) => {
    expect(crc()(data)).toBe(expected);
  });

  it('returns an unsigned 32-bit integer', () => {
    const value = crc()(ascii('123456789'));
    expect(value).toBeGreaterThan(0x7fffffff);
    expect(Number.isInteger(value)).toBe(true);
  });

  it('continues from a seed: crc(b, crc(a)) === crc(a ++ b)', () => {
    const whole = pattern(100);
    for (const split of [0, 1, 7, 8, 9, 50, 99, 100]) {
      const first = crc()(whole.subarray(0, split));
      expect(crc()(whole.subarray(split), first)).toBe(crc()(whole));
    }
  });

  it('reads unaligned subarray views by their own bounds', () => {
    const data = ascii('123456789');
    for (let offset = 1; offset <= 7; offset++) {
      const backing = new Uint8Array(offset + data.length + 5).fill(0xaa);
      backing.set(data, offset);
      const view = backing.subarray(offset, offset + data.length);
      expect(view.byteOffset % 8).toBe(offset % 8);
      expect(crc()(view)).toBe(0xe3069283);
    }
  });

  it('hashes 16 KiB the same as in two halves', () => {
    const page = pattern(16 * 1024);
    const whole = crc()(page);
    expect(crc()(page.subarray(8 * 1024), crc()(page.subarray(0, 8 * 1024)))).toBe(whole);
  });

  it('accepts a Buffer', () => {
    expect(crc()(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('accepts the extreme seeds 0 and 0xFFFFFFFF', () => {
    expect(crc()(ascii('a'), 0)).toBe(0xc1d04330);
    expect(crc()(new Uint8Array(1), 0xffffffff)).toBe(0xffffffff);
  });

  it.each([
    ['a string', '123456789'],
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['a Uint16Array', new Uint16Array(4)],
    ['a DataView', new DataView(new ArrayBuffer(4))],
    ['a plain array', [1, 2, 3]],
  ])('throws TypeError for data that is %s', (_name, data) => {
    expect(() => crc()(data as unknown as Uint8Array)).toThrow(TypeError);
  });

  it.each([
    ['-1', -1],
    ['2**32', 2 ** 32],
    ['2**33', 2 ** 33],
    ['1.5', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('throws RangeError for seed %s', (_name, seed) => {
    expect(() => crc()(ascii('a'), seed)).toThrow(RangeError);
  });

  it.each([
    ['a string', '1'],
    ['null', null],
    ['a bigint', 1n],
  ])('throws TypeError for a seed that is %s', (_name, seed) => {
    expect(() => crc()(ascii('a'), seed as unknown as number)).toThrow(TypeError);
  });
}

describe('fallback crc32c', () => {
  implementationTests(() => fallbackCrc32c);
});

describe.skipIf(skipNative)('native crc32c', () => {
  implementationTests(nativeCrc32c);
});

describe.skipIf(skipNative)('native crc32c against fallback', () => {
  const seed = process.env.NORTHSTAR_SEED === undefined
    ? Math.floor(Math.random() * 0x7fffffff)
    : Number(process.env.NORTHSTAR_SEED);

  it('agrees on random buffers, seeds and unaligned views', () => {
    // Printed so a failure replays with NORTHSTAR_SEED=<seed>.
    console.log(`crc32c parity: fast-check seed ${seed} (replay with NORTHSTAR_SEED=${seed})`);
    const native = nativeCrc32c();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (bytes, startTrim, endTrim, crcSeed) => {
          const view = bytes.subarray(Math.min(startTrim, bytes.length), Math.max(0, bytes.length - endTrim));
          expect(native(view, crcSeed)).toBe(fallbackCrc32c(view, crcSeed));
          expect(native(view)).toBe(fallbackCrc32c(view));
        },
      ),
      { seed, numRuns: 500 },
    );
  });
});
