// Hardening §7: concurrency torture, async readers in one thread (issue 5).
//
// One writer commits bank transfers between accounts (commit() and
// commitAsync(), so group commit publishes too), plus blobs of 0–30,000 bytes
// that are written, replaced and deleted (overflow chains, file growth, pages
// freed and reused), with automatic checkpoints and a short history so freed
// pages come back quickly. Between its commits many async readers interleave,
// each awaiting between steps so the writer commits in the middle of their
// reads and scans; some readers hold their snapshot for a long time, some
// travel back in time. The writer records the exact state of every commit, so
// readers compare against it rather than trust a sum alone. Checked:
//
// - every snapshot: the balances sum to the constant total, and every account
//   and blob equals the writer's state at that txn id (no torn state);
// - a prefix scan awaited in pieces yields exactly the snapshot's accounts, in
//   order (scans are stable while commits happen);
// - a reader's successive latest snapshots never go backwards;
// - no read throws;
// - every buffer handed to a reader is kept with a private copy; after the
//   readers, a churn phase rewrites and frees everything (pages reused, the
//   file grows), the database closes, and no kept buffer has changed: returned
//   buffers are the caller's, whatever the writer does, and never fault after
//   their transaction ends.
//
// ts/hard/concurrencymulti.ts runs the same checks with readers in worker
// threads and child processes and writers in other processes.

import * as nodePath from 'node:path';
import { open, type Database } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import type { ReadTxn } from '../txn/read.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { randInt, randomBytes, removeDir, rng, tempDir } from '../testing/rng.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const acct = (i: number): string => `acct:${String(i).padStart(4, '0')}`;
const blob = (i: number): string => `blob:${String(i).padStart(2, '0')}`;
/** An account value: the balance, then filler so values vary in size (splits and merges). */
const encode = (balance: number, pad: number): Buffer => Buffer.from(`${balance}|${'.'.repeat(pad)}`);
const balanceOf = (v: Buffer): number => Number(v.toString('latin1').split('|')[0]);

/** The writer's exact state after one commit. */
interface State {
  accounts: Buffer[];
  blobs: Map<string, Buffer>;
}

export interface ConcurrencyOptions extends SuiteOptions {
  /** Concurrent readers (default 16 short, 64 long). */
  readers?: number;
  /** Writer commits (default 150 short, 4,000 long). */
  commits?: number;
  /** Accounts (default 300). */
  accounts?: number;
}

export async function runConcurrency(opts: ConcurrencyOptions): Promise<Figures> {
  const readers = opts.readers ?? (opts.long ? 64 : 16);
  const commits = opts.commits ?? (opts.long ? 4000 : 150);
  const accounts = opts.accounts ?? 300;
  const total = accounts * 1000;
  const dir = tempDir('concurrency');
  const f = {
    readers,
    writerCommits: 0,
    asyncCommits: 0,
    readerSnapshots: 0,
    timeTravelSnapshots: 0,
    longLivedSnapshots: 0,
    pointReads: 0,
    scans: 0,
    scanEntries: 0,
    invariantViolations: 0,
    tornReads: 0,
    scanMismatches: 0,
    snapshotsBackwards: 0,
    readerErrors: 0,
    buffersKept: 0,
    bytesKept: 0,
    buffersChanged: 0,
    pagesWritten: 0,
    finalPageCount: 0,
    maxFileSizePages: 0,
    failures: 0,
  };
  const fail = (what: string): void => {
    f.failures++;
    if (f.failures <= 20) opts.log(`FAIL ${what} (seed ${opts.seed})`);
  };
  const kept: Array<[Buffer, Buffer]> = [];
  const MAX_KEPT_BYTES = 64 * 1024 * 1024;
  const keep = (b: Buffer): void => {
    if (f.bytesKept + b.length > MAX_KEPT_BYTES) return;
    kept.push([b, Buffer.from(b)]);
    f.buffersKept++;
    f.bytesKept += b.length;
  };
  let db: Database | null = null;
  try {
    db = open(nodePath.join(dir, 'bank.ndb'), { pageSize: 4096, cacheSize: 64 * 4096, history: { txns: 8 }, checkpoint: { commits: 25 } });
    const states = new Map<number, State>();
    const w0 = db.beginWrite();
    const r = rng(opts.seed, 7);
    const initial: Buffer[] = [];
    for (let i = 0; i < accounts; i++) {
      initial.push(encode(1000, randInt(r, 60)));
      w0.put(acct(i), initial[i]!);
    }
    states.set(w0.commit(), { accounts: initial, blobs: new Map() });
    let writerDone = false;

    const writer = async (): Promise<void> => {
      let cur = states.get(db!.txnId)!;
      for (let c = 0; c < commits; c++) {
        const next: State = { accounts: cur.accounts.slice(), blobs: cur.blobs };
        const w = db!.beginWrite();
        for (let t = 0, n = 1 + randInt(r, 8); t < n; t++) {
          const a = randInt(r, accounts);
          const b = (a + 1 + randInt(r, accounts - 1)) % accounts;
          const ba = balanceOf(next.accounts[a]!);
          const amount = Math.min(ba, 1 + randInt(r, 200));
          next.accounts[a] = encode(ba - amount, randInt(r, 60));
          next.accounts[b] = encode(balanceOf(next.accounts[b]!) + amount, randInt(r, 60));
          w.put(acct(a), next.accounts[a]!);
          w.put(acct(b), next.accounts[b]!);
        }
        if (r() < 0.4) {
          next.blobs = new Map(cur.blobs);
          const k = blob(randInt(r, 24));
          if (r() < 0.3) {
            w.del(k);
            next.blobs.delete(k);
          } else {
            const v = randomBytes(r, r() < 0.5 ? randInt(r, 600) : 1000 + randInt(r, 30_000));
            w.put(k, v);
            next.blobs.set(k, v);
          }
        }
        const txnId = w.txnId;
        states.set(txnId, next);
        if (r() < 0.5) {
          f.asyncCommits++;
          if ((await w.commitAsync()) !== txnId) fail(`commitAsync returned another txn id than ${txnId}`);
        } else if (w.commit() !== txnId) fail(`commit returned another txn id than ${txnId}`);
        f.writerCommits++;
        cur = next;
        f.maxFileSizePages = Math.max(f.maxFileSizePages, db!.stats().fileSize / 4096);
        await tick();
      }
      writerDone = true;
    };

    /** Checks one snapshot end to end, awaiting between steps. */
    const checkSnapshot = async (txn: ReadTxn, hold: number): Promise<void> => {
      const want = states.get(txn.txnId);
      if (want === undefined) {
        fail(`snapshot ${txn.txnId} is no commit the writer made`);
        return;
      }
      let sum = 0;
      const order = Array.from({ length: accounts }, (_, i) => i);
      for (let i = 0; i < accounts; i++) {
        if (i % 25 === 0) await tick();
        const v = txn.get(acct(order[i]!));
        f.pointReads++;
        if (v === undefined || !v.equals(want.accounts[order[i]!]!)) {
          f.tornReads++;
          fail(`snapshot ${txn.txnId}: ${acct(order[i]!)} is ${v?.toString('latin1')}, the commit wrote ${want.accounts[order[i]!]!.toString('latin1')}`);
          return;
        }
        sum += balanceOf(v);
        if (randInt(r, 8) === 0) keep(v);
      }
      if (sum !== total) {
        f.invariantViolations++;
        fail(`snapshot ${txn.txnId}: balances sum to ${sum}, not ${total}`);
      }
      for (let h = 0; h < hold; h++) await tick();
      f.scans++;
      let i = 0;
      for (const [k, v] of txn.scan({ prefix: 'acct:' })) {
        if (i % 25 === 0) await tick();
        if (k.toString() !== acct(i) || !v.equals(want.accounts[i]!)) {
          f.scanMismatches++;
          fail(`snapshot ${txn.txnId}: scan entry ${i} is ${k.toString()}, expected ${acct(i)} with the commit's value`);
          return;
        }
        if (randInt(r, 16) === 0) keep(k);
        if (randInt(r, 16) === 0) keep(v);
        i++;
      }
      f.scanEntries += i;
      if (i !== accounts) {
        f.scanMismatches++;
        fail(`snapshot ${txn.txnId}: scan yielded ${i} of ${accounts} accounts`);
      }
      await tick();
      for (let b = 0; b < 24; b++) {
        const v = txn.get(blob(b));
        f.pointReads++;
        const expect = want.blobs.get(blob(b));
        if ((v === undefined) !== (expect === undefined) || (v !== undefined && !v.equals(expect!))) {
          f.tornReads++;
          fail(`snapshot ${txn.txnId}: ${blob(b)} differs from the commit`);
        } else if (v !== undefined && randInt(r, 4) === 0) keep(v);
      }
    };

    const reader = async (id: number): Promise<void> => {
      const rr = rng(opts.seed, 1000 + id);
      let last = 0;
      while (!writerDone) {
        let txn: ReadTxn | null = null;
        try {
          const travel = rr() < 0.15;
          if (travel) {
            const s = db!.stats().history;
            const from = Math.max(1, s.oldestTxnId ?? db!.txnId); // txn 0 is the empty database, before the accounts
            txn = db!.beginRead({ txnId: from + randInt(rr, db!.txnId - from + 1) });
            f.timeTravelSnapshots++;
          } else {
            txn = db!.beginRead();
            if (txn.txnId < last) {
              f.snapshotsBackwards++;
              fail(`reader ${id}: snapshot ${txn.txnId} after ${last}`);
            }
            last = txn.txnId;
          }
          f.readerSnapshots++;
          const hold = rr() < 0.05 ? 20 + randInt(rr, 200) : 0;
          if (hold > 0) f.longLivedSnapshots++;
          await checkSnapshot(txn, hold);
        } catch (err) {
          f.readerErrors++;
          fail(`reader ${id}: ${err instanceof NorthstarError ? err.code : ''} ${String(err)}`);
        } finally {
          txn?.close();
        }
        await tick();
      }
    };

    await Promise.all([writer(), ...Array.from({ length: readers }, (_, i) => reader(i))]);

    // Churn with no reader left: every account and blob rewritten, blobs freed, checkpoints:
    // the pages the readers' buffers came from are reused.
    for (let c = 0; c < 60; c++) {
      const w = db.beginWrite();
      for (let i = c % 3; i < accounts; i += 3) w.put(acct(i), encode(1000, randInt(r, 120)));
      for (let b = 0; b < 24; b++) {
        if ((b + c) % 2 === 0) w.del(blob(b));
        else w.put(blob(b), randomBytes(r, randInt(r, 20_000)));
      }
      w.commit();
    }
    db.checkpoint();
    const s = db.stats();
    f.pagesWritten = Math.round(s.io.bytesWritten / s.pageSize);
    f.finalPageCount = s.pageCount;
    const report = db.verify();
    if (!report.ok) fail(`verify after the run: ${report.problems[0]?.message}`);
    db.close();
    db = null;
    for (const [b, copy] of kept) {
      if (!b.equals(copy)) f.buffersChanged++;
    }
    if (f.buffersChanged > 0) fail(`${f.buffersChanged} of ${kept.length} returned buffers changed after their transactions ended`);
    if (f.pagesWritten <= f.finalPageCount) fail(`no page was reused (${f.pagesWritten} pages written, ${f.finalPageCount} in the file)`);
  } finally {
    db?.close();
    removeDir(dir);
  }
  return f;
}

export const concurrencySuite: HardeningSuite = { name: 'concurrency', run: runConcurrency };
