// Several handles on one database in one thread: the protocol of
// spec/concurrency_v0.md without processes (ts/db.processes.test.ts runs it
// across processes and worker threads). Every handle is independent, exactly
// as one in another process would be: its own slot, cache, free list, log fd.

import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { setFailpointHook } from './io/failpoint.js';
import { FaultyFileSystem } from './io/faulty.js';
import { open, type Database, type OpenOptions } from './db/index.js';
import { W_SEQ } from './shared/layout.js';
import { openStore } from './shared/store.js';
import { expectCode, expectVerified, useTempDbs } from './testing/fixtures.js';

const tmp = useTempDbs('northstar-handles-');

function put(db: Database, entries: Array<[string, string]>, options?: { timeoutMs?: number }): number {
  const w = db.beginWrite(options);
  for (const [k, v] of entries) w.put(k, v);
  return w.commit();
}

function get(db: Database, key: string, txnId?: number): string | undefined {
  const r = db.beginRead(txnId === undefined ? {} : { txnId });
  try {
    return r.get(key)?.toString();
  } finally {
    r.close();
  }
}


function two(options: OpenOptions = {}): [Database, Database] {
  const a = tmp.openDb(options);
  const b = tmp.track(open(tmp.dbPath(), { sync: 'none', ...options }));
  return [a, b];
}

describe('handles on one database', () => {
  it('a commit on one handle is seen by the next beginRead of every other, without a checkpoint', () => {
    const [a, b] = two();
    put(a, [['k', 'a1']]);
    expect(b.txnId).toBe(1);
    expect(get(b, 'k')).toBe('a1');
    put(b, [['k', 'b2']]);
    expect(get(a, 'k')).toBe('b2');
    expect(a.stats().checkpoint.txnId).toBe(0);
  });

  it('stats().catchUps counts the beginReads that learned other handles\' commits, once however many there were', () => {
    const [a, b] = two();
    get(b, 'k');
    const base = b.stats().catchUps;
    get(b, 'k');
    expect(b.stats().catchUps).toBe(base); // nothing new
    const aBase = a.stats().catchUps;
    put(a, [['k', '1']]);
    put(a, [['k', '2']]);
    expect(get(b, 'k')).toBe('2');
    expect(b.stats().catchUps).toBe(base + 1); // two commits, one catch-up
    expect(get(b, 'k')).toBe('2');
    expect(b.stats().catchUps).toBe(base + 1);
    expect(get(a, 'k')).toBe('2');
    expect(a.stats().catchUps).toBe(aBase); // a's own commits are not caught up on
  });

  it('one writer at a time: WriteBusy on the other handle, timeoutMs waits that long, then the writer is free after commit or abort', () => {
    const [a, b] = two();
    const w = a.beginWrite();
    w.put('x', '1');
    expectCode(() => b.beginWrite(), 'WriteBusy');
    const t0 = performance.now();
    expectCode(() => b.beginWrite({ timeoutMs: 60 }), 'WriteBusy');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    w.commit();
    expect(put(b, [['y', '2']], { timeoutMs: 1000 })).toBe(2);
    const w2 = b.beginWrite();
    expectCode(() => a.beginWrite(), 'WriteBusy');
    w2.abort();
    expect(put(a, [['z', '3']])).toBe(3);
    expectCode(() => a.beginWrite({ timeoutMs: -1 }), 'InvalidArgument');
  });

  it('writers taking turns keep one consistent tree: every value, verify() clean, and freed pages are reused (the file stops growing)', () => {
    const [a, b] = two({ history: { txns: 0 } });
    const model = new Map<string, string>();
    let sizeAfterWarmup = 0;
    for (let round = 0; round < 60; round++) {
      const db = round % 3 === 0 ? a : b;
      const w = db.beginWrite();
      for (let i = 0; i < 200; i++) {
        const k = `key${String((round * 37 + i * 11) % 900).padStart(4, '0')}`;
        const v = `r${round}-${i}-${'x'.repeat(40)}`;
        w.put(k, v);
        model.set(k, v);
      }
      w.commit();
      if (round === 20) sizeAfterWarmup = a.stats().pageCount;
    }
    for (const db of [a, b]) {
      const r = db.beginRead();
      expect([...r.scan()].map(([k, v]) => `${k}=${v}`)).toEqual([...model.keys()].sort().map((k) => `${k}=${model.get(k)}`));
      r.close();
    }
    expect(b.stats().pageCount).toBeLessThanOrEqual(sizeAfterWarmup + 8);
    expectVerified(a);
    expectVerified(b);
  });

  it("a snapshot held on one handle stays intact while another rewrites everything (history 0): its pages are reused only after it closes", async () => {
    const [a, b] = two({ history: { txns: 0 } });
    const keys = Array.from({ length: 300 }, (_, i) => `k${String(i).padStart(4, '0')}`);
    put(a, keys.map((k) => [k, `v0-${k}`]));
    const old = b.beginRead();
    expect(a.stats().readers.others).toEqual([{ pid: process.pid, txnId: 1 }]);
    for (let round = 1; round <= 30; round++) put(a, keys.map((k) => [k, `v${round}-${k}-${'y'.repeat(30)}`]));
    expect([...old.scan()].map(([k, v]) => `${k}=${v}`)).toEqual(keys.map((k) => `${k}=v0-${k}`));
    const grown = a.stats().pageCount;
    old.close();
    // The slot is raised when the current task ends (concurrency §4.2).
    await Promise.resolve();
    expect(a.stats().readers.others).toEqual([]);
    for (let round = 31; round <= 60; round++) put(a, keys.map((k) => [k, `v${round}-${k}-${'y'.repeat(30)}`]));
    expect(a.stats().pageCount).toBeLessThanOrEqual(grown);
    expect(get(b, 'k0007')).toBe(`v60-k0007-${'y'.repeat(30)}`);
    expectVerified(b);
  });

  it('time travel works from every handle, for commits made on any of them', () => {
    const [a, b] = two();
    put(a, [['k', 'one']]);
    put(b, [['k', 'two']]);
    put(a, [['k', 'three']]);
    for (const db of [a, b]) {
      expect(get(db, 'k', 1)).toBe('one');
      expect(get(db, 'k', 2)).toBe('two');
      expect(get(db, 'k', 3)).toBe('three');
    }
  });

  it('a handle opened after commits adopts the published state; recovery runs only when no handle is live', () => {
    const a = tmp.openDb();
    put(a, [['k', '1']]);
    put(a, [['k', '2']]);
    const b = tmp.track(open(tmp.dbPath(), { sync: 'none' }));
    expect(b.txnId).toBe(2);
    expect(get(b, 'k')).toBe('2');
    expect(b.stats().checkpoint.txnId).toBe(0);
    a.close();
    put(b, [['k', '3']]);
    b.close();
    const c = tmp.openDb();
    expect(c.txnId).toBe(3);
    expect(get(c, 'k', 1)).toBe('1');
    expectVerified(c);
  });

  // Found by the multi-process crash torture (ts/hard/crashmulti.ts): each replayed commit
  // released the writer lock, so a second opener recovered the same records at once and
  // published an older state over the first one's commits (an acknowledged commit was lost).
  it('recovery holds the writer lock until it has replayed every record', () => {
    const a = tmp.openDb({ sync: 'full', checkpoint: { commits: 100 } });
    for (let i = 1; i <= 3; i++) put(a, [[`k${i}`, `v${i}`]]);
    // The files as a crash would leave them: three commits in the log after the last checkpoint.
    const copy = tmp.dbPath('copy');
    fs.copyFileSync(tmp.dbPath(), copy);
    fs.copyFileSync(tmp.logPath(), `${copy}.log`);
    const lockedDuringReplay: boolean[] = [];
    setFailpointHook((name) => {
      if (name !== 'afterCommitPublish') return;
      const other = openStore(copy, null);
      const got = other.tryLockWriter();
      if (got) other.unlockWriter();
      other.close();
      lockedDuringReplay.push(!got);
    });
    try {
      const b = tmp.track(open(copy, { sync: 'none' }));
      expect(b.txnId).toBe(3);
    } finally {
      setFailpointHook(null);
    }
    expect(lockedDuringReplay).toEqual([true, true, true]);
  });

  it('a checkpoint that dies after its meta write, before publishing: the last writer does not reuse the pages of the new chains', () => {
    const opts = { sync: 'full' as const, history: { txns: 0 }, checkpoint: { commits: 1000 } };
    const a = tmp.openDb(opts);
    const b = tmp.track(open(tmp.dbPath(), opts));
    const value = (i: number, round: number): string => `${round}:${'x'.repeat(300 + ((i * 7 + round) % 200))}`;
    // Later rounds grow the tree: b takes pages from the end of the file too.
    const keys = (r: number): number => (r < 6 ? 60 : 60 * (r - 4));
    const round = (db: Database, r: number): void => {
      const w = db.beginWrite();
      for (let i = 0; i < keys(r); i++) w.put(`k${String(i).padStart(3, '0')}`, value(i, r));
      w.commit();
    };
    // b writes last, with pages freed and reusable.
    for (let r = 0; r < 6; r++) round(b, r);
    // a checkpoints and dies once its meta is durable, before it publishes (a SIGKILL there).
    setFailpointHook((name) => {
      if (name === 'afterMetaSync') throw new Error('killed');
    });
    try {
      expect(() => a.checkpoint()).toThrow('killed');
    } finally {
      setFailpointHook(null);
    }
    // b goes on: it must not take the pages a's durable meta now points at.
    for (let r = 6; r < 12; r++) round(b, r);
    const copy = tmp.dbPath('copy');
    fs.copyFileSync(tmp.dbPath(), copy);
    fs.copyFileSync(tmp.logPath(), `${copy}.log`);
    const c = tmp.track(open(copy, { sync: 'none' }));
    expect(c.txnId).toBe(12);
    const rd = c.beginRead();
    for (let i = 0; i < keys(11); i++) expect(rd.get(`k${String(i).padStart(3, '0')}`)?.toString()).toBe(value(i, 11));
    rd.close();
    expectVerified(c);
  });

  it('a truncateLog that dies right after replacing the log: the last writer appends to the new file, and readers follow it there', () => {
    const opts = { sync: 'full' as const, checkpoint: { commits: 1000 } };
    const a = tmp.openDb(opts);
    const b = tmp.track(open(tmp.dbPath(), opts));
    const c = tmp.track(open(tmp.dbPath(), opts));
    for (let i = 1; i <= 10; i++) put(b, [[`k${i}`, `v${i}`]]);
    b.checkpoint();
    expect(get(c, 'k10')).toBe('v10');
    // a replaces the log file, then dies before anything of it is published (a SIGKILL there).
    setFailpointHook((name) => {
      if (name === 'beforeCheckpointLogSync') throw new Error('killed');
    });
    try {
      expect(() => a.truncateLog({ beforeTxnId: 8 })).toThrow('killed');
    } finally {
      setFailpointHook(null);
    }
    for (let i = 11; i <= 13; i++) put(b, [[`k${i}`, `v${i}`]]);
    expect(get(c, 'k13')).toBe('v13');
    const copy = tmp.dbPath('copy');
    fs.copyFileSync(tmp.dbPath(), copy);
    fs.copyFileSync(tmp.logPath(), `${copy}.log`);
    const d = tmp.track(open(copy, { sync: 'none' }));
    expect(d.txnId).toBe(13);
    expect(get(d, 'k13')).toBe('v13');
    expectVerified(d);
  });

  it('a handle that read the meta before another recovered, and adopts after: its history has the replayed roots, not the crashed run\'s', () => {
    // The crashed run keeps no history and reuses freed pages at once; the replay keeps 20
    // snapshots and takes new ones: the records' roots are not the replayed trees' roots.
    const run = new FaultyFileSystem();
    const x = open('/db', { fileSystem: run, sync: 'none', history: { txns: 0 }, checkpoint: { commits: 1000 } });
    const value = (i: number, t: number): string => `${t}:${'v'.repeat(200 + ((i * 13 + t) % 100))}`;
    const commit = (t: number): void => {
      const w = x.beginWrite();
      for (let i = 0; i < 40; i++) w.put(`k${String(i).padStart(2, '0')}`, value(i, t));
      w.commit();
    };
    for (let t = 1; t <= 3; t++) commit(t);
    x.checkpoint();
    for (let t = 4; t <= 9; t++) commit(t);
    // The files as SIGKILL leaves them; `a` opens and recovers while `b` is between reading
    // the meta and looking for ready handles (inside its open of the log).
    class Interleaved extends FaultyFileSystem {
      during: (() => void) | null = null;
      override open(path: string): ReturnType<FaultyFileSystem['open']> {
        const f = super.open(path);
        const d = this.during;
        if (d !== null && path.endsWith('.log')) {
          this.during = null;
          d();
        }
        return f;
      }
    }
    const crashed = run.crash(() => 'keep');
    const files = new Interleaved();
    for (const p of crashed.paths()) files.setBytes(p, crashed.bytes(p));
    const opts = { fileSystem: files, sync: 'none' as const, history: { txns: 20 } };
    let a: Database | null = null;
    files.during = () => {
      a = tmp.track(open('/db', opts));
    };
    const b = tmp.track(open('/db', opts));
    expect(a).not.toBeNull();
    expect(b.txnId).toBe(9);
    for (let t = 4; t <= 9; t++) {
      const r = b.beginRead({ txnId: t });
      try {
        for (let i = 0; i < 40; i += 7) expect(r.get(`k${String(i).padStart(2, '0')}`)?.toString(), `txn ${t}`).toBe(value(i, t));
      } finally {
        r.close();
      }
    }
    x.close();
  });

  // Before: every readPublished() spun for good (the next writer's takeOver holding the writer
  // lock, so no one could publish again), and a publish by a new handle left W_SEQ odd as well.
  it('a publisher killed between its two W_SEQ stores (the word left odd) stops no one: the next writer or reader rebuilds the block', () => {
    const a = tmp.openDb();
    const b = tmp.track(open(tmp.dbPath(), { sync: 'none' }));
    const halfPublished = (): void => {
      const words = openStore(tmp.dbPath(), null);
      words.store(W_SEQ, words.load(W_SEQ) + 1);
      words.close();
    };
    put(a, [['k', '1']]);
    put(a, [['k', '2']]);
    halfPublished();
    expect(put(b, [['k', '3']])).toBe(3);
    expect(get(a, 'k')).toBe('3');
    expect(get(a, 'k', 2)).toBe('2');
    // With no writer coming, a reader repairs it.
    put(b, [['k', '4']]);
    halfPublished();
    expect(get(a, 'k')).toBe('4');
    expect(get(b, 'k')).toBe('4');
    const c = tmp.track(open(tmp.dbPath(), { sync: 'none' }));
    expect(c.txnId).toBe(4);
    expectVerified(c);
  });

  it('checkpoints and truncateLog on one handle: the other keeps reading, writing and time-travelling within what is left', () => {
    const [a, b] = two();
    for (let i = 1; i <= 10; i++) put(a, [[`k${i}`, `v${i}`]]);
    a.checkpoint();
    a.truncateLog({ beforeTxnId: 8 });
    expect(get(b, 'k3')).toBe('v3');
    put(b, [['k11', 'v11']]);
    expect(get(a, 'k11')).toBe('v11');
    expect(get(b, 'k9', 9)).toBe('v9');
    expect([...b.readLog({ fromTxnId: 9 })].map((c) => c.txnId)).toEqual([9, 10, 11]);
    expectVerified(b);
    expectVerified(a);
  });

  it("commitAsync keeps the writer until its sync: the other handle gets WriteBusy, then sees the commit", async () => {
    const [a, b] = two({ sync: 'full' });
    const w = a.beginWrite();
    w.put('k', 'async');
    const done = w.commitAsync();
    expectCode(() => b.beginWrite(), 'WriteBusy');
    await done;
    expect(get(b, 'k')).toBe('async');
    put(b, [['k', 'b']]);
    expect(get(a, 'k')).toBe('b');
  });

  it("'commit' events fire on other handles for commits they catch up on", () => {
    const [a, b] = two();
    const seen: number[] = [];
    b.on('commit', (e: { txnId: number }) => seen.push(e.txnId));
    put(a, [['k', '1']]);
    put(a, [['k', '2']]);
    expect(b.txnId).toBe(2);
    expect(seen).toEqual([1, 2]);
  });

  it('a custom file system (in-memory) coordinates its handles the same way', () => {
    const files = new FaultyFileSystem();
    const a = tmp.track(open('/mem/db', { fileSystem: files, sync: 'none' }));
    const b = tmp.track(open('/mem/db', { fileSystem: files, sync: 'none' }));
    expect(a.stats().coordination).toBe('memory');
    put(a, [['k', '1']]);
    expect(get(b, 'k')).toBe('1');
    a.beginWrite();
    expectCode(() => b.beginWrite(), 'WriteBusy');
  });

  it('a catch-up reads ahead the pages a commit wrote in place of cached ones, and only those', () => {
    const [a, b] = two({ pageSize: 4096 });
    const entries: Array<[string, string]> = [];
    for (let i = 0; i < 2000; i++) entries.push([`key${String(i).padStart(5, '0')}`, `v${i}`.repeat(8)]);
    put(a, entries);
    // b has cached nothing yet: a commit replaces none of its pages, nothing is read ahead.
    put(a, [['key00007', 'new7']]);
    expect(get(b, 'key00007')).toBe('new7');
    expect(b.stats().cache.prefetched).toBe(0);
    const r = b.beginRead();
    for (const [k] of entries) r.get(k);
    r.close();
    // The path to key01234 (root, branch, leaf) is cached on b; a's commit replaces it.
    const before = b.stats().cache;
    put(a, [['key01234', 'new1234']]);
    const t = b.beginRead();
    const after = b.stats().cache;
    expect(after.prefetched - before.prefetched).toBeGreaterThanOrEqual(2);
    expect(t.get('key01234')?.toString()).toBe('new1234');
    expect(t.get('key00007')?.toString()).toBe('new7');
    expect(b.stats().cache.misses, 'the gets found the new path in the cache').toBe(after.misses);
    t.close();
    expectVerified(b);
  });

  it('a page that fails to read while read ahead is skipped: beginRead succeeds, the get that needs it throws Corrupt', () => {
    const [a, b] = two({ pageSize: 4096 });
    const entries: Array<[string, string]> = [];
    for (let i = 0; i < 2000; i++) entries.push([`key${String(i).padStart(5, '0')}`, `v${i}`.repeat(8)]);
    put(a, entries);
    a.checkpoint();
    const r = b.beginRead();
    for (const [k] of entries) r.get(k);
    r.close();
    const path = tmp.dbPath();
    const old = fs.readFileSync(path);
    const prefetched = b.stats().cache.prefetched;
    put(a, [['key01234', 'new1234']]);
    // Damage every page the commit wrote (sync 'none', no checkpoint: the only pages that changed).
    const now = fs.readFileSync(path);
    const fd = fs.openSync(path, 'r+');
    let damaged = 0;
    try {
      for (let at = 0; at < now.length; at += 4096) {
        if (at < old.length && now.subarray(at, at + 4096).equals(old.subarray(at, at + 4096))) continue;
        fs.writeSync(fd, Buffer.from([now[at + 100]! ^ 0xff]), 0, 1, at + 100);
        damaged++;
      }
    } finally {
      fs.closeSync(fd);
    }
    expect(damaged).toBeGreaterThanOrEqual(2);
    const t = b.beginRead();
    expect(b.stats().cache.prefetched - prefetched).toBeGreaterThanOrEqual(2);
    // Every get goes through the new root, which is damaged too.
    expectCode(() => t.get('key01234'), 'Corrupt');
    expectCode(() => t.get('key00007'), 'Corrupt');
    t.close();
  });
});
