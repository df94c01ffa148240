// Search hints (ts/pager/hints.ts, spec/file_format_v1.md §9.2) give exactly
// the kernel's answer: leafSearch and branchSearch of the fallback kernels are
// the reference, on nodes of random sorted keys that share prefixes of every
// length (longer than the hint prefix too), keys that are prefixes of others,
// zero bytes and probes around every key. The seed is printed; replay a
// failure with NORTHSTAR_SEED=<seed>.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { writeU32 } from '../format/bytes.js';
import { NODE_CELL_START_OFFSET, PageType, TYPE_OFFSET } from '../format/constants.js';
import * as reference from '../native/fallback.js';
import { useTempDbs } from '../testing/fixtures.js';
import { HINT_PREFIX_MAX, buildHints, hintedBranchSearch, hintedLeafSearch } from './hints.js';

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
console.log(`hints.test.ts: NORTHSTAR_SEED=${seed}`);

function emptyNode(type: number, size: number): Uint8Array {
  const p = new Uint8Array(size);
  p[TYPE_OFFSET] = type;
  writeU32(p, NODE_CELL_START_OFFSET, size);
  return p;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Distinct keys in order, as many as fit the node. */
function fill(type: number, size: number, keys: Uint8Array[]): { page: Uint8Array; keys: Uint8Array[] } {
  const sorted = keys.slice().sort(compare).filter((k, i, a) => i === 0 || compare(a[i - 1]!, k) !== 0);
  const page = emptyNode(type, size);
  const kept: Uint8Array[] = [];
  for (const k of sorted) {
    const ok =
      type === PageType.Leaf
        ? reference.leafInsert(page, kept.length, k, new Uint8Array(3), 3)
        : reference.branchInsert(page, kept.length, k, 1000 + kept.length, 7);
    if (!ok) break;
    kept.push(k);
  }
  return { page, keys: kept };
}

/** Keys: a shared stem (any length up to past the hint prefix) plus short random tails over a small alphabet. */
const keySet = fc
  .record({
    stem: fc.uint8Array({ minLength: 0, maxLength: HINT_PREFIX_MAX + 8 }),
    tails: fc.array(fc.uint8Array({ minLength: 0, maxLength: 7 }).map((t) => t.map((x) => [0, 1, 0x61, 0x62, 0xff][x % 5]!)), { minLength: 0, maxLength: 120 }),
    stemCuts: fc.array(fc.nat(), { maxLength: 4 }),
  })
  .map(({ stem, tails, stemCuts }) => {
    const keys = tails.map((t) => Uint8Array.from([...stem, ...t])).filter((k) => k.length > 0);
    // Keys that end inside the stem: prefixes of the others.
    for (const c of stemCuts) if (stem.length > 0) keys.push(stem.slice(0, 1 + (c % stem.length)));
    return keys;
  });

/** Probes: every key, and each with its last byte moved by ±1, cut by one, grown by 0x00 and 0xff; plus random ones. */
function probes(keys: Uint8Array[], extra: Uint8Array[]): Uint8Array[] {
  const out = [...extra.filter((k) => k.length > 0)];
  for (const k of keys) {
    out.push(k, Uint8Array.from([...k, 0]), Uint8Array.from([...k, 0xff]));
    if (k.length > 1) out.push(k.slice(0, -1));
    const last = k[k.length - 1]!;
    if (last > 0) out.push(Uint8Array.from([...k.slice(0, -1), last - 1]));
    if (last < 0xff) out.push(Uint8Array.from([...k.slice(0, -1), last + 1]));
  }
  return out;
}

describe('search hints', () => {
  for (const [name, type] of [
    ['leaf', PageType.Leaf],
    ['branch', PageType.Branch],
  ] as const) {
    it(`hinted ${name} search equals the kernel's on random nodes (seed printed)`, () => {
      fc.assert(
        fc.property(keySet, fc.array(fc.uint8Array({ minLength: 1, maxLength: 50 }), { maxLength: 10 }), fc.constantFrom(4096, 16384), (keys, extra, size) => {
          const { page, keys: kept } = fill(type, size, keys);
          const h = buildHints(page, type === PageType.Leaf);
          for (const q of probes(kept, extra)) {
            const want = type === PageType.Leaf ? reference.leafSearch(page, q) : reference.branchSearch(page, q);
            const got = type === PageType.Leaf ? hintedLeafSearch(page, h, q) : hintedBranchSearch(page, h, q);
            if (got !== want) throw new Error(`key ${Buffer.from(q).toString('hex')}: hinted ${got}, kernel ${want}`);
          }
        }),
        { seed, numRuns: 300 },
      );
    });
  }

  it('a node whose keys share more than the hint prefix keeps the prefix at its cap and still finds every key', () => {
    const stem = new Uint8Array(HINT_PREFIX_MAX + 10).fill(0x41);
    const keys = Array.from({ length: 50 }, (_, i) => Uint8Array.from([...stem, i]));
    const { page } = fill(PageType.Leaf, 4096, keys);
    const h = buildHints(page, true);
    expect(h[1]).toBe(HINT_PREFIX_MAX);
    keys.forEach((k, i) => expect(hintedLeafSearch(page, h, k)).toBe(2 * i + 1));
    expect(hintedLeafSearch(page, h, stem)).toBe(0);
    expect(hintedLeafSearch(page, h, Uint8Array.from([...stem, 200]))).toBe(100);
  });

  it('empty and one-key nodes', () => {
    const empty = emptyNode(PageType.Leaf, 4096);
    expect(hintedLeafSearch(empty, buildHints(empty, true), Uint8Array.of(1))).toBe(0);
    const { page } = fill(PageType.Branch, 4096, [Uint8Array.of(5, 5)]);
    const h = buildHints(page, false);
    expect([Uint8Array.of(5), Uint8Array.of(5, 5), Uint8Array.of(6)].map((q) => hintedBranchSearch(page, h, q))).toEqual([0, 1, 1]);
  });
});

describe('search hints in the page cache', () => {
  const t = useTempDbs('northstar-hints-');

  it('a node gets hints on its 4th search, gets through them return every value, and stats count their bytes', () => {
    const db = t.openDb({ pageSize: 4096 });
    const key = (i: number): string => `key:${String(i).padStart(8, '0')}`;
    const w = db.beginWrite();
    for (let i = 0; i < 3000; i++) w.put(key(i), `v${i}`);
    w.commit();
    db.close();
    const r = t.openDb({ pageSize: 4096 });
    const tx = r.beginRead();
    expect(tx.get(key(17))?.toString()).toBe('v17');
    expect(r.stats().cache.hintBytes, 'nothing after one search').toBe(0);
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 3000; i += 7) expect(tx.get(key(i))?.toString()).toBe(`v${i}`);
    }
    expect(r.stats().cache.hintBytes).toBeGreaterThan(0);
    // Absent keys between, below and above the stored ones, through the same hints.
    expect(tx.get('key:0000001') ?? null).toBeNull();
    expect(tx.get(key(42) + '\0') ?? null).toBeNull();
    expect(tx.get('a') ?? null).toBeNull();
    expect(tx.get('z') ?? null).toBeNull();
    tx.close();
  });

  it('a node of more cells than pageSize / 16 keeps no hints', () => {
    const db = t.openDb({ pageSize: 4096 });
    const w = db.beginWrite();
    // 300 two-byte keys of empty values: 10 bytes a cell, all in one 4 KiB leaf, and 300 > 4096 / 16.
    for (let i = 0; i < 300; i++) w.put(Uint8Array.of(1 + (i >> 8), i & 0xff), new Uint8Array(0));
    w.commit();
    const tx = db.beginRead();
    for (let round = 0; round < 6; round++) for (let i = 0; i < 300; i++) expect(tx.get(Uint8Array.of(1 + (i >> 8), i & 0xff))?.length).toBe(0);
    expect(db.stats().depth).toBe(1);
    expect(db.stats().cache.hintBytes).toBe(0);
    tx.close();
  });
});
