// Calls made together share one write transaction (spec/task_queue_v0.md §5,
// ts/queue/batcher.ts): they must answer exactly what the same calls answer
// one at a time, in the order they were made. This is where the claim path's
// caches live (each type's head, and the ready keys read ahead of it:
// ts/queue/ready.ts), which other calls of the same transaction invalidate
// when they put a task back (fail, enqueue) or take one out (cancel). A
// random history runs both ways on two databases with the same fixed clock.
// The seed is printed: NORTHSTAR_SEED=<seed> replays it.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { implementation, openQueue, type ClaimedTask, type Queue } from '../index.js';
import { useTempDbs } from '../testing/fixtures.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/queue/batch.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

const tmp = useTempDbs('northstar-queue-batch-');

type Op =
  | { op: 'claim'; types: string[] | null; max: number }
  | { op: 'enqueue'; type: string; priority: number }
  | { op: 'fail' | 'complete'; pick: number }
  | { op: 'cancel'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('claim' as const), types: fc.constantFrom(null, ['a'], ['b'], ['b', 'a']), max: fc.constantFrom(1, 2, 5, 40) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('enqueue' as const), type: fc.constantFrom('a', 'b'), priority: fc.integer({ min: -1, max: 1 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('fail' as const, 'complete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cancel' as const), pick: fc.nat() }) },
);

/** What an answer looks like, comparable across the two databases: claimed tasks as their id, token, type and attempt. */
function answer(v: unknown): unknown {
  if (!Array.isArray(v)) return v;
  return v.map((t: unknown) => {
    if (typeof t !== 'object' || t === null) return t;
    const c = t as ClaimedTask;
    return [c.id, c.token, c.type, c.attempt];
  });
}

describe('calls made together (one transaction) answer as the same calls one at a time', () => {
  it('claims with their heads and read-ahead, fails, completes, cancels and enqueues, in any mix (seed printed)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ type: fc.constantFrom('a', 'b'), priority: fc.integer({ min: -1, max: 1 }) }), { minLength: 20, maxLength: 120 }),
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 6 }),
        async (initial, rounds) => {
          const clock = (): number => 5_000_000;
          run++;
          const dbs = [tmp.openDb({}, `alone${run}`), tmp.openDb({}, `together${run}`)];
          const alone = openQueue(dbs[0]!, 'q', { clock });
          const together = openQueue(dbs[1]!, 'q', { clock });
          try {
            for (const q of [alone, together]) await q.enqueue(initial);
            // Claimed tasks so far: plain data, the same on both sides (checked each round).
            const held: ClaimedTask[] = [];
            for (const round of rounds) {
              const calls = (q: Queue): Array<() => Promise<unknown>> =>
                round.map((o) => {
                  switch (o.op) {
                    case 'claim':
                      return () => q.claim({ worker: 'w', max: o.max, leaseMs: 60_000, ...(o.types === null ? {} : { types: o.types }) });
                    case 'enqueue':
                      return () => q.enqueue([{ type: o.type, priority: o.priority }]);
                    case 'fail':
                    case 'complete': {
                      const t = held.length === 0 ? null : held[o.pick % held.length]!;
                      if (t === null) return () => Promise.resolve('none held');
                      const call = o.op === 'fail' ? () => q.fail(t, { retryInMs: 0 }) : () => q.complete(t);
                      return () => call().then(() => 'ok', (e: { code?: string }) => e.code);
                    }
                    case 'cancel':
                      // Any of the first tasks: pending ones too, which may sit in a head's read-ahead.
                      return () => q.cancel(1 + (o.pick % initial.length));
                  }
                });
              const one: unknown[] = [];
              for (const c of calls(alone)) one.push(await c());
              const all = await Promise.all(calls(together).map((c) => c()));
              expect(all.map(answer)).toEqual(one.map(answer));
              round.forEach((o, i) => {
                if (o.op === 'claim') held.push(...(one[i] as ClaimedTask[]));
              });
            }
            expect(together.stats().counts).toEqual(alone.stats().counts);
            expect(together.verify().ok).toBe(true);
          } finally {
            await alone.close();
            await together.close();
            for (const db of dbs) db.close();
          }
        },
      ),
      { seed, numRuns: implementation === 'native' ? 25 : 10 },
    );
  }, 60_000);
});
