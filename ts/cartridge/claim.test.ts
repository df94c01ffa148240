// Claims through a cartridge (openQueue's `cartridge` option, ts/queue/ready.ts,
// spec/cartridge_v1.md §7 item 5): the same random history run on two databases,
// one claiming from the tree and one through a cartridge that is built,
// caught up, left stale, rebuilt and closed along the way, hands out exactly
// the same tasks with the same tokens at every step, and the cartridge is
// really used. Both implementations.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Database } from '../index.js';
import { openQueue, type ClaimedTask, type Queue } from '../queue/index.js';
import type { ReadySource, ReadyView } from '../queue/ready.js';
import { useTempDbs } from '../testing/fixtures.js';
import { openCartridge, type CartridgeService } from './serve.js';

const tmp = useTempDbs('northstar-cartridge-claim-');

const TYPES = ['a', 'b', 'c', 'd'];

type Op =
  | { op: 'enqueue'; tasks: { type: string; priority: number; delayMs: number }[] }
  | { op: 'claim'; types: string[] | null; max: number }
  | { op: 'claimMany'; n: number }
  | { op: 'complete' | 'fail' | 'failLater' | 'cancel'; pick: number }
  | { op: 'tick'; ms: number }
  | { op: 'rebuild' | 'reopenCartridge' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('enqueue' as const), tasks: fc.array(fc.record({ type: fc.constantFrom(...TYPES), priority: fc.integer({ min: 0, max: 3 }), delayMs: fc.constantFrom(0, 0, 0, 40) }), { minLength: 1, maxLength: 6 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('claim' as const), types: fc.option(fc.subarray(TYPES, { minLength: 1 }), { nil: null }), max: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('claimMany' as const), n: fc.integer({ min: 2, max: 5 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom('complete' as const, 'fail' as const, 'failLater' as const, 'cancel' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 120 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('rebuild' as const, 'reopenCartridge' as const) }) },
);

/** A ReadySource that counts the views it handed out (to prove the cartridge was used). */
class Counting implements ReadySource {
  used = 0;
  constructor(public service: CartridgeService) {}
  viewAt(txnId: number): ReadyView | null {
    const v = this.service.viewAt(txnId);
    if (v !== null) this.used++;
    return v;
  }
}

interface Side {
  db: Database;
  q: Queue;
  held: ClaimedTask[];
}

const summary = (tasks: ClaimedTask[]): string[] => tasks.map((t) => `${t.id}:${t.type}:${t.token}:${t.attempt}`);

describe('claims through a cartridge', () => {
  it('hand out exactly what claims from the tree hand out, at every step of a random history', async () => {
    const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
    console.log(`ts/cartridge/claim.test.ts: NORTHSTAR_SEED=${seed}`);
    let run = 0;
    let usedTotal = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 60 }), async (ops) => {
        run++;
        let now = 1_000_000;
        const clock = (): number => now;
        const plainDb = tmp.openDb({}, `plain-${run}`);
        const withDb = tmp.openDb({}, `with-${run}`);
        let service = openCartridge(withDb, { everyCommits: 7, deltaEntries: 20 });
        const source = new Counting(service);
        const plain: Side = { db: plainDb, q: openQueue(plainDb, 'work', { clock }), held: [] };
        const withC: Side = { db: withDb, q: openQueue(withDb, 'work', { clock, cartridge: source }), held: [] };
        try {
          for (const op of ops) {
            const results: string[][] = [];
            for (const side of [plain, withC]) {
              const { q, held } = side;
              let got: ClaimedTask[] = [];
              switch (op.op) {
                case 'enqueue':
                  results.push((await q.enqueue(op.tasks)).map(String));
                  continue;
                case 'claim':
                  got = await q.claim({ worker: 'w', types: op.types ?? undefined, max: op.max, leaseMs: 100 });
                  break;
                case 'claimMany':
                  // Several claims in one turn: one transaction, heads carried from claim to claim.
                  got = (await Promise.all(Array.from({ length: op.n }, (_, i) => q.claim({ worker: `w${i}`, types: i % 2 === 0 ? undefined : [TYPES[i % 4]!], max: 2, leaseMs: 100 })))).flat();
                  break;
                case 'tick':
                  if (side === withC) now += op.ms; // one clock for both sides
                  continue;
                case 'rebuild':
                  if (side === withC) await service.rebuild();
                  continue;
                case 'reopenCartridge':
                  if (side === withC) {
                    await service.close();
                    service = openCartridge(withDb, { everyCommits: 7, deltaEntries: 20 });
                    source.service = service;
                  }
                  continue;
                default: {
                  if (held.length === 0) continue;
                  const [t] = held.splice(op.pick % held.length, 1);
                  const outcome =
                    op.op === 'complete'
                      ? q.complete(t!, { ok: true })
                      : op.op === 'cancel'
                        ? q.cancel(t!.id)
                        : q.fail(t!, { error: 'x', retryInMs: op.op === 'fail' ? 0 : 30 });
                  results.push([String(await outcome.then(() => 'ok', (e: { code?: string }) => e.code))]);
                  continue;
                }
              }
              held.push(...got);
              results.push(summary(got));
            }
            if (results.length === 2) expect(results[1], JSON.stringify(op)).toEqual(results[0]);
          }
          usedTotal += source.used;
        } finally {
          await plain.q.close();
          await withC.q.close();
          await service.close();
          plainDb.close();
          withDb.close();
        }
      }),
      { seed, numRuns: 12 },
    );
    expect(usedTotal, 'claims found their candidates through the cartridge').toBeGreaterThan(0);
  }, 120_000);

  it('a claim re-checks every candidate: with a view that still lists claimed tasks, nothing is handed out twice', async () => {
    const db = tmp.openDb();
    const setup = openQueue(db, 'work');
    await setup.enqueue(Array.from({ length: 10 }, (_, i) => ({ type: 'a', priority: i % 3 })));
    await setup.close();
    const service = openCartridge(db);
    await service.rebuild();
    // A view frozen at the rebuild: it lists all ten tasks however many are claimed.
    const frozen = service.viewAt(db.txnId)!;
    const stale = [...frozen.walk('work', 'a')];
    let calls = 0;
    const q = openQueue(db, 'work', {
      cartridge: {
        viewAt: () => {
          calls++;
          return { types: () => ['a'], walk: () => stale[Symbol.iterator]() };
        },
      },
    });
    const seen = new Set<number>();
    for (let i = 0; i < 5; i++) for (const t of await q.claim({ worker: 'w', max: 3 })) {
      expect(seen.has(t.id), `task ${t.id} handed out twice`).toBe(false);
      seen.add(t.id);
    }
    expect(seen.size).toBe(10);
    expect(calls).toBeGreaterThan(1);
    expect(q.verify().ok).toBe(true);
    await q.close();
    await service.close();
  });
});
