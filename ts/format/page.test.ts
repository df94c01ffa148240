// appendLeafCell (ts/format/page.ts) against the leafInsert kernel it stands in
// for: on random leaves (with dead space, nearly full, empty) an append either
// writes exactly the bytes leafInsert(page, count, …) writes, or returns false
// and changes nothing, and it returns false only when the kernel would have to
// compact or could not fit the cell. Runs on the kernels in use (native in the
// native project) and on the fallback twin. The seed is printed; replay with
// NORTHSTAR_SEED=<seed>.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { readU16, readU32 } from './bytes.js';
import { NODE_CELL_START_OFFSET, NODE_COUNT_OFFSET, NODE_SLOTS_OFFSET, OVERFLOW_REF_SIZE, PageType, SLOT_SIZE, VALUE_OVERFLOW_BIT } from './constants.js';
import { appendLeafCell, initNode, leafKeyLength, leafKeyOffset } from './page.js';
import { fallbackKernels, kernels } from '../native/kernels.js';

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
console.log(`format/page.test.ts: NORTHSTAR_SEED=${seed}`);

describe('appendLeafCell', () => {
  it('writes what leafInsert at the end writes, or returns false and changes nothing (seed printed)', () => {
    const bytes = (max: number) => fc.uint8Array({ minLength: 1, maxLength: max });
    fc.assert(
      fc.property(
        fc.constantFrom(4096, 16384),
        fc.array(fc.record({ key: bytes(40), vlen: fc.nat(600), del: fc.boolean() }), { maxLength: 120 }),
        bytes(60),
        fc.oneof(fc.nat(900), fc.constant(-1)),
        (size, fill, key, vlen) => {
          const page = new Uint8Array(size);
          initNode(page, PageType.Leaf, 7);
          // Fill with cells in order of insertion (keys need not be sorted for the byte layout),
          // deleting some so the page has dead space that only a compaction frees.
          for (const c of fill) {
            const n = readU16(page, NODE_COUNT_OFFSET);
            if (!fallbackKernels.leafInsert(page, n, c.key, new Uint8Array(c.vlen).fill(c.vlen & 0xff), c.vlen)) break;
            if (c.del && n > 0) fallbackKernels.nodeRemove(page, n - 1);
          }
          const inline = vlen < 0 ? new Uint8Array(OVERFLOW_REF_SIZE).fill(9) : new Uint8Array(vlen).fill(3);
          const field = vlen < 0 ? VALUE_OVERFLOW_BIT + 5000 : vlen;
          const count = readU16(page, NODE_COUNT_OFFSET);
          const gap = readU32(page, NODE_CELL_START_OFFSET) - (NODE_SLOTS_OFFSET + count * SLOT_SIZE);
          for (const k of [kernels, fallbackKernels]) {
            const a = page.slice();
            const b = page.slice();
            const appended = appendLeafCell(a, key, inline, field);
            const inserted = k.leafInsert(b, count, key, inline, field);
            expect(appended).toBe(gap >= 6 + key.length + inline.length + SLOT_SIZE);
            if (appended) {
              expect(inserted).toBe(true);
              expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
              expect(Buffer.from(a.subarray(leafKeyOffset(a, count), leafKeyOffset(a, count) + leafKeyLength(a, count))).equals(Buffer.from(key))).toBe(true);
            } else {
              expect(Buffer.from(a).equals(Buffer.from(page))).toBe(true);
            }
          }
        },
      ),
      { seed, numRuns: 300 },
    );
  });

  it('at the edge: a cell that fills the gap exactly is appended; one byte more is refused', () => {
    for (const k of [kernels, fallbackKernels]) {
      for (let delta = -3; delta <= 3; delta++) {
        const page = new Uint8Array(4096);
        initNode(page, PageType.Leaf, 7);
        for (let i = 0; i < 20; i++) fallbackKernels.leafInsert(page, i, Uint8Array.of(i), new Uint8Array(150), 150);
        const count = readU16(page, NODE_COUNT_OFFSET);
        const gap = readU32(page, NODE_CELL_START_OFFSET) - (NODE_SLOTS_OFFSET + count * SLOT_SIZE);
        const key = Uint8Array.of(200, 201);
        const vlen = gap - 6 - key.length - SLOT_SIZE + delta; // delta 0: exactly the gap
        const a = page.slice();
        const b = page.slice();
        expect(appendLeafCell(a, key, new Uint8Array(vlen).fill(5), vlen), `delta ${delta}`).toBe(delta <= 0);
        expect(k.leafInsert(b, count, key, new Uint8Array(vlen).fill(5), vlen)).toBe(delta <= 0);
        expect(Buffer.from(a).equals(delta <= 0 ? Buffer.from(b) : Buffer.from(page))).toBe(true);
      }
    }
  });
});
