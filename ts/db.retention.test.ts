// What the database keeps, and for how long (spec/file_format_v1.md §6.2,
// §8.2, §8.7): time-travel history bounded in bytes as well as commits,
// checkpoints due once freed pages pile up, and the commit log's retention
// after checkpoints. Runs with both kernel implementations.

import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CHECKPOINT_FREED_BYTES,
  DEFAULT_HISTORY_BYTES,
  DEFAULT_HISTORY_TXNS,
  DEFAULT_LOG_RETAIN_BYTES,
  DEFAULT_LOG_RETAIN_TXNS,
  implementation,
  open,
  replay,
  type Database,
} from './index.js';
import { FaultyFileSystem } from './io/faulty.js';
import { rng } from './testing/rng.js';
import { expectCode, expectVerified, useTempDbs } from './testing/fixtures.js';

const seed = Number(process.env.NORTHSTAR_SEED ?? Date.now() % 2 ** 31);
console.log(`ts/db.retention.test.ts: NORTHSTAR_SEED=${seed} (${implementation} kernels)`);

const key = (i: number): string => `k${String(i).padStart(6, '0')}`;

/** Commit `n` transactions of one put each (keys among `keys`), recording the model after each. */
function commitPuts(db: Database, n: number, keys: number, models: Map<number, Map<string, string>>, valueSize = 40): void {
  const r = rng(seed);
  let model = new Map(models.get(db.stats().txnId) ?? []);
  for (let i = 0; i < n; i++) {
    const w = db.beginWrite();
    const k = key(Math.floor(r() * keys));
    const v = `${w.txnId}:`.padEnd(valueSize, 'v');
    w.put(k, v);
    w.commit();
    model = new Map(model);
    model.set(k, v);
    models.set(db.stats().txnId, model);
  }
}

function readAll(db: Database, txnId?: number): Map<string, string> {
  const r = db.beginRead(txnId === undefined ? {} : { txnId });
  try {
    const out = new Map<string, string>();
    for (const [k, v] of r.scan({})) out.set(k.toString(), v.toString());
    return out;
  } finally {
    r.close();
  }
}

describe('defaults', () => {
  it('are the documented ones', () => {
    expect(DEFAULT_HISTORY_TXNS).toBe(1000);
    expect(DEFAULT_HISTORY_BYTES).toBe(64 * 1024 * 1024);
    expect(DEFAULT_LOG_RETAIN_TXNS).toBe(1000);
    expect(DEFAULT_LOG_RETAIN_BYTES).toBe(64 * 1024 * 1024);
    expect(DEFAULT_CHECKPOINT_FREED_BYTES).toBe(64 * 1024 * 1024);
  });

  const { openDb } = useTempDbs('ns-retention-opts-');
  it('bad history and log options are InvalidArgument, Infinity is no bound', () => {
    for (const bad of [{ checkpoint: { freedBytes: -1 } }, { history: { bytes: -1 } }, { history: { bytes: 1.5 } }, { log: 'x' }, { log: { retainTxns: -2 } }, { log: { retainBytes: NaN } }]) {
      expectCode(() => openDb(bad as never), 'InvalidArgument');
    }
    const db = openDb({ history: { bytes: Infinity }, log: { retainTxns: Infinity, retainBytes: 0 } });
    const s = db.stats();
    expect(s.history.bytesLimit).toBe(Infinity);
    expect(s.log).toEqual({ start: 32, firstTxnId: null, retainTxns: Infinity, retainBytes: 0 });
  });
});

describe('history bounded in bytes (spec §6.2)', () => {
  const { openDb } = useTempDbs('ns-retention-history-');

  it('keeps the snapshots whose freed pages fit in history.bytes, and every one of them reads as it was', () => {
    const pageSize = 4096;
    const budgetPages = 12;
    const db = openDb({ pageSize, history: { txns: 1000, bytes: budgetPages * pageSize } });
    const models = new Map<number, Map<string, string>>([[0, new Map()]]);
    // Enough keys for a tree of a few levels: each 1-put commit then frees about `depth` pages.
    {
      const w = db.beginWrite();
      const m = new Map<string, string>();
      for (let i = 0; i < 2000; i++) {
        w.put(key(i), 'init');
        m.set(key(i), 'init');
      }
      w.commit();
      models.set(db.stats().txnId, m);
    }
    commitPuts(db, 300, 2000, models);
    const s = db.stats();
    expect(s.depth).toBeGreaterThanOrEqual(2);
    // Each commit frees at least one page: 300 commits cannot all fit in 12 pages.
    expect(s.history.retained).toBeGreaterThan(1);
    expect(s.history.retained).toBeLessThanOrEqual(budgetPages + 1);
    const oldest = s.history.oldestTxnId!;
    for (let t = oldest; t <= s.txnId; t++) expect(readAll(db, t), `snapshot ${t}`).toEqual(models.get(t));
    expectCode(() => db.beginRead({ txnId: oldest - 1 }), 'SnapshotNotFound');
    expectVerified(db);
  });

  it('with no byte bound the file keeps every replaced page; with one it stays near the live tree', () => {
    const pageCountAfter = (bytes: number, name: string): number => {
      const db = openDb({ pageSize: 4096, history: { txns: 1000, bytes } }, name);
      commitPuts(db, 400, 3000, new Map([[0, new Map()]]), 200);
      const n = db.stats().pageCount;
      expectVerified(db);
      return n;
    };
    const unbounded = pageCountAfter(Infinity, 'unbounded');
    const bounded = pageCountAfter(16 * 4096, 'bounded');
    expect(unbounded).toBeGreaterThan(3 * bounded);
  });

  it('a writer never keeps history below the floor the previous writer published', () => {
    const a = openDb({ pageSize: 4096, history: { txns: 1000, bytes: 4 * 4096 } });
    const b = openDb({ pageSize: 4096, history: { txns: 1000, bytes: Infinity } });
    const models = new Map<number, Map<string, string>>([[0, new Map()]]);
    commitPuts(a, 100, 500, models);
    // b followed every commit into its own (unbounded) history; the floor a published is higher.
    readAll(b);
    commitPuts(b, 5, 500, models);
    const floor = b.stats().history.oldestTxnId!;
    expect(floor).toBeGreaterThan(50);
    for (let t = floor; t <= b.stats().txnId; t++) expect(readAll(b, t)).toEqual(models.get(t));
    expectVerified(b);
  });
});

describe('checkpoints (spec §8.2)', () => {
  const { openDb } = useTempDbs('ns-retention-ckpt-');

  it('run once the pages a checkpoint would let the writer reuse reach checkpoint.freedBytes, though the log is small', () => {
    // A short history: pages freed more than 5 commits ago are held by the durable meta alone,
    // which only a checkpoint lets go (with the default history, a checkpoint would free nothing).
    const db = openDb({ pageSize: 4096, history: { txns: 5 }, checkpoint: { commits: 1_000_000, freedBytes: 64 * 1024 } });
    const w = db.beginWrite();
    for (let i = 0; i < 3000; i++) w.put(key(i), 'x'.repeat(30));
    w.commit();
    db.checkpoint();
    const before = db.stats().checkpoint.txnId;
    commitPuts(db, 40, 3000, new Map([[db.stats().txnId, new Map()]]));
    const s = db.stats();
    // 40 commits of ~60 bytes of log each: the log bound is far, the freed-pages one is not.
    expect(s.checkpoint.txnId).toBeGreaterThan(before);
    expectVerified(db);
  });
});

describe('log retention (spec §8.7)', () => {
  const { openDb, dbPath } = useTempDbs('ns-retention-log-');
  const big = 16 * 1024;

  it('drops records outside retainTxns after checkpoints; readLog and replay say where the log starts', () => {
    const db = openDb({ log: { retainTxns: 20, retainBytes: Infinity }, checkpoint: { commits: 25 } });
    const models = new Map<number, Map<string, string>>([[0, new Map()]]);
    commitPuts(db, 400, 50, models, big);
    const s = db.stats();
    expect(s.log.firstTxnId).toBeGreaterThan(1);
    const first = s.log.firstTxnId!;
    // Retention keeps at least the last 20 commits and everything since the checkpoint.
    expect(first).toBeLessThanOrEqual(s.txnId - 20 + 1);
    expect(first).toBeLessThanOrEqual(s.checkpoint.txnId + 1);
    expect(s.log.start).toBeGreaterThan(32);
    // Bounded: a drop waits until it drops at least as much as it keeps, so at most about twice what it must keep.
    expect(s.logSize).toBeLessThan(2 * (s.txnId - first + 1) * (big + 200) + (1 << 20) * 2);
    const e = expectCode(() => [...db.readLog({ fromTxnId: 1 })], 'SnapshotNotFound');
    expect(e.message).toContain(`starts at commit ${first}`);
    const txns = [...db.readLog({ fromTxnId: first })].map((c) => c.txnId);
    expect(txns[0]).toBe(first);
    expect(txns[txns.length - 1]).toBe(s.txnId);
    expect(txns.length).toBe(s.txnId - first + 1);
    db.close();
    const r = expectCode(() => replay(dbPath()), 'SnapshotNotFound');
    expect(r.message).toContain(`retained log starts at txn ${first}`);
    const db2 = openDb({ log: { retainTxns: 20, retainBytes: Infinity } });
    expect(readAll(db2)).toEqual(models.get(s.txnId));
    expectVerified(db2);
  });

  it('drops records more than retainBytes before the end', () => {
    const db = openDb({ log: { retainTxns: Infinity, retainBytes: 512 * 1024 }, checkpoint: { commits: 10 } });
    commitPuts(db, 300, 50, new Map([[0, new Map()]]), big);
    const s = db.stats();
    expect(s.log.firstTxnId).toBeGreaterThan(1);
    // What it keeps: 512 KiB, up to a checkpoint interval more, and at most as much again before a drop.
    expect(s.logSize).toBeLessThan(2 * (512 * 1024 + 11 * (big + 200)) + (1 << 20));
    expectVerified(db);
  });

  it('keeps every record with Infinity for both, and replay rebuilds the state from txn 1', () => {
    const db = openDb({ log: { retainTxns: Infinity, retainBytes: Infinity }, checkpoint: { commits: 10 } });
    const models = new Map<number, Map<string, string>>([[0, new Map()]]);
    commitPuts(db, 200, 50, models, big);
    const s = db.stats();
    expect(s.log.firstTxnId).toBe(1);
    expect(s.log.start).toBe(32);
    db.close();
    const r = replay(dbPath());
    expect(r.txnId).toBe(s.txnId);
    expect(r.state.size).toBe(models.get(s.txnId)!.size);
  });

  it('never drops a record after the last checkpoint, even with retention 0', () => {
    const db = openDb({ log: { retainTxns: 0, retainBytes: 0 }, checkpoint: { commits: 50 } });
    commitPuts(db, 170, 50, new Map([[0, new Map()]]), big);
    const s = db.stats();
    expect(s.checkpoint.txnId).toBe(150);
    expect(s.log.firstTxnId).toBeLessThanOrEqual(151);
    // Every commit since the checkpoint is readable from the log.
    expect([...db.readLog({ fromTxnId: 151 })].map((c) => c.txnId)).toEqual(Array.from({ length: 20 }, (_, i) => 151 + i));
  });

  it('another handle follows a log that retention replaced, and can write after it', () => {
    const opts = { log: { retainTxns: 5, retainBytes: Infinity }, checkpoint: { commits: 10 } };
    const a = openDb(opts);
    const b = openDb(opts);
    const models = new Map<number, Map<string, string>>([[0, new Map()]]);
    commitPuts(a, 50, 40, models, big);
    expect(readAll(b)).toEqual(models.get(50));
    commitPuts(a, 150, 40, models, big);
    expect(a.stats().log.firstTxnId).toBeGreaterThan(1);
    expect(readAll(b)).toEqual(models.get(200));
    commitPuts(b, 30, 40, models, big);
    expect(readAll(a)).toEqual(models.get(230));
    expectVerified(a);
    a.close();
    b.close();
    const c = open(dbPath(), { sync: 'none' });
    try {
      expect(readAll(c)).toEqual(models.get(230));
      expectVerified(c);
    } finally {
      c.close();
    }
  });
});

describe('stats across a log replaced by retention', () => {
  const { openDb } = useTempDbs('ns-retention-stats-');
  it('logIo stays cumulative: the copy is counted, nothing is forgotten', () => {
    const db = openDb({ sync: 'full', log: { retainTxns: 2, retainBytes: Infinity }, checkpoint: { commits: 5 } });
    let last = db.stats().logIo;
    for (let i = 0; i < 150; i++) {
      const w = db.beginWrite();
      w.put(key(i % 10), 'v'.repeat(16 * 1024));
      w.commit();
      const now = db.stats();
      expect(now.logIo.bytesWritten).toBeGreaterThan(last.bytesWritten);
      expect(now.logIo.fdatasyncs).toBeGreaterThan(last.fdatasyncs);
      last = now.logIo;
    }
    expect(db.stats().log.start).toBeGreaterThan(32);
  });
});

describe('retention and group commit', () => {
  const { openDb } = useTempDbs('ns-retention-async-');
  it('a drop while a commitAsync sync is in flight leaves that sync to finish on the old file, and the commit is acknowledged', async () => {
    // A checkpoint (db.checkpoint(), on this thread) after every second commit, and a drop at
    // every checkpoint: it replaces the log while the fdatasync commit 2k-1's commitAsync
    // started is in flight. The test file system runs an asynchronous sync on a later turn of
    // the event loop, so the replacement comes first every time (a real one races the thread
    // pool). The automatic checkpoints commitAsync starts run on the thread pool, so at most
    // one of them starts during the loop and none finishes.
    const fileSystem = new FaultyFileSystem();
    const db = openDb({ fileSystem, sync: 'full', checkpoint: { commits: 2 }, log: { retainTxns: 1, retainBytes: Infinity, minDropBytes: 0 } });
    const acked: Promise<number>[] = [];
    for (let i = 0; i < 40; i++) {
      const w = db.beginWrite();
      w.put(key(i), 'v'.repeat(500));
      acked.push(w.commitAsync());
      if (i % 2 === 1) db.checkpoint();
    }
    expect(await Promise.all(acked)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const s = db.stats();
    expect(s.log.start).toBeGreaterThan(32);
    expect(s.txnId).toBe(40);
    const w = db.beginWrite(); // not refused: no sync failed
    w.put('after', 'x');
    w.commit();
    expectVerified(db);
  });
});

describe('close and group commit', () => {
  const { openDb } = useTempDbs('ns-retention-close-');
  it('close() while a commitAsync sync is in flight: the sync ends on the open file, the commit is acknowledged', async () => {
    const fileSystem = new FaultyFileSystem();
    const db = openDb({ fileSystem, sync: 'full' });
    const w = db.beginWrite();
    w.put('k', 'v');
    const acked = w.commitAsync();
    db.close(); // its checkpoint syncs the log; the async sync still runs a turn later
    expect(await acked).toBe(1);
    const again = openDb({ fileSystem, sync: 'full' });
    const r = again.beginRead();
    expect(r.get('k')?.toString()).toBe('v');
    r.close();
  });
});

describe('where the log starts, with sector-aligned appends', () => {
  const { openDb } = useTempDbs('ns-retention-sector-');
  it('stats().log.firstTxnId is the first record readLog returns, whether the log starts at a record or at an alignment gap', () => {
    for (const sectorSize of [0, 4096]) {
      const db = openDb({ sectorSize, checkpoint: { commits: 7 }, log: { retainTxns: 3, retainBytes: Infinity, minDropBytes: 0 } }, `db${sectorSize}`);
      commitPuts(db, 60, 20, new Map([[0, new Map()]]), 300);
      const s = db.stats();
      expect(s.log.start, `sectorSize ${sectorSize}`).toBeGreaterThan(32);
      const first = [...db.readLog({ fromTxnId: s.log.firstTxnId! })][0]!.txnId;
      expect(s.log.firstTxnId).toBe(first);
      expectCode(() => [...db.readLog({ fromTxnId: first - 1 })], 'SnapshotNotFound');
    }
  });
});
