// Many readers, one writer across worker threads and processes
// (spec/concurrency_v0.md), with real peers: database handles in child
// processes and worker threads of this process (ts/testing/peer.ts), beside a
// handle in this thread. ts/db.handles.test.ts runs the same protocol between
// handles of one thread. Every peer inherits NORTHSTAR_NATIVE, so each vitest
// project runs the whole file on its own implementation (native: shared memory
// and flock; fallback: pread/pwrite and directory locks).
//
// Workload seeds derive from NORTHSTAR_SEED (random when unset) and are printed
// with any failure.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { describe, expect, it } from 'vitest';
import { open, type Database } from './db/index.js';
import { implementation } from './native/kernels.js';
import { nativeRequired } from './testing/parity.js';
import { acct, logKey } from './testing/peer.js';
import { expectCode, expectVerified, useTempDbs } from './testing/fixtures.js';
import { type Peer, usePeers } from './testing/peers.js';

const tmp = useTempDbs('northstar-processes-');
// Registered after the temp dirs: its afterEach (kill leftover peers) runs before theirs (remove the dir).
const peers = usePeers();

const SEED = Number(process.env.NORTHSTAR_SEED ?? Math.floor(Math.random() * 2 ** 31));
const seeded = (what: string): string => `${what} (NORTHSTAR_SEED=${SEED})`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** Per test: peers take a few hundred milliseconds to start, more when the machine is busy. */
const TIMEOUT = 30_000;

interface Opened {
  pid: number;
  isMainThread: boolean;
  implementation: string;
  coordination: string;
  txnId: number;
}

/** A peer of `kind` with the test's database open; it runs the same implementation as this thread. */
async function peerOn(kind: 'process' | 'thread', options: object = {}): Promise<Peer> {
  const p = kind === 'process' ? await peers.process() : await peers.thread();
  const o = await p.call<Opened>('open', { path: tmp.dbPath(), options: { sync: 'none', ...options } });
  expect(o.implementation).toBe(implementation);
  expect(o.coordination).toBe(implementation === 'native' ? 'native' : 'file');
  expect(o.isMainThread).toBe(kind === 'process');
  return p;
}

async function expectRejected(call: Promise<unknown>, code: string): Promise<void> {
  await expect(call).rejects.toMatchObject({ code });
}

function put(db: Database, entries: Array<[string, string]>): number {
  const w = db.beginWrite();
  for (const [k, v] of entries) w.put(k, v);
  return w.commit();
}

function scan(db: Database, txnId?: number): Array<[string, string]> {
  const r = db.beginRead(txnId === undefined ? {} : { txnId });
  try {
    return [...r.scan()].map(([k, v]) => [k.toString('latin1'), v.toString('latin1')]);
  } finally {
    r.close();
  }
}


const keyOf = (i: number): string => `k${String(i).padStart(4, '0')}`;

describe('opening from many processes and threads at once', () => {
  it('every open succeeds, on a new database and on an existing one, and all see one state', async () => {
    const all = await Promise.all([peers.process(), peers.process(), peers.process(), peers.process(), peers.thread(), peers.thread()]);
    for (let round = 0; round < 8; round++) {
      // Even rounds race to create the files, odd rounds to open the previous round's database.
      const path = tmp.dbPath(`db${round - (round % 2)}`);
      const opened = await Promise.allSettled(all.map((p) => p.call<Opened>('open', { path, options: { sync: 'none' } })));
      expect(
        opened.flatMap((o) => (o.status === 'rejected' ? [String(o.reason)] : [])),
        `round ${round}`,
      ).toEqual([]);
      const txnIds = await Promise.all(all.map((p, i) => p.call<{ txnId: number }>('write', { entries: [[`p${i}`, `r${round}`]], timeoutMs: 10_000 })));
      expect(txnIds.map((t) => t.txnId).sort((a, b) => a - b)).toEqual(all.map((_, i) => (round % 2) * all.length + i + 1));
      const views = await Promise.all(all.map((p) => p.call<{ txnId: number; entries: unknown }>('scan')));
      for (const v of views) expect(v).toEqual(views[0]);
      await Promise.all(all.map((p) => p.call('close')));
    }
  }, TIMEOUT);
});

describe('bank transfers across processes and threads', () => {
  it(
    'writers in two processes and a thread take turns; readers in threads and processes see a constant total, stable scans and snapshots that never go back; every acknowledged commit is in the end state; verify() clean',
    async () => {
      const accounts = 24;
      const total = accounts * 1000;
      // Checkpoints every 30 commits, by whichever writer is due: the next one rebuilds its free pages from that meta.
      const options = { checkpoint: { commits: 30 } };
      const db = tmp.openDb(options);
      const baseTxn = put(
        db,
        Array.from({ length: accounts }, (_, i): [string, string] => [acct(i), '1000']),
      );
      const stopFile = nodePath.join(tmp.dir, 'stop');
      // One writer syncs every commit ('full': publish follows the fdatasync); the others use
      // 'none' so the run stays short on a slow disk (publication order is the same either way).
      const writers = await Promise.all([peerOn('process', { ...options, sync: 'full' }), peerOn('process', options), peerOn('thread', options)]);
      const readers = await Promise.all([peerOn('thread'), peerOn('thread'), peerOn('process'), peerOn('process')]);
      const reading = readers.map((r, i) =>
        r.call<{ snapshots: number; distinct: number; travels: number; last: number; problems: string[] }>('bankReader', {
          accounts,
          total,
          baseTxn,
          stopFile,
          maxMs: 60_000,
          seed: SEED + 100 + i,
        }),
      );
      const transfers = 60;
      const writing = writers.map((w, i) =>
        w.call<{ acked: number[] }>('bankWriter', { accounts, transfers, timeoutMs: 20_000, pauseMs: 4, tag: `w${i}`, seed: SEED + i }),
      );
      const written = await Promise.all(writing);
      fs.writeFileSync(stopFile, '');
      const read = await Promise.all(reading);

      const finalTxn = baseTxn + transfers * writers.length;
      for (const [i, r] of read.entries()) {
        expect(r.problems, seeded(`reader ${i} (${readers[i]!.kind})`)).toEqual([]);
        expect(r.snapshots).toBeGreaterThan(5);
        expect(r.distinct, 'a reader saw commits go by').toBeGreaterThan(2);
        expect(r.travels).toBeGreaterThan(0);
        expect(r.last).toBeLessThanOrEqual(finalTxn);
      }
      // Turns: each writer's commits are spread among the others', not one block.
      const owner = new Map<number, number>();
      for (const [i, w] of written.entries()) for (const t of w.acked) owner.set(t, i);
      expect([...owner.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: finalTxn - baseTxn }, (_, i) => baseTxn + 1 + i));
      let turns = 0;
      for (let t = baseTxn + 2; t <= finalTxn; t++) if (owner.get(t) !== owner.get(t - 1)) turns++;
      expect(turns, 'writers alternated').toBeGreaterThan(writers.length * 2);

      // Every acknowledged commit is in the end state, seen from here and from a reader process.
      const acks = writers.flatMap((w) => w.events.filter((e) => e.event === 'ack'));
      expect(acks).toHaveLength(finalTxn - baseTxn);
      for (const handleView of [scan(db), (await readers[2]!.call<{ entries: Array<[string, string]> }>('scan')).entries]) {
        const state = new Map(handleView);
        let sum = 0;
        for (let i = 0; i < accounts; i++) sum += Number(state.get(acct(i)));
        expect(sum).toBe(total);
        expect(handleView.filter(([k]) => k.startsWith('log:'))).toHaveLength(finalTxn - baseTxn);
        for (const a of acks) expect(state.get(logKey(a.txnId as number)), `ack of txn ${String(a.txnId)}`).toMatch(new RegExp(`^${String(a.tag)}:${String(a.i)}:`));
      }
      expect(db.txnId).toBe(finalTxn);
      await Promise.all([...writers, ...readers].map((p) => p.stop()));
      expectVerified(db);
      db.close();
      const reopened = tmp.openDb();
      expect(reopened.txnId).toBe(finalTxn);
      expectVerified(reopened);
    },
    3 * TIMEOUT,
  );
});

describe('one writer at a time across processes and threads', () => {
  it('a second writer in another process gets WriteBusy; with timeoutMs it waits and succeeds once the first commits', async () => {
    const db = tmp.openDb();
    const [a, b] = await Promise.all([peerOn('process'), peerOn('process')]);
    const t = await peerOn('thread');
    await a.call('beginWrite');
    await a.call('put', { entries: [['x', 'from a']] });
    await expectRejected(b.call('write', { entries: [['y', 'b']] }), 'WriteBusy');
    await expectRejected(t.call('write', { entries: [['y', 't']] }), 'WriteBusy');
    expectCode(() => db.beginWrite(), 'WriteBusy');
    const t0 = performance.now();
    await expectRejected(b.call('write', { entries: [['y', 'b']], timeoutMs: 150 }), 'WriteBusy');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);

    // b waits; a commits; b's beginWrite then returns, on top of a's commit. No bound on how
    // long b waited: under load b may start waiting late, or wake late. What shows it waited
    // for the commit is the order: b has not returned while a held the writer, its timeout
    // (far longer than the test) did not end the wait, and its commit comes after a's.
    let returned = false;
    const waiting = b.call<{ txnId: number; waitedMs: number }>('write', { entries: [['y', 'from b']], timeoutMs: 60_000 }).finally(() => (returned = true));
    await sleep(300);
    expect(returned, 'b got the writer while a held it').toBe(false);
    expect(await a.call('commit')).toBe(1);
    const got = await waiting;
    expect(got.txnId).toBe(2);
    expect(await t.call('read', { keys: ['x', 'y'] })).toEqual({ txnId: 2, values: ['from a', 'from b'] });

    // The same between a thread and a process.
    await t.call('beginWrite');
    await expectRejected(a.call('write', { entries: [['z', 'a']] }), 'WriteBusy');
    const waitingA = a.call<{ txnId: number }>('write', { entries: [['z', 'from a']], timeoutMs: 10_000 });
    await sleep(100);
    await t.call('abort');
    expect((await waitingA).txnId).toBe(3);
    expect(scan(db)).toEqual([
      ['x', 'from a'],
      ['y', 'from b'],
      ['z', 'from a'],
    ]);
    await Promise.all([a, b, t].map((p) => p.stop()));
    expectVerified(db);
  }, TIMEOUT);
});

describe('a writer killed with SIGKILL', () => {
  /** How a writer process dies in each case, and whether its last commit counts. */
  const cases: Array<{ name: string; die: (w: Peer) => Promise<void>; lastCounts: boolean }> = [
    {
      name: 'mid-transaction (after beginWrite and puts, before commit)',
      die: async (w) => {
        await w.call('beginWrite');
        await w.call('put', { entries: Array.from({ length: 400 }, (_, i) => [keyOf(i), `unacked-${'u'.repeat(100)}`]) });
        await w.kill();
      },
      lastCounts: false,
    },
    {
      name: 'right after its commit was acknowledged',
      die: async (w) => {
        await w.call('write', { entries: [[keyOf(0), 'last'], ['last', 'acked']] });
        await w.kill();
      },
      lastCounts: true,
    },
    {
      // Durable in the log, never published nor acknowledged: the next writer cuts it off (§5 step 4).
      name: 'inside commit, after the log fdatasync and before publishing',
      die: async (w) => {
        await w.call('killAt', { name: 'afterLogSync', hit: 1 });
        await expect(w.call('write', { entries: [[keyOf(0), 'unacked'], ['last', 'unacked']] })).rejects.toThrow(/exited/);
      },
      lastCounts: false,
    },
    {
      name: 'inside commit, after its log record and its pages, before its log fdatasync',
      die: async (w) => {
        await w.call('killAt', { name: 'afterPageWrite', hit: 1 });
        await expect(w.call('write', { entries: Array.from({ length: 400 }, (_, i) => [keyOf(i), `unacked-${'u'.repeat(100)}`]) })).rejects.toThrow(/exited/);
      },
      lastCounts: false,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: the lock is free at once for a writer in another process; the database holds exactly the acknowledged commits`, async () => {
      const db = tmp.openDb();
      const w = await peerOn('process', { sync: 'full' });
      const model = new Map<string, string>();
      for (let round = 0; round < 3; round++) {
        const entries = Array.from({ length: 150 }, (_, i): [string, string] => [keyOf(i * 2 + round), `r${round}-${'v'.repeat(80)}`]);
        await w.call('write', { entries });
        for (const [k, v] of entries) model.set(k, v);
      }
      await c.die(w);
      expect((await w.exited).signal).toBe('SIGKILL');
      if (c.lastCounts) {
        model.set(keyOf(0), 'last');
        model.set('last', 'acked');
      }
      const acked = c.lastCounts ? 4 : 3;

      // A writer in another process gets the lock without waiting at all (timeoutMs 0: one
      // try), so the lock is free once the killed writer has exited; no clock involved.
      const next = await peerOn('process', { sync: 'full' });
      const got = await next.call<{ txnId: number }>('write', { entries: [['next', 'writer']], timeoutMs: 0 });
      expect(got.txnId).toBe(acked + 1);
      model.set('next', 'writer');
      const expected = [...model.entries()].sort(([x], [y]) => (x < y ? -1 : 1));
      expect(scan(db)).toEqual(expected);
      expect((await next.call<{ entries: unknown }>('scan')).entries).toEqual(expected);
      await next.stop();
      expectVerified(db);
      // Recovery from the files alone agrees.
      db.close();
      const again = tmp.openDb();
      expect(again.txnId).toBe(acked + 1);
      expect(scan(again)).toEqual(expected);
      expectVerified(again);
    }, TIMEOUT);
  }

  it('in a stream of commits, at a random moment: every acknowledged commit survives, at most one unacknowledged one too', async () => {
    const db = tmp.openDb();
    const accounts = 16;
    const baseTxn = put(
      db,
      Array.from({ length: accounts }, (_, i): [string, string] => [acct(i), '1000']),
    );
    for (let round = 0; round < 3; round++) {
      const w = await peerOn('process', { sync: round === 0 ? 'full' : 'none' });
      const writing = w.call('bankWriter', { accounts, transfers: 1_000_000, timeoutMs: 5_000, pauseMs: 0, tag: `w${round}`, seed: SEED + round });
      await w.waitForEvents('ack', 5 + ((SEED + round) % 20));
      await w.kill();
      await expect(writing).rejects.toThrow(/exited/);
      const acks = w.events.filter((e) => e.event === 'ack').map((e) => e.txnId as number);
      const state = new Map(scan(db));
      const logs = [...state.keys()].filter((k) => k.startsWith('log:'));
      const lastAcked = Math.max(...acks);
      expect(db.txnId, seeded(`round ${round}`)).toBeGreaterThanOrEqual(lastAcked);
      expect(db.txnId, seeded(`round ${round}`)).toBeLessThanOrEqual(lastAcked + 1);
      expect(logs).toHaveLength(db.txnId - baseTxn);
      for (const t of acks) expect(state.has(logKey(t))).toBe(true);
      let sum = 0;
      for (let i = 0; i < accounts; i++) sum += Number(state.get(acct(i)));
      expect(sum).toBe(accounts * 1000);
    }
    // The next writer goes on from there, in this thread.
    const before = db.txnId;
    expect(put(db, [['after', 'kills']])).toBe(before + 1);
    expectVerified(db);
  }, TIMEOUT);
});

describe('readers in other processes and threads', () => {
  it(
    'a reader process killed holding an old snapshot: its slot is reclaimed and its pages are reused (history 0: the file stops growing)',
    async () => {
      const options = { history: { txns: 0 }, pageSize: 4096 };
      const db = tmp.openDb(options);
      const keys = Array.from({ length: 300 }, (_, i) => keyOf(i));
      const rewrite = (round: number): number => put(db, keys.map((k) => [k, `r${round}-${'y'.repeat(60)}`]));
      rewrite(0);
      const reader = await peerOn('process', options);
      const live = await peerOn('thread', options);
      const held = await reader.call<number>('hold');
      expect(held).toBe(1);
      for (let round = 1; round <= 20; round++) rewrite(round);
      expect(await live.call<number>('hold')).toBe(21);
      expect(db.stats().readers.others).toEqual(
        expect.arrayContaining([
          { pid: reader.pid, txnId: 1 },
          { pid: process.pid, txnId: 21 },
        ]),
      );
      const grown = db.stats().pageCount;
      for (let round = 22; round <= 30; round++) rewrite(round);
      expect(db.stats().pageCount, 'the held snapshot pins its pages').toBeGreaterThan(grown);

      await reader.kill();
      // The next scan finds the pid dead and frees the slot.
      db.beginWrite().abort();
      expect(db.stats().readers.others).toEqual([{ pid: process.pid, txnId: 21 }]);
      await live.call('release');
      expect(db.stats().readers.others).toEqual([]);

      const afterKill = db.stats().pageCount;
      const counts: number[] = [];
      for (let round = 31; round <= 70; round++) {
        rewrite(round);
        counts.push(db.stats().pageCount);
      }
      expect(Math.max(...counts), 'freed pages are reused').toBeLessThanOrEqual(afterKill);
      expect((await live.call<{ values: string[] }>('read', { keys: [keyOf(7)] })).values).toEqual([`r70-${'y'.repeat(60)}`]);
      await live.stop();
      expectVerified(db);
    },
    TIMEOUT,
  );

  it(
    'the file stops growing while rotating long-lived readers in threads and a process hold snapshots and let go (history 0)',
    async () => {
      // Checkpoints every 50 commits: the tree a checkpoint makes durable stays pinned until the
      // next one (spec §6.1), one more tree's worth of pages, reached early rather than late.
      const options = { history: { txns: 0 }, pageSize: 4096, checkpoint: { commits: 50 } };
      const db = tmp.openDb(options);
      const keyCount = 600;
      put(
        db,
        Array.from({ length: keyCount }, (_, i): [string, string] => [`key:${String(i).padStart(5, '0')}`, `0:${'x'.repeat(60)}`]),
      );
      const stopFile = nodePath.join(tmp.dir, 'stop');
      const writer = await peerOn('process', options);
      const readers = await Promise.all([peerOn('thread', options), peerOn('thread', options), peerOn('process', options)]);
      // Each reader holds a snapshot for 40 commits; the writer never gets more than 40 past
      // the oldest one (it waits for that reader), so however the threads are scheduled, the
      // pages pinned at any moment are those freed by at most 40 commits.
      const holdCommits = 40;
      const rotating = readers.map((r) =>
        r.call<{ holds: number; last: number; problems: string[] }>('rotate', { holdCommits, stopFile, maxMs: 60_000 }),
      );
      const churned = await writer.call<{ pageCounts: number[]; stalls: number; txnId: number }>('churn', {
        commits: 12 * holdCommits,
        keys: keyCount,
        perCommit: 20,
        valueSize: 60,
        maxLag: holdCommits,
        maxMs: 40_000,
        seed: SEED,
      });
      fs.writeFileSync(stopFile, '');
      const rotated = await Promise.all(rotating);
      for (const [i, r] of rotated.entries()) {
        expect(r.problems, seeded(`reader ${i}`)).toEqual([]);
        expect(r.holds, 'each reader took many snapshots').toBeGreaterThan(5);
      }
      const counts = churned.pageCounts;
      const third = Math.floor(counts.length / 3);
      const atTwoThirds = counts[counts.length - third - 1]!;
      const atEnd = counts[counts.length - 1]!;
      expect(atEnd / atTwoThirds, seeded(`page count ${atTwoThirds} → ${atEnd} over the last third of ${counts.length} commits`)).toBeLessThan(1.05);
      await Promise.all([writer, ...readers].map((p) => p.stop()));
      expect(db.txnId).toBe(churned.txnId);
      expectVerified(db);
    },
    2 * TIMEOUT,
  );

  it('time travel (beginRead({ txnId })) gives the same snapshots in every thread and process, for commits made in any of them', async () => {
    const db = tmp.openDb();
    const p1 = await peerOn('process');
    const p2 = await peerOn('process');
    const t1 = await peerOn('thread');
    const t2 = await peerOn('thread');
    const writers: Array<{ name: string; write: (entries: Array<[string, string]>) => Promise<number> }> = [
      { name: 'p1', write: async (e) => (await p1.call<{ txnId: number }>('write', { entries: e })).txnId },
      { name: 't1', write: async (e) => (await t1.call<{ txnId: number }>('write', { entries: e })).txnId },
      { name: 'main', write: async (e) => put(db, e) },
      { name: 'p2', write: async (e) => (await p2.call<{ txnId: number }>('write', { entries: e })).txnId },
      { name: 't2', write: async (e) => (await t2.call<{ txnId: number }>('write', { entries: e })).txnId },
    ];
    const model = new Map<string, string>();
    const states: Array<Array<[string, string]>> = [[]];
    for (let t = 1; t <= 10; t++) {
      const w = writers[(t - 1) % writers.length]!;
      const entries: Array<[string, string]> = [
        ['k', `${w.name}@${t}`],
        [`n${String(t).padStart(2, '0')}`, w.name],
      ];
      expect(await w.write(entries)).toBe(t);
      for (const [k, v] of entries) model.set(k, v);
      states.push([...model.entries()].sort(([x], [y]) => (x < y ? -1 : 1)));
      // A checkpoint halfway: older snapshots then come from its history chain, newer from the log.
      if (t === 5) db.checkpoint();
    }
    const late = await peerOn('process');
    for (const p of [p1, p2, t1, t2, late]) {
      for (let t = 1; t <= 10; t++) {
        expect((await p.call<{ txnId: number; entries: unknown }>('scan', { txnId: t })).entries, `${p.kind} ${p.pid} at txn ${t}`).toEqual(states[t]);
      }
      await expectRejected(p.call('scan', { txnId: 11 }), 'SnapshotNotFound');
    }
    for (let t = 1; t <= 10; t++) expect(scan(db, t)).toEqual(states[t]);
    await Promise.all([p1, p2, t1, t2, late].map((p) => p.stop()));
    expectVerified(db);
  }, TIMEOUT);

  it('stats() lists every live reader with its process id and oldest snapshot, the oldest of all, and the pending pages they pin', async () => {
    const options = { history: { txns: 0 }, pageSize: 4096 };
    const db = tmp.openDb(options);
    const keys = Array.from({ length: 200 }, (_, i) => keyOf(i));
    const rewrite = (round: number): number => put(db, keys.map((k) => [k, `r${round}-${'z'.repeat(60)}`]));
    const [p1, t1, p2] = await Promise.all([peerOn('process', options), peerOn('thread', options), peerOn('process', options)]);
    rewrite(1);
    expect(await p1.call('hold')).toBe(1);
    rewrite(2);
    expect(await t1.call('hold')).toBe(2);
    rewrite(3);
    expect(await p2.call('hold')).toBe(3);
    // A second snapshot on one handle: the slot keeps showing the oldest.
    rewrite(4);
    expect(await p2.call('hold')).toBe(4);
    for (let round = 5; round <= 8; round++) rewrite(round);
    const byTxn = (a: { txnId: number }, b: { txnId: number }): number => a.txnId - b.txnId;

    const s = db.stats();
    expect(s.readers.others.sort(byTxn)).toEqual([
      { pid: p1.pid, txnId: 1 },
      { pid: process.pid, txnId: 2 },
      { pid: p2.pid, txnId: 3 },
    ]);
    expect(s.readers.oldestTxnId).toBe(1);
    expect(s.readers.live).toBe(0);
    // Every page rewritten since txn 1 is pinned: about a tree's worth per rewrite.
    expect(s.pendingPages).toBeGreaterThan(20);

    // The same table seen from another process, with this thread's reader in it.
    const r = db.beginRead();
    const fromP2 = await p2.call<{ readers: { live: number; oldestTxnId: number; others: Array<{ pid: number; txnId: number }> } }>('stats');
    expect(fromP2.readers.live).toBe(2);
    expect(fromP2.readers.oldestTxnId).toBe(1);
    expect(fromP2.readers.others.sort(byTxn)).toEqual([
      { pid: p1.pid, txnId: 1 },
      { pid: process.pid, txnId: 2 },
      { pid: process.pid, txnId: 8 },
    ]);
    r.close();

    await p1.call('release');
    expect(db.stats().readers.oldestTxnId).toBe(2);
    await Promise.all([t1.call('release'), p2.call('release')]);
    expect(db.stats().readers).toEqual({ live: 0, oldestTxnId: null, others: [] });
    rewrite(9);
    const after = db.stats();
    expect(after.pendingPages, 'only the last commit’s freed pages wait').toBeLessThan(s.pendingPages / 2);
    expect(after.freePages).toBeGreaterThan(0);
    await Promise.all([p1, t1, p2].map((p) => p.stop()));
    expectVerified(db);
  }, TIMEOUT);
});

describe('one implementation per database', () => {
  it.skipIf(implementation !== 'native' && !nativeRequired)('a fallback handle (process or thread) is refused while a native one is open, and the reverse: InvalidArgument', async () => {
    expect(implementation).toBe('native');
    const db = tmp.openDb();
    put(db, [['k', 'v']]);
    const fallbackProcess = await peers.process({ NORTHSTAR_NATIVE: '0' });
    const fallbackThread = await peers.thread({ NORTHSTAR_NATIVE: '0' });
    for (const p of [fallbackProcess, fallbackThread]) {
      await expect(p.call('open', { path: tmp.dbPath() })).rejects.toMatchObject({ code: 'InvalidArgument', message: /same implementation/ });
    }
    db.close();
    // The refused opens left no slot behind: alone now, a fallback process opens, and a native handle is refused.
    expect((await fallbackProcess.call<Opened>('open', { path: tmp.dbPath() })).implementation).toBe('fallback');
    let thrown: unknown;
    try {
      tmp.track(open(tmp.dbPath()));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({ code: 'InvalidArgument', message: /same implementation/ });
    expect((await fallbackProcess.call<{ values: string[] }>('read', { keys: ['k'] })).values).toEqual(['v']);
    await fallbackProcess.stop();
    const again = tmp.openDb();
    expect(again.txnId).toBe(1);
    expectVerified(again);
  }, TIMEOUT);
});
