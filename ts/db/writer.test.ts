// Taking the writer (ts/db/writer.ts, spec/concurrency_v0.md §5, §5.2): the
// synchronous beginWrite, and the waits that never block the event loop
// (beginWriteAsync, write), served in the order they were asked within a
// handle, across handles of one thread, and across worker threads and
// processes.

import { describe, expect, it } from 'vitest';
import { NorthstarError, open, type Database, type WriteTxn } from '../index.js';
import { expectCode, expectVerified, latestValue, useTempDbs } from '../testing/fixtures.js';
import { usePeers, type Peer } from '../testing/peers.js';
import { implementation } from '../native/kernels.js';
import { W_SEQ } from '../shared/layout.js';
import { openStore } from '../shared/store.js';
import { engineOfDatabase } from './internal.js';

const tmp = useTempDbs('northstar-writer-');
const peers = usePeers();

const TIMEOUT = 30_000;

function two(): [Database, Database] {
  const a = tmp.openDb();
  const b = tmp.track(open(tmp.dbPath(), { sync: 'none' }));
  return [a, b];
}

const value = latestValue;

/** Appends `id` to key 'order' in `w` and commits. */
function append(w: WriteTxn, id: string): number {
  const before = w.get('order')?.toString();
  w.put('order', before === undefined ? id : `${before},${id}`);
  return w.commit();
}

/** Resolves after the timers and I/O callbacks queued now have run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('beginWriteAsync', () => {
  it('a second handle in the same thread gets the writer when the first commits, while the event loop keeps running timers', async () => {
    const [a, b] = two();
    const held = a.beginWrite();
    held.put('k', 'a');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      let got: WriteTxn | null = null;
      const waiting = b.beginWriteAsync().then((w) => (got = w));
      // The wait goes on for a while: timers fire, nothing resolves while `a` holds the writer.
      const seen = ticks;
      while (ticks < seen + 20) await new Promise((resolve) => setTimeout(resolve, 1));
      expect(got).toBeNull();
      expect(b.stats().writerWaiters).toBe(1);
      held.commit();
      const w = await waiting;
      expect(w.txnId).toBe(2);
      expect(w.get('k')?.toString()).toBe('a');
      w.put('k', 'b');
      expect(w.commit()).toBe(2);
      expect(value(a, 'k')).toBe('b');
      expect(b.stats().writerWaiters).toBe(0);
    } finally {
      clearInterval(timer);
    }
    expectVerified(a);
  });

  it('resolves at once when the writer is free, and waits its turn behind an open transaction of its own handle', async () => {
    const db = tmp.openDb();
    const w1 = await db.beginWriteAsync();
    let second: WriteTxn | null = null;
    const p2 = db.beginWriteAsync().then((w) => (second = w));
    await turn();
    expect(second).toBeNull();
    append(w1, '1');
    append(await p2, '2');
    expect(value(db, 'order')).toBe('1,2');
  });

  it('serves the calls of one thread in the order they were made, across handles', async () => {
    const [a, b] = two();
    const c = tmp.track(open(tmp.dbPath(), { sync: 'none' }));
    const held = a.beginWrite();
    const order: string[] = [];
    const asks: Array<[Database, string]> = [
      [b, 'b1'],
      [c, 'c1'],
      [b, 'b2'],
      [a, 'a1'],
      [c, 'c2'],
    ];
    const done = asks.map(([db, id]) =>
      db.beginWriteAsync().then((w) => {
        order.push(id);
        append(w, id);
      }),
    );
    await turn();
    append(held, 'held');
    await Promise.all(done);
    expect(order).toEqual(['b1', 'c1', 'b2', 'a1', 'c2']);
    expect(value(c, 'order')).toBe('held,b1,c1,b2,a1,c2');
    expectVerified(a);
  });

  it('a queued waiter comes before a later synchronous beginWrite, even when the lock is free for a moment', async () => {
    const [a, b] = two();
    const held = a.beginWrite();
    const waiting = b.beginWriteAsync();
    append(held, '1');
    // The lock is free now, but b asked first: a's try fails until b has had its turn.
    expectCode(() => a.beginWrite(), 'WriteBusy');
    append(await waiting, '2');
    append(a.beginWrite(), '3');
    expect(value(a, 'order')).toBe('1,2,3');
  });

  it('gives up with WriteBusy after timeoutMs, and the waiters behind it go on', async () => {
    const [a, b] = two();
    const held = a.beginWrite();
    const short = b.beginWriteAsync({ timeoutMs: 20 });
    const long = b.beginWriteAsync({ timeoutMs: 60_000 });
    await expect(short).rejects.toMatchObject({ code: 'WriteBusy' });
    append(held, '1');
    append(await long, '2');
    expect(value(a, 'order')).toBe('1,2');
  });

  it('an AbortSignal ends the wait with Aborted (its reason as the cause); an aborted signal rejects at once', async () => {
    const [a, b] = two();
    const held = a.beginWrite();
    const ac = new AbortController();
    const aborted = b.beginWriteAsync({ signal: ac.signal });
    const behind = b.beginWriteAsync();
    const reason = new Error('agent cancelled');
    ac.abort(reason);
    const err = await aborted.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NorthstarError);
    expect((err as NorthstarError).code).toBe('Aborted');
    expect((err as NorthstarError).cause).toBe(reason);
    await expect(b.beginWriteAsync({ signal: ac.signal })).rejects.toMatchObject({ code: 'Aborted' });
    append(held, '1');
    append(await behind, '2');
    expect(value(a, 'order')).toBe('1,2');
  });

  it('closing the handle rejects its waiters with Closed; a closed handle rejects new calls', async () => {
    const [a, b] = two();
    const held = a.beginWrite();
    const waiting = b.beginWriteAsync();
    b.close();
    await expect(waiting).rejects.toMatchObject({ code: 'Closed' });
    await expect(b.beginWriteAsync()).rejects.toMatchObject({ code: 'Closed' });
    append(held, '1');
    expect(a.beginWrite().txnId).toBe(2);
  });

  it('a reader that must repair a half-written published block does so out of turn, not stuck behind a waiter of its own thread', async () => {
    const [a, b] = two();
    const c = tmp.track(open(tmp.dbPath(), { sync: 'none' }));
    const held = a.beginWrite();
    const waiting = b.beginWriteAsync();
    append(held, '1');
    // The lock is free, b's turn has not come round yet, and a publisher "died" mid-publish.
    const words = openStore(tmp.dbPath(), null);
    try {
      words.store(W_SEQ, words.load(W_SEQ) + 1);
      const r = c.beginRead();
      expect(r.txnId).toBe(1);
      r.close();
    } finally {
      words.close();
    }
    append(await waiting, '2');
    expect(value(c, 'order')).toBe('1,2');
    expectVerified(c);
  });

  it('bad options are InvalidArgument, as a rejected promise', async () => {
    const db = tmp.openDb();
    for (const bad of [{ timeoutMs: -1 }, { timeoutMs: Number.NaN }, { timeoutMs: '5' }, { signal: {} }, null]) {
      await expect(db.beginWriteAsync(bad as never)).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
    expect(db.stats().writer).toBe(false);
  });
});

describe('write(fn)', () => {
  it('commits what fn did and resolves to its result once durable; a throwing fn aborts and rethrows', async () => {
    const db = tmp.openDb({ sync: 'full' });
    const got = await db.write((w) => {
      w.put('a', '1');
      return 'done';
    });
    expect(got).toBe('done');
    expect(value(db, 'a')).toBe('1');
    const boom = new Error('boom');
    await expect(
      db.write(async (w) => {
        w.put('a', '2');
        await turn();
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(value(db, 'a')).toBe('1');
    expect(db.stats().writer).toBe(false);
    // fn may end the transaction itself.
    await db.write((w) => {
      w.put('b', '1');
      w.commit();
    });
    await db.write((w) => w.abort());
    expect(db.txnId).toBe(2);
    expectVerified(db);
  });

  it('calls from many async tasks of one handle run one after the other, in order', async () => {
    const db = tmp.openDb();
    const ids = Array.from({ length: 20 }, (_, i) => String(i));
    await Promise.all(
      ids.map((id) =>
        db.write(async (w) => {
          const before = w.get('order')?.toString();
          await turn();
          w.put('order', before === undefined ? id : `${before},${id}`);
        }),
      ),
    );
    expect(value(db, 'order')).toBe(ids.join(','));
    expect(db.txnId).toBe(20);
  });
});

describe('the writer queue across threads and processes (spec/concurrency_v0.md §5.2)', () => {
  it(
    'waiters in worker threads and processes get the writer in the order they asked for it',
    async () => {
      const main = tmp.openDb();
      const held = main.beginWrite();
      const all: Peer[] = [await peers.process(), await peers.thread(), await peers.process(), await peers.thread()];
      for (const p of all) await p.call('open', { path: tmp.dbPath(), options: { sync: 'none' } });
      const replies: Array<Promise<unknown>> = [];
      for (const [i, p] of all.entries()) {
        replies.push(p.call('writeQueued', { id: i + 1 }));
        // The next peer asks only once this one holds its ticket.
        await p.waitForEvents('asked', 1);
      }
      append(held, '0');
      await Promise.all(replies);
      expect(value(main, 'order'), `${implementation} coordination`).toBe('0,1,2,3,4');
      expectVerified(main);
    },
    TIMEOUT,
  );
});

describe('take-over (spec/concurrency_v0.md §5 step 3)', () => {
  it('after commits of other handles only, applies their records to its free pages; after another handle checkpointed, rebuilds from the durable meta', () => {
    const a = tmp.openDb({ checkpoint: { commits: 1_000_000 } });
    const b = tmp.track(open(tmp.dbPath(), { sync: 'none', checkpoint: { commits: 1_000_000 } }));
    const ea = engineOfDatabase(a);
    for (let i = 0; i < 60; i++) {
      const db = i % 2 === 0 ? a : b;
      const w = db.beginWrite();
      for (let k = 0; k < 20; k++) w.put(`k${(i * 7 + k) % 50}`, `v${i}-${'x'.repeat(200)}`);
      if (i % 5 === 4) w.del(`k${i % 50}`);
      w.commit();
    }
    // a created the database and wrote first: every take-over after b's commits is incremental.
    expect(ea.takeOvers).toEqual({ incremental: 29, rebuilt: 0 });
    expect(b.stats().checkpoint.txnId).toBe(0);
    b.checkpoint();
    expect(b.stats().checkpoint.txnId).toBe(60);
    const w = a.beginWrite();
    w.put('after', 'checkpoint');
    w.commit();
    expect(ea.takeOvers).toEqual({ incremental: 29, rebuilt: 1 });
    expectVerified(a);
    expectVerified(b);
    expect(value(b, 'after')).toBe('checkpoint');
    expect(value(b, 'k3')).toBe(value(a, 'k3'));
  });
});

describe('take-over after this handle checkpointed', () => {
  it("the chains' pages a checkpoint took past the end of the file stay taken when the next take-over applies another handle's commits", () => {
    for (let round = 0; round < 3; round++) {
      const a = tmp.openDb({ checkpoint: { commits: 1_000_000 } }, `ck${round}`);
      const b = tmp.track(open(tmp.dbPath(`ck${round}`), { sync: 'none', checkpoint: { commits: 1_000_000 } }));
      const write = (db: Database, i: number): void => {
        const w = db.beginWrite();
        for (let k = 0; k < 30; k++) w.put(`k${(i * 13 + k) % 300}`, `v${i}-${'y'.repeat(300)}`);
        w.commit();
      };
      for (let i = 0; i < 10; i++) write(a, i);
      a.checkpoint(); // its chains: pages past the end (nothing is free yet)
      for (let i = 10; i < 14; i++) write(b, i);
      for (let i = 14; i < 30; i++) write(i % 2 ? a : b, i);
      expect(engineOfDatabase(a).takeOvers.incremental).toBeGreaterThan(0);
      expectVerified(a);
      expectVerified(b);
    }
  });
});
