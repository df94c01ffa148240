// Values copied out of pages (ts/btree/read.ts): the word copy equals the
// byte copy for every start and length, leaves the bytes around it alone, and
// each copy belongs to its caller. The seed is printed; replay a failure with
// NORTHSTAR_SEED=<seed>.

import fc from 'fast-check';
import { expect, it } from 'vitest';
import { copyOut, copyOutWords } from './read.js';

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
console.log(`copy.test.ts: NORTHSTAR_SEED=${seed}`);

function page(size: number, fill: number): Uint8Array {
  const p = new Uint8Array(size);
  for (let i = 0; i < size; i++) p[i] = (i * 31 + fill) & 0xff;
  return p;
}

it('copyOutWords equals copyOut at every alignment and length up to 256 (seed printed)', () => {
  const p = page(4096, 7);
  const words = new Int32Array(p.buffer, p.byteOffset, p.length >> 2);
  fc.assert(
    fc.property(fc.nat(4096 - 257), fc.nat(256), (start, length) => {
      const a = copyOutWords(p, words, start, length);
      const b = copyOut(p, start, length);
      expect(a.length).toBe(length);
      expect(Buffer.compare(a, b)).toBe(0);
      expect(Buffer.compare(a, Buffer.from(p.subarray(start, start + length)))).toBe(0);
    }),
    { seed, numRuns: 2000 },
  );
});

it('copies do not overlap or change one another, across slab boundaries', () => {
  const p = page(16384, 3);
  const words = new Int32Array(p.buffer, p.byteOffset, p.length >> 2);
  const out: Array<[Buffer, number, number]> = [];
  // Enough copies to fill several 64 KiB slabs; a mix of both paths.
  for (let i = 0; i < 3000; i++) {
    const start = (i * 977) % (16384 - 300);
    const length = (i * 37) % 257;
    out.push([i % 3 === 0 ? copyOut(p, start, length) : copyOutWords(p, words, start, length), start, length]);
  }
  const first = out[0]![0];
  first.fill(0xee); // the caller owns its copy
  for (const [b, start, length] of out.slice(1)) expect(Buffer.compare(b, Buffer.from(p.subarray(start, start + length)))).toBe(0);
});
