// put's right-edge fast path (ts/btree/writer.ts, TreeWriter.put): keys past
// the last key of the rightmost leaf go to its end without a descent, while
// the last descent's path is still the tree's shape. These runs mix ascending
// runs (the fast path, its splits, new roots) with keys before the edge,
// overwrites of the last key, deletes and overflow values inside one
// transaction, and check every key, the order and verify() against a model.
// Prints its seed: NORTHSTAR_SEED=<seed> replays it.

import { describe, expect, it } from 'vitest';
import { implementation } from '../native/kernels.js';
import { rng } from '../testing/rng.js';
import { expectVerified, useTempDbs } from '../testing/fixtures.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`btree/append.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

describe('put on the right edge', () => {
  const { openDb } = useTempDbs('ns-append-');

  for (const [pageSize, run] of [4096, 4096, 4096, 16384, 16384].map((p, i) => [p, i] as const)) {
    it(`ascending runs mixed with other writes match the model (page size ${pageSize}, run ${run})`, () => {
      const r = rng(seed, run);
      const db = openDb({ pageSize }, `db${run}`);
      const model = new Map<string, string>();
      let next = 0;
      const key = (i: number): string => `k${String(i).padStart(8, '0')}`;
      for (let txn = 0; txn < 6; txn++) {
        const w = db.beginWrite();
        for (let step = 0; step < 400; step++) {
          const x = r();
          let k: string;
          let v = `${txn}.${step}`;
          if (x < 0.7) k = key((next += 1 + Math.floor(r() * 3)));
          else if (x < 0.8) k = key(Math.floor(r() * next));
          else if (x < 0.85) k = key(next); // the last key again: an overwrite, not an append
          else if (x < 0.9) {
            k = key(next += 1);
            v = 'o'.repeat(pageSize * 2); // overflow value on the edge
          } else {
            const d = key(Math.floor(r() * (next + 1)));
            expect(w.del(d)).toBe(model.delete(d));
            continue;
          }
          w.put(k, v);
          model.set(k, v);
        }
        w.commit();
      }
      const rd = db.beginRead();
      const got = [...rd.scan({})].map(([k, v]) => [k.toString(), v.toString()]);
      rd.close();
      expect(got).toEqual([...model.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
      expect(db.stats().entries).toBe(model.size);
      expectVerified(db);
    });
  }
});
