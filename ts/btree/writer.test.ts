// TreeWriter (ts/btree/writer.ts) on its own, over a Pager on an in-memory
// file, with commits simulated as WriteTxn does them (seal the dirty pages
// with the txn id, write them). Its contracts:
// - copy-on-write: no page reachable from the base snapshot changes, in the
//   file or in the page cache; every page it writes is one it allocated and
//   carries its txn id from allocation on;
// - free-page accounting: the base pages it made unreachable are exactly
//   freedCommitted + freedYoung (split by the durable checkpoint's txn id),
//   pages it allocated and freed again are `reusable` and handed out again first;
// - splits, merges and root changes keep one ordered tree of uniform depth,
//   whose references name the txn that wrote each child (reads check it);
// - overflow values take ceil(len / per-page) pages, freed with their cell;
// - del of an absent key changes nothing and copies no page.
// The property test prints its seed: NORTHSTAR_SEED=<seed> replays it.

import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';

import { readU64 } from '../format/bytes.js';
import { LEAF_CELL_HEADER, OVERFLOW_DATA_OFFSET, OVERFLOW_NEXT_OFFSET, OVERFLOW_REF_PAGE, PageType, VALUE_OVERFLOW_BIT } from '../format/constants.js';
import { childAt, childTxnAt, leafKeyLength, leafVlenField, nodeCount, pageTxnId, pageTypeOf, slotOffset } from '../format/page.js';
import { kernels } from '../native/kernels.js';
import { Pager } from '../pager/pager.js';
import { MemoryFile } from '../testing/fixtures.js';
import { leafKey, leafValue, nodePage, treeGet, type PageSource } from './read.js';
import { TreeWriter } from './writer.js';

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
console.log(`btree/writer.test.ts: NORTHSTAR_SEED=${seed}`);

const PS = 4096;
const PER_OVERFLOW = PS - OVERFLOW_DATA_OFFSET;

/** The committed tree a transaction starts from. */
interface Base {
  root: number;
  rootTxn: number;
  depth: number;
  entryCount: number;
  txnId: number;
  /** Pages the file holds (ids 0 and 1 are the metas, never touched here). */
  pageCount: number;
}

const EMPTY: Base = { root: 0, rootTxn: 0, depth: 0, entryCount: 0, txnId: 0, pageCount: 2 };

let file: MemoryFile;
let pager: Pager;

beforeEach(() => {
  file = new MemoryFile(PS);
  pager = new Pager(file, PS, kernels, 1 << 20);
});

/** A writer on base whose allocations come from `free` first, then the end of the file (ids recorded in `allocated`). */
function writer(base: Base, opts: { free?: number[]; protectedUpTo?: number } = {}): { w: TreeWriter; allocated: number[] } {
  const allocated: number[] = [];
  const free = [...(opts.free ?? [])];
  let end = base.pageCount;
  const allocate = (): number => {
    const id = free.shift() ?? end++;
    allocated.push(id);
    return id;
  };
  const w = new TreeWriter(pager, base.root, base.rootTxn, base.depth, base.entryCount, base.txnId + 1, allocate, opts.protectedUpTo ?? 0);
  return { w, allocated };
}

/** What WriteTxn.write does with the tree: seal and write every dirty page, cache the nodes. Returns the new base. */
function commit(w: TreeWriter, base: Base, allocated: number[]): Base {
  const ids = [...w.dirty.keys()].sort((a, b) => a - b);
  const pages = ids.map((id) => w.dirty.get(id)!);
  for (const p of pages) kernels.pageSeal(p);
  pager.writePages(ids, pages);
  for (const [i, id] of ids.entries()) pager.cacheWritten(id, pages[i]!);
  const pageCount = Math.max(base.pageCount, ...allocated.map((id) => id + 1));
  pager.extendTo(pageCount * PS);
  return { root: w.root, rootTxn: w.rootTxn, depth: w.depth, entryCount: w.entryCount, txnId: w.txnId, pageCount };
}

/** A read-only view of the committed file. */
const committedSource = (): PageSource => ({
  kernels,
  pageSize: PS,
  path: file.path,
  page: (id) => pager.read(id),
  overflowPage: (id) => pager.readUncached(id),
});

interface Walked {
  /** Every page reachable from the root: nodes and overflow pages. */
  pages: Set<number>;
  entries: Array<[string, Buffer]>;
  overflowPages: number;
}

/**
 * Walks the whole tree, checking what a reader relies on: each reference names
 * the txn that wrote the page (nodePage checks it), every leaf at one depth,
 * keys ascending across leaves, each page reached once.
 */
function walk(src: PageSource, b: { root: number; rootTxn: number; depth: number }): Walked {
  const out: Walked = { pages: new Set(), entries: [], overflowPages: 0 };
  if (b.root === 0) {
    expect(b.depth).toBe(0);
    return out;
  }
  const visit = (id: number, txn: number, level: number): void => {
    expect(out.pages.has(id), `page ${id} reached twice`).toBe(false);
    out.pages.add(id);
    const p = nodePage(src, id, txn);
    if (pageTypeOf(p) === PageType.Branch) {
      expect(level, `branch ${id} at the leaf level`).toBeLessThan(b.depth);
      for (let c = 0; c <= nodeCount(p); c++) visit(childAt(p, c), childTxnAt(p, c), level + 1);
      return;
    }
    expect(level, `leaf ${id} at level ${level}, depth ${b.depth}`).toBe(b.depth);
    for (let i = 0; i < nodeCount(p); i++) {
      out.entries.push([leafKey(p, i).toString('hex'), leafValue(src, p, i)]);
      const vlen = leafVlenField(p, i);
      if (vlen >= VALUE_OVERFLOW_BIT) {
        let next = readU64(p, slotOffset(p, i) + LEAF_CELL_HEADER + leafKeyLength(p, i) + OVERFLOW_REF_PAGE);
        for (let n = Math.ceil((vlen - VALUE_OVERFLOW_BIT) / PER_OVERFLOW); n > 0; n--) {
          expect(out.pages.has(next), `overflow page ${next} reached twice`).toBe(false);
          out.pages.add(next);
          out.overflowPages++;
          next = readU64(src.overflowPage(next), OVERFLOW_NEXT_OFFSET);
        }
      }
    }
  };
  visit(b.root, b.rootTxn, 1);
  const keys = out.entries.map(([k]) => k);
  expect(keys, 'keys ascend').toEqual([...keys].sort());
  return out;
}

/** The file's bytes of every page in `ids`. */
function snapshotPages(ids: Iterable<number>): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const id of ids) m.set(id, Buffer.from(file.bytes.subarray(id * PS, (id + 1) * PS)));
  return m;
}

/**
 * After a transaction (before its commit is written) on `base` whose tree was
 * `before`: the base's pages are untouched in the file and in the cache, and
 * freed/dirty/reusable account for every page exactly.
 */
function expectAccounting(w: TreeWriter, allocated: number[], before: Walked, saved: Map<number, Buffer>): Walked {
  // Copy-on-write: every base page, byte for byte, in the file and as the pager reads it.
  for (const [id, bytes] of saved) {
    expect(file.bytes.subarray(id * PS, (id + 1) * PS).equals(bytes), `base page ${id} changed in the file`).toBe(true);
    expect(Buffer.from(pager.read(id)).equals(bytes), `base page ${id} changed in the cache`).toBe(true);
  }
  const after = walk(w, w);
  const freed = [...w.freedCommitted, ...w.freedYoung];
  expect(new Set(freed).size, 'a page freed twice').toBe(freed.length);
  // Freed: exactly the base pages the new tree no longer reaches.
  expect(new Set(freed)).toEqual(new Set([...before.pages].filter((id) => !after.pages.has(id))));
  // Dirty: pages it allocated, each carrying its txn id; every reachable page is a base page or dirty.
  for (const [id, page] of w.dirty) {
    expect(allocated, `dirty page ${id} was never allocated`).toContain(id);
    expect(before.pages.has(id), `dirty page ${id} is a base page`).toBe(false);
    expect(pageTxnId(page)).toBe(w.txnId);
  }
  for (const id of after.pages) expect(before.pages.has(id) || w.dirty.has(id), `page ${id} is neither base nor dirty`).toBe(true);
  // Reusable: allocated, freed again, not dirty, not reachable.
  for (const id of w.reusable) {
    expect(allocated).toContain(id);
    expect(w.dirty.has(id) || after.pages.has(id)).toBe(false);
  }
  // Every allocated id is dirty or reusable; handed out once (reusable ones may be handed out again, so count distinct).
  expect(new Set([...w.dirty.keys(), ...w.reusable])).toEqual(new Set(allocated));
  expect(new Set(allocated).size).toBe(allocated.length);
  return after;
}

const hexKey = (k: string): Buffer => Buffer.from(k, 'hex');
/** Key i, sortable by i; 109 bytes, so a few thousand make three levels on 4 KiB pages. */
const key = (i: number): Buffer => Buffer.from(`key${String(i).padStart(6, '0')}${'x'.repeat(100)}`);
const value = (i: number, n: number): Buffer => Buffer.alloc(n, (i * 7 + 1) & 0xff);

function load(n: number, vlen = 40): Base {
  const { w, allocated } = writer(EMPTY);
  for (let i = 0; i < n; i++) w.put(key(i), value(i, vlen));
  return commit(w, EMPTY, allocated);
}

describe('TreeWriter', () => {
  it('puts into an empty tree: a leaf root, then splits into levels; every value reads back through the writer and, once committed, from the file', () => {
    const { w, allocated } = writer(EMPTY);
    expect(w.changed).toBe(false);
    w.put(key(0), value(0, 10));
    expect(w.depth).toBe(1);
    expect(w.entryCount).toBe(1);
    expect(w.rootTxn).toBe(1);
    expect(w.changed).toBe(true);
    const depths = new Set<number>();
    for (let i = 1; i < 3000; i++) {
      w.put(key(i), value(i, 40));
      depths.add(w.depth);
    }
    expect([...depths].sort()).toEqual([1, 2, 3]);
    expect(w.entryCount).toBe(3000);
    for (let i = 0; i < 3000; i += 7) expect(treeGet(w, w.root, w.rootTxn, key(i))?.equals(value(i, i === 0 ? 10 : 40))).toBe(true);
    const base = commit(w, EMPTY, allocated);
    const t = walk(committedSource(), base);
    expect(t.entries).toHaveLength(3000);
    expect(t.pages.size).toBe(w.dirty.size);
    expect(treeGet(committedSource(), base.root, base.rootTxn, key(2999))?.equals(value(2999, 40))).toBe(true);
    expect(treeGet(committedSource(), base.root, base.rootTxn, Buffer.from('nope'))).toBeUndefined();
  });

  it('an overwrite keeps the entry count; del returns whether the key was there; a del of an absent key copies no page', () => {
    const base = load(500);
    const { w } = writer(base);
    expect(w.del(Buffer.from('absent'))).toBe(false);
    expect(w.dirty.size).toBe(0);
    expect(w.changed).toBe(false);
    expect(w.version).toBe(0);
    w.put(key(3), value(3, 5));
    expect(w.entryCount).toBe(500);
    expect(w.del(key(3))).toBe(true);
    expect(w.del(key(3))).toBe(false);
    expect(w.entryCount).toBe(499);
    expect(treeGet(w, w.root, w.rootTxn, key(3))).toBeUndefined();
  });

  it('copy-on-write: changing a committed tree leaves every base page as it was, in the file and in the cache, and the base still reads whole', () => {
    const base = load(2000);
    const before = walk(committedSource(), base);
    const saved = snapshotPages(before.pages);
    for (const id of before.pages) pager.read(id); // cached: the writer must not edit cached buffers either
    const { w, allocated } = writer(base);
    for (let i = 0; i < 2000; i += 3) w.put(key(i), value(i, 90));
    for (let i = 1; i < 2000; i += 3) w.del(key(i));
    w.put(Buffer.from('big'), value(1, 3 * PER_OVERFLOW + 5));
    expectAccounting(w, allocated, before, saved);
    // The base, read again through its own root, is the old tree.
    const again = walk(committedSource(), base);
    expect(again.entries.map(([k, v]) => [k, v.length])).toEqual(before.entries.map(([k, v]) => [k, v.length]));
  });

  it('overflow values take ceil(length / per-page) pages, all of this txn; replacing or deleting the value frees its chain', () => {
    const base = load(10);
    const before = walk(committedSource(), base);
    const saved = snapshotPages(before.pages);
    const { w, allocated } = writer(base);
    const big = value(9, 2 * PER_OVERFLOW + 1);
    w.put(Buffer.from('big'), big);
    let t = walk(w, w);
    expect(t.overflowPages).toBe(3);
    expect(treeGet(w, w.root, w.rootTxn, Buffer.from('big'))?.equals(big)).toBe(true);
    // Replaced in the same txn: the old chain was this txn's, so it is reusable at once
    // (the new chain is written before the old one is freed), and taken again first.
    w.put(Buffer.from('big'), value(8, PER_OVERFLOW));
    expect(w.reusable.length).toBe(3);
    t = walk(w, w);
    expect(t.overflowPages).toBe(1);
    const allocations = allocated.length;
    w.put(Buffer.from('big2'), value(7, PER_OVERFLOW));
    expect(w.reusable.length).toBe(2);
    expect(allocated.length, 'no new page allocated').toBe(allocations);
    const after = expectAccounting(w, allocated, before, saved);
    const base2 = commit(w, base, allocated);
    expect(walk(committedSource(), base2).pages).toEqual(after.pages);
    // Deleted in a later txn: its committed chain is freed (pending), with the leaf it sat in.
    const before2 = walk(committedSource(), base2);
    const { w: w2, allocated: a2 } = writer(base2);
    expect(w2.del(Buffer.from('big'))).toBe(true);
    expectAccounting(w2, a2, before2, snapshotPages(before2.pages));
    expect(w2.freedCommitted.length + w2.freedYoung.length).toBeGreaterThanOrEqual(2); // the overflow page and the old leaf
  });

  it('pages freed again in the same transaction are handed out before new ones: put and delete the same 50 large values 20 times allocates no more than once', () => {
    const base = load(5);
    const { w, allocated } = writer(base);
    const round = (): void => {
      for (let i = 0; i < 50; i++) w.put(key(1000 + i), value(i, PER_OVERFLOW + 1));
      for (let i = 0; i < 50; i++) w.del(key(1000 + i));
    };
    round();
    const after1 = allocated.length;
    for (let r = 0; r < 20; r++) round();
    expect(allocated.length, 'later rounds reuse the first round’s pages').toBe(after1);
  });

  it('free-page accounting splits base pages at the durable checkpoint: written after it → freedYoung, at or before it → freedCommitted', () => {
    let base = load(300); // txn 1
    // txn 2 rewrites part of the tree.
    const { w: w2, allocated: a2 } = writer(base);
    for (let i = 0; i < 300; i += 50) w2.put(key(i), value(i, 41));
    base = commit(w2, base, a2);
    const before = walk(committedSource(), base);
    const { w, allocated } = writer(base, { protectedUpTo: 1 });
    for (let i = 0; i < 300; i++) w.put(key(i), value(i, 42));
    expectAccounting(w, allocated, before, snapshotPages(before.pages));
    expect(w.freedYoung.length).toBeGreaterThan(0);
    expect(w.freedCommitted.length).toBeGreaterThan(0);
    for (const id of w.freedYoung) expect(pageTxnId(pager.read(id)) > 1 || pageTypeOf(pager.readUncached(id)) === PageType.Overflow, `young page ${id}`).toBe(true);
    for (const id of w.freedYoung) expect(pageTxnId(pager.readUncached(id))).toBe(2);
    for (const id of w.freedCommitted) expect(pageTxnId(pager.readUncached(id))).toBeLessThanOrEqual(1);
  });

  it('deleting everything merges the tree level by level down to empty: root 0, depth 0, and every base page freed', () => {
    const base = load(3000);
    expect(base.depth).toBe(3);
    const before = walk(committedSource(), base);
    const { w, allocated } = writer(base);
    const depths: number[] = [];
    // From the middle outwards, so merges go both ways (left and right siblings).
    for (let d = 0; d < 1500; d++) {
      expect(w.del(key(1500 + d))).toBe(true);
      expect(w.del(key(1499 - d))).toBe(true);
      if (depths.at(-1) !== w.depth) depths.push(w.depth);
      if (d === 1000) expectAccounting(w, allocated, before, snapshotPages(before.pages));
    }
    expect(depths).toEqual([3, 2, 1, 0]);
    expect(w.root).toBe(0);
    expect(w.entryCount).toBe(0);
    expect(new Set([...w.freedCommitted, ...w.freedYoung])).toEqual(before.pages);
    expect(w.dirty.size).toBe(0);
    expect(new Set(w.reusable)).toEqual(new Set(allocated));
  });

  it('the finger: neighbouring puts and dels on a three-level tree skip the descent, and every key still lands in its leaf (both bounds, both edges, after splits and merges)', () => {
    const base = load(3000);
    expect(base.depth).toBe(3);
    const before = walk(committedSource(), base);
    const { w, allocated } = writer(base);
    const model = new Map(before.entries.map(([k, v]) => [k, Buffer.from(v)]));
    const put = (i: number, n: number): void => {
      w.put(key(i), value(i, n));
      model.set(key(i).toString('hex'), value(i, n));
    };
    const del = (i: number): void => expect(w.del(key(i))).toBe(model.delete(key(i).toString('hex')));
    // Rewrites in order, from the leftmost leaf (no lower bound) to the rightmost (no upper bound).
    for (let i = 0; i < 3000; i++) put(i, 40);
    const rewrites = w.descents;
    // One descent per leaf (about 3000 / 30) plus one per split, not one per key.
    expect(rewrites).toBeLessThan(300);
    // Keys between existing ones (splits), then a sweep of dels (merges and redistribution), then absent keys.
    for (let i = 500; i < 900; i++) put(i, 300);
    for (let i = 1000; i < 2500; i++) del(i);
    for (let i = 1000; i < 1100; i++) del(i);
    for (let i = 2999; i >= 2900; i--) put(i, 10);
    expect(w.descents - rewrites).toBeLessThan(400);
    // Three regions written in turn (as a queue writes its task, index and counter keys): a finger each.
    const mixed = w.descents;
    for (let i = 0; i < 300; i++) {
      put(100 + i, 40);
      del(2600 + i);
      put(2950, i + 1);
    }
    expect(w.descents - mixed).toBeLessThan(100);
    const after = expectAccounting(w, allocated, before, snapshotPages(before.pages));
    expect(after.entries.map(([k, v]) => [k, v.toString('hex')])).toEqual([...model.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.toString('hex')]));
    for (const [k, v] of model) expect(treeGet(w, w.root, w.rootTxn, hexKey(k))?.equals(v)).toBe(true);
    // get through the fingers: present and absent keys, in order (finger hits) and from the root.
    for (let i = 0; i < 3000; i++) expect(w.get(key(i))?.toString('hex')).toBe(model.get(key(i).toString('hex'))?.toString('hex'));
    expect(w.get(Buffer.from('a'))).toBeUndefined();
    expect(w.get(Buffer.from('zzz'))).toBeUndefined();
  });

  it('touchRoot copies a committed root once (the snapshot’s root is then this txn’s) and does nothing on an empty tree', () => {
    const base = load(20);
    const { w } = writer(base, { protectedUpTo: 1 });
    w.touchRoot();
    expect(w.rootTxn).toBe(2);
    expect(w.root).not.toBe(base.root);
    expect(w.freedCommitted).toEqual([base.root]);
    expect(w.freedYoung).toEqual([]);
    const root = w.root;
    w.touchRoot();
    expect(w.root).toBe(root);
    expect(w.dirty.size).toBe(1);
    const { w: e } = writer(EMPTY);
    e.touchRoot();
    expect(e.root).toBe(0);
    expect(e.changed).toBe(false);
  });

  it('random puts and dels over several commits agree with a Map, keep every base page intact and account for every page (seed printed)', () => {
    const op = fc.oneof(
      { weight: 5, arbitrary: fc.record({ t: fc.constant('put' as const), k: fc.nat(400), vlen: fc.oneof({ weight: 8, arbitrary: fc.nat(200) }, { weight: 1, arbitrary: fc.nat(3 * PS) }) }) },
      { weight: 3, arbitrary: fc.record({ t: fc.constant('del' as const), k: fc.nat(400) }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('wipe' as const), from: fc.nat(400), n: fc.nat(150) }) },
      // Runs of neighbouring keys, the finger's case (put's and del's fast path).
      { weight: 1, arbitrary: fc.record({ t: fc.constant('run' as const), from: fc.nat(400), n: fc.nat(80), vlen: fc.nat(300) }) },
    );
    fc.assert(
      fc.property(fc.array(fc.array(op, { maxLength: 150 }), { minLength: 1, maxLength: 5 }), fc.boolean(), (txns, reuse) => {
        file = new MemoryFile(PS);
        pager = new Pager(file, PS, kernels, 1 << 20);
        let base = EMPTY;
        const model = new Map<string, Buffer>();
        let pending: number[] = [];
        for (const [n, ops] of txns.entries()) {
          const before = walk(committedSource(), base);
          const saved = snapshotPages(before.pages);
          // Pages freed two commits ago may be reused (no reader holds them here).
          const { w, allocated } = writer(base, { free: reuse ? pending : [], protectedUpTo: base.txnId - 1 });
          const next = new Map(model);
          for (const o of ops) {
            if (o.t === 'put') {
              const v = value(o.k + n, o.vlen);
              w.put(key(o.k), v);
              next.set(key(o.k).toString('hex'), v);
            } else if (o.t === 'run') {
              for (let k = o.from; k < o.from + o.n; k++) {
                const v = value(k + n, o.vlen);
                w.put(key(k), v);
                next.set(key(k).toString('hex'), v);
              }
            } else if (o.t === 'del') {
              expect(w.del(key(o.k))).toBe(next.delete(key(o.k).toString('hex')));
            } else {
              for (let k = o.from; k < o.from + o.n; k++) expect(w.del(key(k))).toBe(next.delete(key(k).toString('hex')));
            }
          }
          expect(w.entryCount).toBe(next.size);
          const after = expectAccounting(w, allocated, before, saved);
          expect(after.entries.map(([k, v]) => [k, v.toString('hex')])).toEqual([...next.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.toString('hex')]));
          base = commit(w, base, allocated);
          pending = [...w.freedCommitted, ...w.freedYoung, ...w.reusable];
          model.clear();
          for (const [k, v] of next) model.set(k, v);
          const committed = walk(committedSource(), base);
          expect(committed.entries.length).toBe(model.size);
          for (const [k, v] of model) expect(treeGet(committedSource(), base.root, base.rootTxn, hexKey(k))?.equals(v)).toBe(true);
        }
      }),
      { seed, numRuns: 40 },
    );
  });
});
