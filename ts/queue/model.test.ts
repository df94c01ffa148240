// Model-based property test of the task queue (spec/task_queue_v0.md §4)
// against a plain reference model: random interleavings of enqueue, claim,
// complete, fail, renew, cancel, requeue and a clock that moves (lease expiry,
// delays), with answers from stale claims among them. After every step every
// task must agree with the model; verify() must pass at the end of each run.
// A failure prints the seed: NORTHSTAR_SEED=<seed> replays it.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { implementation, NorthstarError, openQueue, type ClaimedTask } from '../index.js';
import { useTempDbs } from '../testing/fixtures.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/queue/model.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

const tmp = useTempDbs('northstar-queue-model-');

type State = 'pending' | 'claimed' | 'done' | 'dead' | 'cancelled';

interface ModelTask {
  id: number;
  type: string;
  priority: number;
  state: State;
  readyAt: number;
  attempt: number;
  maxAttempts: number;
  token: number;
  leaseUntil: number;
  key: string;
}

type Op =
  | { op: 'enqueue'; type: string; priority: number; delayMs: number; key: string; maxAttempts: number }
  | { op: 'claim'; types: string[] | null; max: number; leaseMs: number }
  | { op: 'complete' | 'fail' | 'renew'; pick: number; ms: number }
  | { op: 'cancel' | 'requeue'; pick: number }
  | { op: 'advance'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('enqueue' as const),
    type: fc.constantFrom('a', 'b'),
    priority: fc.integer({ min: -2, max: 2 }),
    delayMs: fc.constantFrom(0, 0, 50, 300),
    key: fc.constantFrom('', '', 'k1', 'k2'),
    maxAttempts: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ op: fc.constant('claim' as const), types: fc.constantFrom(null, ['a'], ['b'], ['b', 'a']), max: fc.integer({ min: 1, max: 3 }), leaseMs: fc.constantFrom(100, 1_000) }),
  fc.record({ op: fc.constantFrom('complete' as const, 'fail' as const, 'renew' as const), pick: fc.nat(), ms: fc.constantFrom(0, 100, 1_000) }),
  fc.record({ op: fc.constantFrom('cancel' as const, 'requeue' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(10, 60, 120, 1_100) }),
);

class Model {
  readonly tasks = new Map<number, ModelTask>();
  now = 1_000_000;
  seq = 0;
  token = 0;

  liveKey(key: string): ModelTask | undefined {
    if (key === '') return undefined;
    return [...this.tasks.values()].find((t) => t.key === key && (t.state === 'pending' || t.state === 'claimed'));
  }

  enqueue(o: Extract<Op, { op: 'enqueue' }>): number {
    const live = this.liveKey(o.key);
    if (live) return live.id;
    const id = ++this.seq;
    this.tasks.set(id, { id, type: o.type, priority: o.priority, state: 'pending', readyAt: this.now + o.delayMs, attempt: 0, maxAttempts: o.maxAttempts, token: 0, leaseUntil: 0, key: o.key });
    return id;
  }

  private requeueAfter(t: ModelTask, delay: number): void {
    t.leaseUntil = 0;
    if (t.attempt >= t.maxAttempts) t.state = 'dead';
    else {
      t.state = 'pending';
      t.readyAt = this.now + delay;
    }
  }

  claim(o: Extract<Op, { op: 'claim' }>): Array<[number, number]> {
    for (const t of [...this.tasks.values()].sort((a, b) => a.leaseUntil - b.leaseUntil || a.id - b.id)) {
      if (t.state === 'claimed' && t.leaseUntil <= this.now) this.requeueAfter(t, 0);
    }
    const ready = [...this.tasks.values()]
      .filter((t) => t.state === 'pending' && t.readyAt <= this.now && (o.types === null || o.types.includes(t.type)))
      .sort((a, b) => b.priority - a.priority || a.readyAt - b.readyAt || a.id - b.id)
      .slice(0, o.max);
    return ready.map((t) => {
      t.state = 'claimed';
      t.attempt++;
      t.token = ++this.token;
      t.leaseUntil = this.now + o.leaseMs;
      return [t.id, t.token];
    });
  }

  /** The outcome of complete/fail/renew with claim (id, token): 'ok' or 'LeaseLost'. */
  answer(op: 'complete' | 'fail' | 'renew', id: number, token: number, ms: number): string {
    const t = this.tasks.get(id)!;
    if (t.state !== 'claimed' || t.token !== token) return 'LeaseLost';
    if (op === 'complete') {
      t.state = 'done';
      t.leaseUntil = 0;
    } else if (op === 'fail') this.requeueAfter(t, ms);
    else t.leaseUntil = this.now + Math.max(1, ms);
    return 'ok';
  }

  cancel(id: number): boolean {
    const t = this.tasks.get(id);
    if (!t || (t.state !== 'pending' && t.state !== 'claimed')) return false;
    t.state = 'cancelled';
    t.leaseUntil = 0;
    return true;
  }

  requeue(id: number): boolean | 'InvalidArgument' {
    const t = this.tasks.get(id);
    if (!t || t.state === 'pending' || t.state === 'done') return false;
    if (t.state !== 'claimed' && t.key !== '') {
      const live = this.liveKey(t.key);
      if (live && live.id !== t.id) return 'InvalidArgument';
    }
    t.state = 'pending';
    t.attempt = 0;
    t.leaseUntil = 0;
    t.readyAt = this.now;
    return true;
  }
}

async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof NorthstarError) return err.code;
    throw err;
  }
}

describe('the task queue against a reference model', () => {
  it('agrees after every step of random interleavings (leases, delays, stale answers)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 60 }), async (ops) => {
        const model = new Model();
        const db = tmp.openDb({}, `model-${run++}`);
        const q = openQueue(db, 'm', { clock: () => model.now, retention: { finishedMs: Infinity, maxFinished: Infinity } });
        const claims: ClaimedTask[] = [];
        try {
          for (const [step, o] of ops.entries()) {
            const where = `step ${step}: ${JSON.stringify(o)}`;
            switch (o.op) {
              case 'enqueue':
                expect(await q.enqueue([{ type: o.type, priority: o.priority, delayMs: o.delayMs, maxAttempts: o.maxAttempts, ...(o.key === '' ? {} : { key: o.key }) }]), where).toEqual([model.enqueue(o)]);
                break;
              case 'claim': {
                const got = await q.claim({ worker: 'w', types: o.types ?? undefined, max: o.max, leaseMs: o.leaseMs } as Parameters<typeof q.claim>[0]);
                expect(
                  got.map((t) => [t.id, t.token]),
                  where,
                ).toEqual(model.claim(o));
                claims.push(...got);
                break;
              }
              case 'complete':
              case 'fail':
              case 'renew': {
                if (claims.length === 0) break;
                const c = claims[o.pick % claims.length]!;
                const want = model.answer(o.op, c.id, c.token, o.ms);
                const p = o.op === 'complete' ? q.complete(c) : o.op === 'fail' ? q.fail(c, { error: 'x', retryInMs: o.ms }) : q.renew(c, Math.max(1, o.ms));
                const got = await outcome(p);
                expect(got === 'LeaseLost' ? 'LeaseLost' : 'ok', where).toBe(want);
                break;
              }
              case 'cancel':
              case 'requeue': {
                if (model.seq === 0) break;
                const id = (o.pick % model.seq) + 1;
                const want = o.op === 'cancel' ? model.cancel(id) : model.requeue(id);
                expect(await outcome(o.op === 'cancel' ? q.cancel(id) : q.requeue(id)), where).toBe(want);
                break;
              }
              case 'advance':
                model.now += o.ms;
                break;
            }
            for (const t of model.tasks.values()) {
              const got = q.get(t.id)!;
              const want: Record<string, unknown> = { state: t.state, attempt: t.attempt, priority: t.priority, type: t.type };
              if (t.state === 'claimed') Object.assign(want, { token: t.token, leaseUntil: t.leaseUntil });
              if (t.state === 'pending') want.readyAt = t.readyAt;
              expect(got, `${where}: task ${t.id}`).toMatchObject(want);
            }
          }
          const counts = { pending: 0, claimed: 0, done: 0, dead: 0, cancelled: 0 };
          for (const t of model.tasks.values()) counts[t.state]++;
          expect(q.stats().counts).toEqual(counts);
          const report = q.verify();
          expect(report.problems).toEqual([]);
        } finally {
          await q.close();
          db.close();
        }
      }),
      { seed, numRuns: 40 },
    );
  }, 120_000);
});
