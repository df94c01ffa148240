// Checkpoints (ts/db/checkpoint.ts, spec/file_format_v1.md §8.2): the
// asynchronous form commitAsync's writer runs, whose two data-file syncs run on
// the thread pool while this handle's writes go on, and how the synchronous
// callers (db.checkpoint(), close()) finish one that is under way.

import * as fs from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { open, type Database } from '../index.js';
import { expectCode, expectVerified, latestValue, useTempDbs } from '../testing/fixtures.js';
import { engineOfDatabase } from './internal.js';

const tmp = useTempDbs('northstar-checkpoint-');

const value = latestValue;

/** `n` commits by commitAsync, each awaited; returns the last txn id. */
async function commitsAsync(db: Database, from: number, n: number): Promise<number> {
  let id = 0;
  for (let i = from; i < from + n; i++) {
    const w = db.beginWrite();
    w.put(`k${i}`, `v${i}`);
    id = await w.commitAsync();
  }
  return id;
}

/** Resolves once fn() holds, looking on every turn of the event loop (up to 10 s). */
async function until(fn: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setImmediate(r));
  }
}

describe('the asynchronous checkpoint (commitAsync)', () => {
  it('runs after the commit that made it due has resolved; this handle writes meanwhile, other handles wait for the writer until the meta is durable', async () => {
    const a = tmp.openDb({ sync: 'full', checkpoint: { commits: 5 } });
    const b = tmp.track(open(tmp.dbPath(), { sync: 'full' }));
    expect(await commitsAsync(a, 0, 5)).toBe(5);
    // The fifth commit made the checkpoint due: its data file sync is on the thread pool now.
    expect(a.stats().checkpoint.txnId).toBe(0);
    const w = a.beginWrite();
    w.put('meanwhile', 'x');
    expect(w.commit()).toBe(6);
    expect(value(a, 'meanwhile')).toBe('x');
    expectCode(() => b.beginWrite(), 'WriteBusy');
    const wb = await b.beginWriteAsync({ timeoutMs: 10_000 });
    expect(a.stats().checkpoint.txnId, 'the writer lock went once the meta was durable').toBe(5);
    wb.put('b', 'y');
    expect(wb.commit()).toBe(7);
    expect(value(b, 'meanwhile')).toBe('x');
    expectVerified(b);
    a.close();
    b.close();
    const again = tmp.openDb({ sync: 'full' });
    for (let i = 0; i < 5; i++) expect(value(again, `k${i}`)).toBe(`v${i}`);
    expect(value(again, 'b')).toBe('y');
    expectVerified(again);
  });

  it('db.checkpoint() during one finishes it on this thread, then checkpoints the commits after it; the thread pool finishing later changes nothing', async () => {
    const db = tmp.openDb({ sync: 'full', checkpoint: { commits: 4 } });
    await commitsAsync(db, 0, 4);
    expect(engineOfDatabase(db).checkpointing).not.toBeNull();
    const w = db.beginWrite();
    w.put('five', '5');
    w.commit();
    db.checkpoint();
    expect(engineOfDatabase(db).checkpointing).toBeNull();
    expect(db.stats().checkpoint).toMatchObject({ txnId: 5, commitsSince: 0 });
    const seq = engineOfDatabase(db).durable.checkpointSeq;
    await new Promise((r) => setTimeout(r, 50));
    expect(db.stats().checkpoint.txnId).toBe(5);
    expect(engineOfDatabase(db).durable.checkpointSeq).toBe(seq);
    expectVerified(db);
  });

  it('close() during one finishes it: the reopened database starts at the last commit with nothing to replay', async () => {
    const db = tmp.openDb({ sync: 'full', checkpoint: { commits: 3 } });
    await commitsAsync(db, 0, 3);
    expect(engineOfDatabase(db).checkpointing).not.toBeNull();
    db.close();
    const again = tmp.openDb({ sync: 'full' });
    expect(again.stats().checkpoint).toMatchObject({ txnId: 3, commitsSince: 0 });
    expect(value(again, 'k2')).toBe('v2');
    expectVerified(again);
  });

  it('one at a time: commits during one do not start another; the next starts at the first due commit after it', async () => {
    const db = tmp.openDb({ sync: 'full', checkpoint: { commits: 2 } });
    await commitsAsync(db, 0, 2);
    const first = engineOfDatabase(db).checkpointing;
    expect(first?.meta.txnId).toBe(2);
    const pending = [];
    for (let i = 2; i < 6; i++) {
      const w = db.beginWrite();
      w.put(`k${i}`, `v${i}`);
      pending.push(w.commitAsync());
    }
    expect(engineOfDatabase(db).checkpointing).toBe(first);
    await Promise.all(pending);
    await until(() => engineOfDatabase(db).checkpointing === null);
    expect(db.stats().checkpoint.txnId).toBe(2);
    await commitsAsync(db, 6, 1);
    expect(engineOfDatabase(db).checkpointing?.meta.txnId).toBe(7);
    await until(() => db.stats().checkpoint.txnId === 7);
    expectVerified(db);
  });

  it('a failed data-file sync poisons the handle (writes refused until reopen) and loses no acknowledged commit', async () => {
    const db = tmp.openDb({ sync: 'full', checkpoint: { commits: 3 } });
    const file = engineOfDatabase(db).file;
    const real = file.datasyncAsync.bind(file);
    let failed = 0;
    file.datasyncAsync = () => (failed++ === 0 ? Promise.reject(new Error('EIO: injected')) : real());
    expect(await commitsAsync(db, 0, 3)).toBe(3);
    await until(() => engineOfDatabase(db).checkpointing === null);
    expect(failed).toBe(1);
    expectCode(() => db.beginWrite(), 'IoError');
    expect(db.stats().checkpoint.txnId).toBe(0);
    db.close();
    const again = tmp.openDb({ sync: 'full' });
    for (let i = 0; i < 3; i++) expect(value(again, `k${i}`)).toBe(`v${i}`);
    expectVerified(again);
  });

  it('pages its meta reaches stay unused while it is pending: a crash once it is durable recovers from it', async () => {
    // History of one commit: nothing but the pending meta keeps the pages of txn 3 from reuse.
    const db = tmp.openDb({ sync: 'full', checkpoint: { commits: 3 }, history: { txns: 1 } });
    await commitsAsync(db, 0, 3);
    expect(engineOfDatabase(db).checkpointing?.meta.txnId).toBe(3);
    for (let i = 0; i < 6; i++) {
      const w = db.beginWrite();
      for (let k = 0; k < 3; k++) w.put(`k${k}`, `x${i}`);
      w.commit();
    }
    await until(() => db.stats().checkpoint.txnId === 3);
    // The files as a crash would leave them now: meta 3 durable, the six commits in the log.
    const copy = tmp.dbPath('copy');
    fs.copyFileSync(tmp.dbPath(), copy);
    fs.copyFileSync(tmp.logPath(), `${copy}.log`);
    const again = tmp.openDb({ sync: 'full' }, 'copy');
    expect(again.txnId).toBe(9);
    for (let k = 0; k < 3; k++) expect(value(again, `k${k}`)).toBe('x5');
    expectVerified(again);
  });

  it('sync: none runs it at once (there is nothing to wait for)', async () => {
    const db = tmp.openDb({ checkpoint: { commits: 2 } });
    await commitsAsync(db, 0, 2);
    expect(engineOfDatabase(db).checkpointing).toBeNull();
    expect(db.stats().checkpoint.txnId).toBe(2);
  });
});

describe('close() checkpoints only when it has something to do (spec/concurrency_v0.md §5)', () => {
  it('a clean database closes without asking for the writer; its log still ends at its last record', () => {
    const db = tmp.openDb({ sync: 'full' });
    const w = db.beginWrite();
    w.put('k', 'v');
    w.commit();
    db.close();
    const again = tmp.openDb({ sync: 'full' });
    const e = engineOfDatabase(again);
    const lockWriter = vi.spyOn(e.coord, 'lockWriter');
    const logBytes = fs.statSync(`${again.path}.log`).size;
    again.close();
    expect(lockWriter).not.toHaveBeenCalled();
    expect(fs.statSync(`${again.path}.log`).size).toBe(logBytes);
  });

  it('a reader handle that closes after another handle committed without a checkpoint takes the writer and checkpoints', () => {
    const a = tmp.openDb({ sync: 'full', checkpoint: { commits: 1000 } });
    const b = tmp.track(open(tmp.dbPath()));
    const w = a.beginWrite();
    w.put('k', 'v');
    const txn = w.commit();
    expect(a.stats().checkpoint.txnId).toBeLessThan(txn);
    const lockWriter = vi.spyOn(engineOfDatabase(b).coord, 'lockWriter');
    b.close();
    expect(lockWriter).toHaveBeenCalled();
    a.close();
    const again = tmp.openDb({ sync: 'full' });
    expect(again.stats().checkpoint).toMatchObject({ txnId: txn, commitsSince: 0 });
    expect(value(again, 'k')).toBe('v');
  });

  it('a handle that preallocated log zeros trims them at close even when every commit is checkpointed', () => {
    const db = tmp.openDb({ sync: 'full' });
    const w = db.beginWrite();
    w.put('k', 'v');
    w.commit();
    db.checkpoint();
    const e = engineOfDatabase(db);
    expect(e.log.endsAt(e.log.end)).toBe(false); // preallocated zeros past the record
    db.close();
    const again = tmp.openDb({ sync: 'full' });
    const ea = engineOfDatabase(again);
    expect(ea.log.endsAt(ea.latest.logEnd)).toBe(true);
  });
});

describe('pages the durable meta\'s history reaches (spec/file_format_v1.md §6.1)', () => {
  it('stay unused until a newer meta is durable, even after this handle\'s history let their snapshots go: time travel after a crash reads them', () => {
    const db = tmp.openDb({ sync: 'full', history: { txns: 3 }, checkpoint: { commits: 1_000_000 } });
    const keys = Array.from({ length: 400 }, (_, i) => `key-${String(i).padStart(4, '0')}`);
    const round = (r: number): void => {
      const w = db.beginWrite();
      for (const k of keys) w.put(k, `${k}@${r}`);
      w.commit();
    };
    for (let r = 1; r <= 5; r++) round(r);
    db.checkpoint(); // the durable meta lists snapshots 3, 4 and 5
    expect(engineOfDatabase(db).durableHistoryFloor).toBe(3);
    for (let r = 6; r <= 20; r++) round(r); // this handle's history is 18..20 now; its pages were reused
    // A crash now: the files as they are (unsynced page writes included), no close.
    const copy = tmp.dbPath('crashed');
    fs.copyFileSync(db.path, copy);
    fs.copyFileSync(`${db.path}.log`, `${copy}.log`);
    // Opened with a longer history, the recovery keeps the durable meta's 3..5 and the replayed 6..20.
    const again = tmp.track(open(copy, { history: { txns: 100 } }));
    expect(again.txnId).toBe(20);
    for (const at of [3, 4, 5, 19, 20]) {
      const r = again.beginRead({ txnId: at });
      try {
        let n = 0;
        for (const [k, v] of r.scan()) {
          expect(v.toString()).toBe(`${k.toString()}@${at}`);
          n++;
        }
        expect(n).toBe(keys.length);
      } finally {
        r.close();
      }
    }
  });
});

describe('a large commitAsync waits for the checkpoint it started (spec §8.2)', () => {
  // Pages a commit frees are reusable only once a checkpoint after it is durable. A
  // shuffled load frees about the whole tree per transaction: without the wait, each
  // transaction after the first ran while the checkpoint of the one before was still
  // under way and took new pages from the end of the file (1.1 GB against 432 MB for
  // the storage bench's 1M-key load).
  it('resolves once the checkpoint it started is durable; a small commit does not wait', async () => {
    const db = tmp.openDb({ sync: 'full', pageSize: 4096, history: { txns: 0 }, checkpoint: { freedBytes: 1 << 20, commits: 1_000_000, logBytes: 1 << 30 } });
    const e = engineOfDatabase(db);
    const w0 = db.beginWrite();
    for (let k = 0; k < 20_000; k++) w0.put(`key-${String(k).padStart(8, '0')}`, 'v'.repeat(100));
    w0.commit();
    // Now the durable meta reaches every page: a page freed from here is reusable only after a checkpoint.
    db.checkpoint();
    // A quarter of the keys, spread over every leaf: about the whole tree freed, 2 MB and more.
    const w = db.beginWrite();
    for (let k = 0; k < 20_000; k += 4) w.put(`key-${String(k).padStart(8, '0')}`, 'w'.repeat(100));
    const txn = await w.commitAsync();
    expect(e.checkpointing).toBeNull();
    expect(e.durable.txnId).toBe(txn);
    // One put frees a few pages: its commit resolves with its sync, whatever a checkpoint does.
    expect(e.checkpointWait(3)).toBeNull();
  });
});

