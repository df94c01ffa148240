// The free list (ts/pager/freelist.ts, spec/file_format_v1.md §6): the lowest
// reusable id first, pages released only past the reader floor and, when a
// durable meta may reach them, the checkpoint; against a plain model on random
// operations. The seed is printed; replay a failure with NORTHSTAR_SEED=<seed>.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rng } from '../testing/rng.js';
import { dropRange, FreeList } from './freelist.js';

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
console.log(`freelist.test.ts: NORTHSTAR_SEED=${seed}`);

type Op =
  | { kind: 'take' }
  | { kind: 'giveBack'; ids: number[] }
  | { kind: 'addPending'; ids: number[]; protected: boolean }
  | { kind: 'release'; floor: number; checkpoint: number }
  | { kind: 'remove'; ids: number[] };

const ids = fc.array(fc.integer({ min: 2, max: 400 }), { maxLength: 12 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ kind: 'take' as const }),
  ids.map((i) => ({ kind: 'giveBack' as const, ids: i })),
  fc.record({ ids, protected: fc.boolean() }).map((r) => ({ kind: 'addPending' as const, ...r })),
  fc.record({ floor: fc.nat(60), checkpoint: fc.nat(60) }).map((r) => ({ kind: 'release' as const, ...r })),
  ids.map((i) => ({ kind: 'remove' as const, ids: i })),
);

/**
 * The ops with every id a sound list could hold: each page given back or
 * freed is a new one (nothing lists an id twice, which keeps remove() on its
 * index of pending ids), and a remove names ids given out before, in any list
 * or none.
 */
function unique(ops: Op[]): Op[] {
  let next = 1000;
  return ops.map((o) => {
    if (o.kind === 'giveBack' || o.kind === 'addPending') return { ...o, ids: o.ids.map(() => next++) };
    if (o.kind === 'remove') return { ...o, ids: [...new Set(o.ids.map((i) => 1000 + (i % Math.max(1, next - 1000))))] };
    return o;
  });
}

for (const [name, shape] of [
  ['any ids, some listed twice', (ops: Op[]) => ops],
  ['ids as a sound list has them', unique],
] as const) {
it(`take() hands out the lowest reusable id; release, remove and entries agree with a model, ${name} (seed printed)`, () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 120 }).map(shape), (ops) => {
      const list = new FreeList();
      let free: number[] = [];
      let pending: Array<{ txnId: number; ids: number[]; protected: boolean }> = [];
      let txn = 0;
      for (const o of ops) {
        switch (o.kind) {
          case 'take': {
            free.sort((a, b) => a - b);
            expect(list.take()).toBe(free.shift());
            break;
          }
          case 'giveBack':
            list.giveBack(o.ids);
            free.push(...o.ids);
            break;
          case 'addPending':
            txn++;
            list.addPending(txn, o.ids, o.protected);
            if (o.ids.length > 0) pending.push({ txnId: txn, ids: o.ids.slice(), protected: o.protected });
            break;
          case 'release':
            list.release(o.floor, o.checkpoint);
            for (const p of pending) if (p.txnId <= o.floor && (!p.protected || p.txnId <= o.checkpoint)) free.push(...p.ids);
            pending = pending.filter((p) => !(p.txnId <= o.floor && (!p.protected || p.txnId <= o.checkpoint)));
            break;
          case 'remove': {
            const gone = new Set(o.ids);
            list.remove(o.ids);
            free = free.filter((id) => !gone.has(id));
            for (const p of pending) p.ids = p.ids.filter((id) => !gone.has(id));
            break;
          }
        }
        expect(list.freeCount).toBe(free.length);
        expect(list.pendingCount).toBe(pending.reduce((n, p) => n + p.ids.length, 0));
      }
      const entries = list.entries();
      const want = [...free.map((id) => [id, 0]), ...pending.flatMap((p) => p.ids.map((id) => [id, p.txnId]))];
      const order = (a: number[], b: number[]): number => a[0]! - b[0]! || a[1]! - b[1]!;
      expect(entries.map((e) => [...e]).sort(order)).toEqual(want.sort(order));
      // Drained, it hands out every free id in ascending order.
      const out: number[] = [];
      for (let id = list.take(); id !== undefined; id = list.take()) out.push(id);
      expect(out).toEqual(free.sort((a, b) => a - b));
    }),
    { seed, numRuns: 500 },
  );
});
}

it('fromEntries: entries freed at or before the floor are reusable at once, later ones wait', () => {
  const list = FreeList.fromEntries([9, 4, 7, 5], [0, 3, 8, 3], 5);
  expect(list.freeCount).toBe(3);
  expect(list.pendingCount).toBe(1);
  expect([list.take(), list.take(), list.take(), list.take()]).toEqual([4, 5, 9, undefined]);
  list.release(8);
  expect(list.take()).toBe(7);
});

describe('historyCut (spec §6.2) and awaitingCheckpoint (§8.2)', () => {
  /** The definition, computed from scratch over the entries. */
  function naiveCut(entries: Array<[number, number]>, protectedOf: Map<number, boolean>, maxPages: number, checkpoint: number): number | null {
    const byTxn = new Map<number, number>();
    for (const [, t] of entries) if (t !== 0) byTxn.set(t, (byTxn.get(t) ?? 0) + 1);
    let held = 0;
    for (const t of [...byTxn.keys()].sort((a, b) => b - a)) {
      if (protectedOf.get(t)! && t > checkpoint) continue;
      held += byTxn.get(t)!;
      if (held > maxPages) return t;
    }
    return null;
  }

  it('agrees with its definition through adds, releases, removes and checkpoints', () => {
    const r = rng(seed, 1);
    const list = new FreeList();
    const protectedOf = new Map<number, boolean>();
    let nextId = 2;
    let checkpoint = 0;
    for (let txn = 1; txn <= 400; txn++) {
      const ids = Array.from({ length: Math.floor(r() * 4) }, () => nextId++);
      // Each commit's pages are all protected or all young here, so the definition can key by txn.
      const prot = r() < 0.5;
      protectedOf.set(txn, prot);
      list.addPending(txn, ids, prot);
      if (r() < 0.05) checkpoint = txn;
      if (r() < 0.1) list.release(Math.floor(r() * txn), checkpoint);
      if (r() < 0.05 && ids.length > 0) list.remove([ids[0]!]);
      const maxPages = Math.floor(r() * 40);
      expect(list.historyCut(maxPages, checkpoint), `txn ${txn}`).toBe(naiveCut(list.entries(), protectedOf, maxPages, checkpoint));
      const awaiting = list.entries().filter(([, t]) => t > checkpoint && protectedOf.get(t)).length;
      expect(list.awaitingCheckpoint(checkpoint), `txn ${txn}: pages awaiting a checkpoint`).toBe(awaiting);
    }
  });
});

describe('release skips the entries that wait for a checkpoint', () => {
  const pendingOf = (l: FreeList): Array<[number, number]> => l.entries().filter(([, t]) => t !== 0);
  const freeOf = (l: FreeList): number[] => l.entries().filter(([, t]) => t === 0).map(([id]) => id).sort((a, b) => a - b);

  it('releases young pages behind them as the floor rises, and them once a checkpoint passes them', () => {
    const l = new FreeList();
    l.addPending(1, [10], true);
    l.addPending(2, [20], false);
    l.release(5, 0); // 20 goes; 10 waits for a checkpoint at or after txn 1
    expect(freeOf(l)).toEqual([20]);
    l.addPending(3, [30], false);
    l.addPending(4, [40], false);
    l.addPending(5, [50], true);
    l.addPending(6, [60], false);
    l.release(3, 0); // 30 goes; 40, 50 and 60 are past the floor
    expect(freeOf(l)).toEqual([20, 30]);
    l.release(10, 0); // 40 and 60 go: they sit behind 10, which waits; 50 waits too
    expect(freeOf(l)).toEqual([20, 30, 40, 60]);
    expect(pendingOf(l)).toEqual([
      [10, 1],
      [50, 5],
    ]);
    // An entry added among the waiting ones (out of txn order) is not skipped.
    l.addPending(3, [35], false);
    l.release(10, 0);
    expect(freeOf(l)).toEqual([20, 30, 35, 40, 60]);
    l.release(10, 5);
    expect(freeOf(l)).toEqual([10, 20, 30, 35, 40, 50, 60]);
    expect(pendingOf(l)).toEqual([]);
  });
});

describe('protectFreed', () => {
  it('makes young entries freed in (after, upTo] wait for a checkpoint at or after them; others are untouched', () => {
    const freeOf = (l: FreeList): number[] => l.entries().filter(([, t]) => t === 0).map(([id]) => id).sort((a, b) => a - b);
    const l = new FreeList();
    l.addPending(2, [20], false);
    l.addPending(5, [50], false);
    l.addPending(9, [90], false);
    l.protectFreed(3, 6);
    // Only 50 (freed by 5) now awaits a checkpoint after 4, and nothing one at or after 5.
    expect([l.awaitingCheckpoint(4), l.awaitingCheckpoint(5), l.releasableByCheckpoint(4, 9, 1)]).toEqual([1, 0, 1]);
    l.release(10, 4); // 5 is protected now and 5 > 4: it waits; 2 and 9 are young
    expect(freeOf(l)).toEqual([20, 90]);
    l.release(10, 5);
    expect(freeOf(l)).toEqual([20, 50, 90]);
    expect(l.awaitingCheckpoint(0)).toBe(0);
  });
});

describe('dropRange', () => {
  it('removes array[from, to) keeping the order, as splice(from, to - from) does', () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), fc.nat(), fc.nat(), (a, x, y) => {
        const from = a.length === 0 ? 0 : x % (a.length + 1);
        const to = from + (a.length === 0 ? 0 : y % (a.length - from + 1));
        const expected = a.slice();
        expected.splice(from, to - from);
        const got = a.slice();
        dropRange(got, from, to);
        expect(got).toEqual(expected);
      }),
      { seed, numRuns: 300 },
    );
  });
});
