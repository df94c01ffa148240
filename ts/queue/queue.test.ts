// The task queue through its public API (ts/queue/queue.ts,
// spec/task_queue_v0.md): every transition, fencing, leases on a clock the
// test moves, idempotency keys, transactional completion and enqueue, purge
// and retention, waiting claims, workers, and verify() finding damage.

import { describe, expect, it } from 'vitest';
import { open, openQueue, NorthstarError, type ClaimedTask, type Database, type Queue, type QueueOptions } from '../index.js';
import { expectVerified, useTempDbs } from '../testing/fixtures.js';
import { QueueKeys } from './keys.js';

const tmp = useTempDbs('northstar-queue-');

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

function setup(options: QueueOptions = {}, dbOptions = {}): { db: Database; q: Queue; clock: ReturnType<typeof manualClock> } {
  const clock = manualClock();
  const db = tmp.openDb(dbOptions);
  const q = openQueue(db, 'work', { clock: clock.now, ...options });
  return { db, q, clock };
}

async function expectRejects(p: Promise<unknown>, code: string): Promise<NorthstarError> {
  let thrown: unknown;
  try {
    await p;
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(NorthstarError);
  expect((thrown as NorthstarError).code, String(thrown)).toBe(code);
  return thrown as NorthstarError;
}

function expectQueueVerified(q: Queue): void {
  const report = q.verify();
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
}

describe('the task life cycle', () => {
  it('enqueue, claim, complete: the result is stored, the counts follow, the indexes agree', async () => {
    const { db, q, clock } = setup({}, { sync: 'full' });
    const [id] = await q.enqueue([{ type: 'build', payload: { repo: 'x' }, priority: 5 }]);
    expect(id).toBe(1);
    expect(q.get(id!)).toMatchObject({ id: 1, type: 'build', state: 'pending', priority: 5, attempt: 0, maxAttempts: 5, payload: { repo: 'x' } });
    expect(q.stats()).toMatchObject({ counts: { pending: 1, claimed: 0, done: 0 }, oldestReadyAgeMs: 0, enqueued: 1 });
    clock.advance(250);
    expect(q.stats().oldestReadyAgeMs).toBe(250);
    const [t] = await q.claim({ worker: 'agent-7', leaseMs: 30_000 });
    expect(t).toMatchObject({ id: 1, type: 'build', payload: { repo: 'x' }, priority: 5, attempt: 1, token: 1, worker: 'agent-7', leaseUntil: clock.now() + 30_000 });
    expect(q.get(1)).toMatchObject({ state: 'claimed', worker: 'agent-7', token: 1, leaseUntil: clock.now() + 30_000 });
    expect(q.stats()).toMatchObject({ counts: { pending: 0, claimed: 1 }, oldestReadyAgeMs: null, claims: 1 });
    await q.complete(t!, { ok: true });
    expect(q.get(1)).toMatchObject({ state: 'done', result: { ok: true }, finishedAt: clock.now() });
    expect(q.stats()).toMatchObject({ counts: { claimed: 0, done: 1 }, byType: { build: { done: 1 } }, claims: 1, completions: 1 });
    expect(await q.claim({ worker: 'agent-7' })).toEqual([]);
    expectQueueVerified(q);
    expectVerified(db);
  });

  it('claims the highest priority first, then the oldest; types filter; max takes several in one claim', async () => {
    const { q, clock } = setup();
    await q.enqueue([{ type: 'a', payload: 1 }]);
    clock.advance(1);
    await q.enqueue([{ type: 'b', payload: 2, priority: 3 }]);
    clock.advance(1);
    await q.enqueue([
      { type: 'a', payload: 3, priority: 3 },
      { type: 'c', payload: 4, priority: -2 },
      { type: 'a', payload: 5 },
    ]);
    expect((await q.claim({ worker: 'w', types: ['a'], max: 2 })).map((t) => t.payload)).toEqual([3, 1]);
    expect((await q.claim({ worker: 'w', max: 10 })).map((t) => t.payload)).toEqual([2, 5, 4]);
    expectQueueVerified(q);
  });

  it('a delayed task is claimable only from its ready time', async () => {
    const { q, clock } = setup();
    const [id] = await q.enqueue([{ type: 't', delayMs: 5_000 }]);
    expect(await q.claim({ worker: 'w' })).toEqual([]);
    expect(q.stats().oldestReadyAgeMs).toBeNull();
    expectQueueVerified(q);
    clock.advance(4_999);
    expect(await q.claim({ worker: 'w' })).toEqual([]);
    clock.advance(1);
    expect((await q.claim({ worker: 'w' })).map((t) => t.id)).toEqual([id]);
    expectQueueVerified(q);
  });

  it('fencing: an expired lease is claimable again with a newer token; the old claim can change nothing (LeaseLost)', async () => {
    const { q, clock } = setup();
    await q.enqueue([{ type: 't', payload: 'x' }]);
    const [first] = await q.claim({ worker: 'slow', leaseMs: 1_000 });
    clock.advance(999);
    expect(await q.claim({ worker: 'fast' })).toEqual([]);
    clock.advance(1);
    const [second] = await q.claim({ worker: 'fast', leaseMs: 1_000 });
    expect(second).toMatchObject({ id: first!.id, attempt: 2, worker: 'fast' });
    expect(second!.token).toBeGreaterThan(first!.token);
    expect(q.get(first!.id)!.error).toBe('lease expired (worker slow, token 1)');
    await expectRejects(q.complete(first!, 'stale'), 'LeaseLost');
    await expectRejects(q.fail(first!, { error: 'stale' }), 'LeaseLost');
    await expectRejects(q.renew(first!, 10_000), 'LeaseLost');
    expect(q.get(first!.id)).toMatchObject({ state: 'claimed', token: second!.token, worker: 'fast' });
    await q.complete(second!, 'fresh');
    expect(q.get(first!.id)).toMatchObject({ state: 'done', result: 'fresh' });
    await expectRejects(q.complete(second!, 'twice'), 'LeaseLost');
    expectQueueVerified(q);
  });

  it('a lease that expired but was not claimed again still completes (its token is still the current one)', async () => {
    const { q, clock } = setup();
    await q.enqueue([{ type: 't' }]);
    const [t] = await q.claim({ worker: 'w', leaseMs: 100 });
    clock.advance(500);
    await q.complete(t!, 1);
    expect(q.get(t!.id)!.state).toBe('done');
    expectQueueVerified(q);
  });

  it('fail: pending again after retryInMs with the error stored; dead after maxAttempts claims', async () => {
    const { q, clock } = setup();
    const [id] = await q.enqueue([{ type: 't', maxAttempts: 2 }]);
    const [a] = await q.claim({ worker: 'w' });
    await q.fail(a!, { error: { why: 'timeout' }, retryInMs: 5_000 });
    expect(q.get(id!)).toMatchObject({ state: 'pending', attempt: 1, error: { why: 'timeout' }, readyAt: clock.now() + 5_000 });
    expect(await q.claim({ worker: 'w' })).toEqual([]);
    clock.advance(5_000);
    const [b] = await q.claim({ worker: 'w' });
    expect(b!.attempt).toBe(2);
    await q.fail(b!, { error: 'again' });
    expect(q.get(id!)).toMatchObject({ state: 'dead', attempt: 2, error: 'again' });
    expect(q.stats().counts.dead).toBe(1);
    expectQueueVerified(q);
  });

  it('an expired lease on the last attempt makes the task dead', async () => {
    const { q, clock } = setup();
    const [id] = await q.enqueue([{ type: 't', maxAttempts: 1 }]);
    await q.claim({ worker: 'w', leaseMs: 10 });
    clock.advance(10);
    expect(await q.claim({ worker: 'w' })).toEqual([]);
    expect(q.get(id!)!.state).toBe('dead');
    expectQueueVerified(q);
  });

  it('renew moves the lease (same token) and updates the task object', async () => {
    const { q, clock } = setup();
    await q.enqueue([{ type: 't' }]);
    const [t] = await q.claim({ worker: 'w', leaseMs: 1_000 });
    clock.advance(900);
    expect(await q.renew(t!, 1_000)).toBe(clock.now() + 1_000);
    expect(t!.leaseUntil).toBe(clock.now() + 1_000);
    clock.advance(900);
    expect(await q.claim({ worker: 'other' })).toEqual([]);
    await q.complete(t!);
    expectQueueVerified(q);
  });

  it('cancel: pending and claimed tasks (the claim is lost); false for finished or unknown ones', async () => {
    const { q } = setup();
    const [a, b, c] = await q.enqueue([{ type: 't' }, { type: 't' }, { type: 't', delayMs: 60_000 }]);
    const [claimed] = await q.claim({ worker: 'w' });
    expect(claimed!.id).toBe(a);
    expect(await q.cancel(a!)).toBe(true);
    expect(await q.cancel(c!)).toBe(true);
    await expectRejects(q.complete(claimed!), 'LeaseLost');
    expect(await q.cancel(a!)).toBe(false);
    expect(await q.cancel(999)).toBe(false);
    expect(q.get(a!)!.state).toBe('cancelled');
    expect(q.get(b!)!.state).toBe('pending');
    expect(q.stats().counts).toMatchObject({ pending: 1, cancelled: 2 });
    expectQueueVerified(q);
  });

  it('requeue: claimed, dead and cancelled tasks are pending again with attempts from 0', async () => {
    const { q } = setup();
    const [a, b] = await q.enqueue([{ type: 't', maxAttempts: 1 }, { type: 't' }]);
    const [ta] = await q.claim({ worker: 'w' });
    await q.fail(ta!, { error: 'x' });
    expect(q.get(a!)!.state).toBe('dead');
    expect(await q.requeue(a!)).toBe(true);
    expect(q.get(a!)).toMatchObject({ state: 'pending', attempt: 0 });
    expect(await q.requeue(b!)).toBe(false);
    const got = await q.claim({ worker: 'w', max: 2 });
    expect(await q.requeue(got[0]!.id)).toBe(true);
    await expectRejects(q.complete(got[0]!), 'LeaseLost');
    expectQueueVerified(q);
  });

  it('an idempotency key returns the live task for the same key; once it finished, the key makes a new task', async () => {
    const { q } = setup();
    const [a, again] = await q.enqueue([
      { type: 'build', key: 'build:x@abc' },
      { type: 'build', key: 'build:x@abc' },
    ]);
    expect(again).toBe(a);
    expect(await q.enqueue([{ type: 'build', key: 'build:x@abc', payload: 'ignored' }])).toEqual([a]);
    expect(q.get(a!)!.key).toBe('build:x@abc');
    const [t] = await q.claim({ worker: 'w' });
    expect(await q.enqueue([{ type: 'build', key: 'build:x@abc' }])).toEqual([a]);
    await q.complete(t!);
    const [fresh] = await q.enqueue([{ type: 'build', key: 'build:x@abc' }]);
    expect(fresh).not.toBe(a);
    expectQueueVerified(q);
  });

  it('payloads, results and errors come back as given: JSON values, and bytes as bytes', async () => {
    const { q } = setup();
    const bytes = new Uint8Array([0, 1, 2, 255]);
    const payloads = [null, 0, 'text', [1, { a: [true, null] }], { nested: { deep: 'x' } }, bytes];
    const ids = await q.enqueue(payloads.map((payload) => ({ type: 't', payload })));
    const got = await q.claim({ worker: 'w', max: 10 });
    expect(got.map((t) => t.payload)).toEqual(payloads.map((p) => (p instanceof Uint8Array ? Buffer.from(p) : p)));
    expect(q.get(ids[5]!)!.payload).toBeInstanceOf(Buffer);
    await q.complete(got[5]!, bytes);
    expect(q.get(ids[5]!)!.result).toEqual(Buffer.from(bytes));
    expectQueueVerified(q);
  });

  it('bad input is InvalidArgument and changes nothing', async () => {
    const { db, q } = setup({ maxPayloadBytes: 100 });
    const before = db.txnId;
    await expectRejects(q.enqueue([{ type: 't', payload: 'x'.repeat(200) }]), 'InvalidArgument');
    await expectRejects(q.enqueue([{ type: 't' }, { type: '' }]), 'InvalidArgument');
    await expectRejects(q.enqueue([{ type: 't', payload: () => 1 }]), 'InvalidArgument');
    await expectRejects(q.enqueue([{ type: 't', priority: 1.5 }]), 'InvalidArgument');
    await expectRejects(q.enqueue([{ type: 't', delayMs: -1 }]), 'InvalidArgument');
    await expectRejects(q.enqueue([{ type: 't', maxAttempts: 0 }]), 'InvalidArgument');
    await expectRejects(q.enqueue([{ type: 'a\u0000b' }]), 'InvalidArgument');
    await expectRejects(q.enqueue({ type: 't' } as never), 'InvalidArgument');
    await expectRejects(q.claim({ worker: 'w', leaseMs: -5 }), 'InvalidArgument');
    await expectRejects(q.claim({ worker: '' }), 'InvalidArgument');
    await expectRejects(q.claim({ worker: 'w', types: [] }), 'InvalidArgument');
    await expectRejects(q.claim({ worker: 'w', max: 0 }), 'InvalidArgument');
    await expectRejects(q.complete({ id: 77, token: 1 }), 'InvalidArgument');
    await expectRejects(q.complete({ id: -1, token: 1 } as ClaimedTask), 'InvalidArgument');
    await expectRejects(q.fail({ id: 1, token: 1 }, { retryInMs: Number.NaN }), 'InvalidArgument');
    await expectRejects(q.cancel(0), 'InvalidArgument');
    expect(() => q.get(1.5)).toThrow(NorthstarError);
    expect(() => openQueue(db, '')).toThrow(NorthstarError);
    expect(() => openQueue(db, 'x'.repeat(65))).toThrow(NorthstarError);
    expect(db.txnId).toBe(before);
    expect(q.stats().enqueued).toBe(0);
  });

  it('a refused call in a batch fails alone; the others of its transaction commit', async () => {
    const { db, q } = setup();
    await q.enqueue([{ type: 't' }, { type: 't' }]);
    const [a, b] = await q.claim({ worker: 'w', max: 2 });
    const before = db.txnId;
    const results = await Promise.allSettled([q.complete(a!), q.complete({ id: b!.id, token: 999 }), q.complete(b!)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(db.txnId, 'one transaction').toBe(before + 1);
    expect(q.stats().counts.done).toBe(2);
    expectQueueVerified(q);
  });

  it('several named queues in one database stay apart, and user keys are never touched', async () => {
    const db = tmp.openDb();
    const w = db.beginWrite();
    w.put('user', 'data');
    w.commit();
    const a = openQueue(db, 'a');
    const b = openQueue(db, 'b');
    await a.enqueue([{ type: 't', payload: 'a' }]);
    await b.enqueue([{ type: 't', payload: 'b' }]);
    expect((await a.claim({ worker: 'w', max: 5 })).map((t) => t.payload)).toEqual(['a']);
    expect(b.stats().counts.pending).toBe(1);
    const r = db.beginRead();
    expect(r.get('user')?.toString()).toBe('data');
    r.close();
    expectQueueVerified(a);
    expectQueueVerified(b);
  });
});

describe('transactions', () => {
  it('complete with a callback: its writes and the completion commit together; a throwing callback leaves both undone', async () => {
    const { db, q } = setup();
    await q.enqueue([{ type: 't' }, { type: 't' }]);
    const [a, b] = await q.claim({ worker: 'w', max: 2 });
    await q.complete(a!, 'ok', (w) => w.put('artifact:a', 'bytes'));
    const r = db.beginRead();
    expect(r.get('artifact:a')?.toString()).toBe('bytes');
    r.close();
    await expect(
      q.complete(b!, 'ok', (w) => {
        w.put('artifact:b', 'bytes');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(q.get(b!.id)!.state).toBe('claimed');
    const r2 = db.beginRead();
    expect(r2.get('artifact:b')).toBeUndefined();
    r2.close();
    await q.complete(b!, 'ok', async (w) => {
      await new Promise((res) => setTimeout(res, 1));
      w.put('artifact:b', 'later');
    });
    expect(q.get(b!.id)!.state).toBe('done');
    expectQueueVerified(q);
  });

  it('enqueueIn: the tasks exist exactly when the caller commits (outbox)', async () => {
    const { db, q } = setup();
    const w = db.beginWrite();
    w.put('order:1', 'o');
    const [id] = q.enqueueIn(w, [{ type: 'ship', payload: { order: 1 } }]);
    w.abort();
    expect(q.get(id!)).toBeUndefined();
    expect(q.stats().enqueued).toBe(0);
    const w2 = db.beginWrite();
    w2.put('order:1', 'o');
    const [id2] = q.enqueueIn(w2, [{ type: 'ship', payload: { order: 1 } }]);
    w2.commit();
    expect(q.get(id2!)).toMatchObject({ state: 'pending', payload: { order: 1 } });
    expect((await q.claim({ worker: 'w' }))[0]!.id).toBe(id2);
    expectQueueVerified(q);
  });
});

describe('purge and retention', () => {
  it('purge deletes finished tasks of the given states older than olderThanMs', async () => {
    const { q, clock } = setup({ retention: { finishedMs: Infinity, maxFinished: Infinity } });
    await q.enqueue(Array.from({ length: 6 }, () => ({ type: 't', maxAttempts: 1 })));
    const got = await q.claim({ worker: 'w', max: 6 });
    await Promise.all([q.complete(got[0]!), q.complete(got[1]!), q.fail(got[2]!), q.cancel(got[3]!.id)]);
    clock.advance(1_000);
    await q.complete(got[4]!);
    expect(await q.purge({ olderThanMs: 500 })).toBe(3);
    expect(q.get(got[0]!.id)).toBeUndefined();
    expect(q.get(got[3]!.id)!.state).toBe('cancelled');
    expect(q.get(got[4]!.id)!.state).toBe('done');
    expect(await q.purge({ states: ['cancelled'] })).toBe(1);
    expect(q.stats().counts).toMatchObject({ done: 1, dead: 0, cancelled: 0, claimed: 1 });
    await expectRejects(q.purge({ states: ['pending' as 'done'] }), 'InvalidArgument');
    expectQueueVerified(q);
  });

  it('retention deletes finished tasks past finishedMs, and the oldest beyond maxFinished, a few per transaction', async () => {
    const { q, clock } = setup({ retention: { finishedMs: 10_000, maxFinished: 5 } });
    await q.enqueue(Array.from({ length: 8 }, () => ({ type: 't' })));
    for (const t of await q.claim({ worker: 'w', max: 8 })) await q.complete(t);
    expect(q.stats().counts.done).toBe(5);
    clock.advance(10_000);
    await q.enqueue([{ type: 'u' }]);
    expect(q.stats().counts.done).toBe(0);
    expectQueueVerified(q);
  });
});

describe('waiting claims and workers', () => {
  it('a claim with waitMs wakes when another handle enqueues, and when a delayed task comes due', async () => {
    const db = tmp.openDb();
    const other = tmp.track(open(tmp.dbPath(), { sync: 'none' }));
    const q = openQueue(db, 'work');
    const q2 = openQueue(other, 'work');
    const waiting = q.claim({ worker: 'w', waitMs: 10_000 });
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await q2.enqueue([{ type: 't', payload: 'hello' }]);
    const got = await waiting;
    expect(got.map((t) => t.payload)).toEqual(['hello']);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await q.enqueue([{ type: 't', payload: 'later', delayMs: 50 }]);
    expect((await q.claim({ worker: 'w', waitMs: 10_000 })).map((t) => t.payload)).toEqual(['later']);
    const none = await q.claim({ worker: 'w', waitMs: 30 });
    expect(none).toEqual([]);
    const ac = new AbortController();
    const aborted = q.claim({ worker: 'w', waitMs: 60_000, signal: ac.signal });
    ac.abort();
    expect(await aborted).toEqual([]);
  });

  it('work(): runs the handler for each task, completes with its result, retries failures and closes gracefully', async () => {
    const db = tmp.openDb();
    const q = openQueue(db, 'work');
    const ids = await q.enqueue(Array.from({ length: 20 }, (_, i) => ({ type: 'job', payload: i, maxAttempts: 2 })));
    const seen: number[] = [];
    const worker = q.work({ concurrency: 4, leaseMs: 5_000, retryDelayMs: () => 0 }, async (task) => {
      seen.push(task.payload as number);
      if (task.payload === 7) throw new Error('seven fails');
      return (task.payload as number) * 2;
    });
    const until = Date.now() + 10_000;
    while (q.stats().counts.done + q.stats().counts.dead < 20 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    await worker.close();
    expect(q.get(ids[3]!)).toMatchObject({ state: 'done', result: 6 });
    expect(q.get(ids[7]!)).toMatchObject({ state: 'dead', attempt: 2, error: 'seven fails' });
    expect(seen.filter((p) => p === 7)).toHaveLength(2);
    expect(seen.length).toBe(21);
    expect(worker.completed).toBe(19);
    expectQueueVerified(q);
    await q.close();
  });

  it('64 concurrent claims share a few transactions and never hand out a task twice', async () => {
    const db = tmp.openDb();
    const q = openQueue(db, 'work');
    await q.enqueue(Array.from({ length: 64 }, (_, i) => ({ type: 't', payload: i })));
    const before = db.txnId;
    const got = (await Promise.all(Array.from({ length: 64 }, (_, i) => q.claim({ worker: `w${i}` })))).flat();
    expect(got).toHaveLength(64);
    expect(new Set(got.map((t) => t.id)).size).toBe(64);
    expect(new Set(got.map((t) => t.token)).size).toBe(64);
    expect(db.txnId - before).toBeLessThanOrEqual(2);
    await Promise.all(got.map((t) => q.complete(t)));
    expect(q.stats()).toMatchObject({ counts: { done: 64 }, completions: 64 });
    expectQueueVerified(q);
  });
});

describe('verify()', () => {
  it('finds index entries that disagree with the task records', async () => {
    const { db, q } = setup();
    await q.enqueue([{ type: 't' }, { type: 't', key: 'k' }]);
    const keys = new QueueKeys('work');
    const w = db.beginWrite();
    w.del(keys.age(1_000_000, 1));
    w.put(keys.lease(5, 2), new Uint8Array(0));
    w.del(keys.idempotency(Buffer.from('k')));
    w.commit();
    const report = q.verify();
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual(
      expect.arrayContaining([
        'task 1 (pending): missing from the age index',
        'lease entry (5, task 2) for no task in that state',
        'task 2 (pending): missing from the key index',
      ]),
    );
  });
});
