// One peer of the multi-thread, multi-process concurrency torture
// (ts/hard/concurrencymulti.ts), run compiled: in a worker thread
// (workerData: PeerArgs; the result is posted back) or a child process
// (`node concurrencymulti.child.js '<json PeerArgs>'`; the result is the last
// line of stdout, `result <json>`). Its own database handle:
//
// - writer: takes turns with the other writers (beginWrite({ timeoutMs })) to
//   commit the bank workload (ts/hard/bank.ts), commit() or commitAsync(),
//   reading each balance it moves through its write transaction and checking
//   it against the model (a writer that took over from another process must
//   see exactly the last commit), with a checkpoint() now and then;
// - reader: many async readers that interleave (awaiting between steps, so
//   other processes commit in the middle of their reads and scans) until the
//   run's last commit: every snapshot checked against the model (balances sum
//   to the total, every account and blob as committed, a prefix scan in pieces
//   yields the accounts in order), latest snapshots never going backwards,
//   some held for long, some time travel. Every returned buffer it keeps is
//   re-checked against a private copy now and then, after the last commit
//   (the churn has reused the pages they came from and grown the file) and
//   after the handle is closed.

import * as fs from 'node:fs';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { open, type Database } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import type { ReadTxn } from '../txn/read.js';
import type { WriteTxn } from '../txn/write.js';
import { acct, balanceOf, BankModel, bankCommit, blob, BLOBS, matches, type BankConfig } from './bank.js';
import { randInt, rng } from '../testing/rng.js';

export interface PeerArgs {
  role: 'writer' | 'reader';
  name: string;
  path: string;
  cfg: BankConfig;
  seed: number;
  /** Async readers on this handle (readers). */
  readers: number;
  pageSize: number;
  cacheSize: number;
  historyTxns: number;
  checkpointCommits: number;
  /** Bytes of returned buffers a reader keeps for the later checks. */
  maxKeptBytes: number;
  /** Give up waiting for the run's last commit after this long. */
  waitMs: number;
}

export interface PeerResult {
  name: string;
  role: 'writer' | 'reader';
  figures: Record<string, number>;
  /** The first problems seen, described. */
  problems: string[];
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const codeOf = (err: unknown): string => (err instanceof NorthstarError ? err.code : 'Error');

function openDb(a: PeerArgs): Database {
  return open(a.path, { pageSize: a.pageSize, cacheSize: a.cacheSize, history: { txns: a.historyTxns }, checkpoint: { commits: a.checkpointCommits } });
}

async function writer(a: PeerArgs): Promise<PeerResult> {
  const f = { commits: 0, asyncCommits: 0, checkpoints: 0, beginWriteTimeouts: 0, checkpointsBusy: 0, viewMismatches: 0, errors: 0, bytesWritten: 0, maxFileSizePages: 0, verifyProblems: 0 };
  const problems: string[] = [];
  const problem = (s: string): void => {
    if (problems.length < 10) problems.push(`${a.name}: ${s}`);
  };
  const model = new BankModel(a.cfg);
  const r = rng(a.seed, 7);
  const db = openDb(a);
  try {
    for (;;) {
      let w: WriteTxn;
      try {
        w = db.beginWrite({ timeoutMs: 10_000 });
      } catch (err) {
        if (codeOf(err) !== 'WriteBusy') throw err;
        f.beginWriteTimeouts++;
        continue;
      }
      const t = w.txnId;
      if (t > a.cfg.end) {
        w.abort();
        break;
      }
      const c = bankCommit(a.cfg, t, (i) => {
        const v = w.get(acct(i));
        const e = model.at(acct(i), t - 1);
        if (!matches(v, e)) {
          f.viewMismatches++;
          problem(`txn ${t}: its write transaction reads ${acct(i)} as ${v?.toString('latin1')}, txn ${t - 1} wrote ${String(e)}`);
        }
        return balanceOf(v ?? (e as Buffer));
      });
      for (const [k, v] of c.puts) w.put(k, v);
      for (const k of c.dels) w.del(k);
      let id: number;
      if (r() < 0.5) {
        f.asyncCommits++;
        id = await w.commitAsync();
      } else id = w.commit();
      if (id !== t) problem(`commit returned txn ${id}, its transaction said ${t}`);
      f.commits++;
      if (r() < 0.03) {
        try {
          db.checkpoint();
          f.checkpoints++;
        } catch (err) {
          // The other writer holds the lock (checkpoint() does not wait for it).
          if (codeOf(err) !== 'WriteBusy') throw err;
          f.checkpointsBusy++;
        }
      }
      if (f.commits % 8 === 0) f.maxFileSizePages = Math.max(f.maxFileSizePages, db.stats().fileSize / a.pageSize);
      // Let the other writers in now and then (the lock is not fair).
      if (r() < 0.5) await sleep(randInt(r, 3));
    }
    const report = db.verify();
    f.verifyProblems = report.problems.length;
    if (!report.ok) problem(`verify: ${report.problems.length} problems, first ${report.problems[0]?.message}`);
    const s = db.stats();
    f.bytesWritten = s.io.bytesWritten;
    f.maxFileSizePages = Math.max(f.maxFileSizePages, s.fileSize / a.pageSize);
  } catch (err) {
    f.errors++;
    problem(`${codeOf(err)} ${String((err as Error)?.stack ?? err)}`);
  } finally {
    db.close();
  }
  return { name: a.name, role: 'writer', figures: f, problems };
}

async function reader(a: PeerArgs): Promise<PeerResult> {
  const f = {
    snapshots: 0,
    timeTravelSnapshots: 0,
    timeTravelRefused: 0,
    longLivedSnapshots: 0,
    pointReads: 0,
    scans: 0,
    scanEntries: 0,
    invariantViolations: 0,
    tornReads: 0,
    scanMismatches: 0,
    snapshotsBackwards: 0,
    errors: 0,
    buffersKept: 0,
    bytesKept: 0,
    bufferChecks: 0,
    buffersChanged: 0,
    lastTxnSeen: 0,
  };
  const problems: string[] = [];
  const problem = (s: string): void => {
    if (problems.length < 10) problems.push(`${a.name}: ${s}`);
  };
  const cfg = a.cfg;
  const model = new BankModel(cfg);
  const r = rng(a.seed, 3);
  const kept: Array<{ b: Buffer; copy: Buffer; changed: boolean }> = [];
  const keep = (b: Buffer): void => {
    if (f.bytesKept + b.length > a.maxKeptBytes) return;
    kept.push({ b, copy: Buffer.from(b), changed: false });
    f.buffersKept++;
    f.bytesKept += b.length;
  };
  /** Every kept buffer against its copy; each that changed counts once. */
  const recheck = (when: string): void => {
    f.bufferChecks++;
    let changed = 0;
    for (const k of kept) {
      if (!k.changed && !k.b.equals(k.copy)) {
        k.changed = true;
        changed++;
      }
    }
    if (changed > 0) {
      f.buffersChanged += changed;
      problem(`${changed} of ${kept.length} returned buffers changed (${when})`);
    }
  };

  const check = async (txn: ReadTxn, hold: number): Promise<void> => {
    const t = txn.txnId;
    if (t < 1 || t > cfg.end) {
      problem(`snapshot ${t} is no commit of the run`);
      f.tornReads++;
      return;
    }
    let sum = 0;
    for (let i = 0; i < cfg.accounts; i++) {
      if (i % 25 === 0) await tick();
      const v = txn.get(acct(i));
      f.pointReads++;
      if (!matches(v, model.at(acct(i), t))) {
        f.tornReads++;
        problem(`snapshot ${t}: ${acct(i)} is ${v?.toString('latin1')}, txn ${t} has ${String(model.at(acct(i), t))}`);
        return;
      }
      sum += balanceOf(v!);
      if (randInt(r, 8) === 0) keep(v!);
    }
    if (sum !== model.total) {
      f.invariantViolations++;
      problem(`snapshot ${t}: balances sum to ${sum}, not ${model.total}`);
    }
    for (let h = 0; h < hold; h++) await tick();
    f.scans++;
    let i = 0;
    for (const [k, v] of txn.scan({ prefix: 'acct:' })) {
      if (i % 25 === 0) await tick();
      if (k.toString('latin1') !== acct(i) || !matches(v, model.at(acct(i), t))) {
        f.scanMismatches++;
        problem(`snapshot ${t}: scan entry ${i} is ${k.toString('latin1')}, expected ${acct(i)} with txn ${t}'s value`);
        return;
      }
      if (randInt(r, 16) === 0) keep(k);
      if (randInt(r, 16) === 0) keep(v);
      i++;
    }
    f.scanEntries += i;
    if (i !== cfg.accounts) {
      f.scanMismatches++;
      problem(`snapshot ${t}: the scan yielded ${i} of ${cfg.accounts} accounts`);
    }
    await tick();
    for (let b = 0; b < BLOBS; b++) {
      const v = txn.get(blob(b));
      f.pointReads++;
      if (!matches(v, model.at(blob(b), t))) {
        f.tornReads++;
        problem(`snapshot ${t}: ${blob(b)} (${v?.length ?? 'absent'} bytes) differs from txn ${t}'s`);
      } else if (v !== undefined && randInt(r, 4) === 0) keep(v);
    }
  };

  const db = openDb(a);
  let closed = false;
  const deadline = Date.now() + a.waitMs;
  try {
    const one = async (id: number): Promise<void> => {
      const rr = rng(a.seed, 1000 + id);
      let last = 0;
      while (db.txnId < cfg.end && Date.now() < deadline) {
        let txn: ReadTxn | null = null;
        const travel = rr() < 0.15;
        try {
          if (travel) {
            const latest = db.txnId;
            const from = Math.max(1, db.stats().history.oldestTxnId ?? latest);
            txn = db.beginRead({ txnId: from + randInt(rr, latest - from + 1) });
            f.timeTravelSnapshots++;
          } else {
            txn = db.beginRead();
            if (txn.txnId < last) {
              f.snapshotsBackwards++;
              problem(`reader ${id}: snapshot ${txn.txnId} after ${last}`);
            }
            last = txn.txnId;
            f.lastTxnSeen = Math.max(f.lastTxnSeen, last);
          }
          f.snapshots++;
          const hold = rr() < 0.05 ? 20 + randInt(rr, 200) : 0;
          if (hold > 0) f.longLivedSnapshots++;
          await check(txn, hold);
        } catch (err) {
          // Time travel to the oldest retained txns races other processes' commits, which move the history on.
          if (travel && txn === null && codeOf(err) === 'SnapshotNotFound') f.timeTravelRefused++;
          else {
            f.errors++;
            problem(`reader ${id}: ${codeOf(err)} ${String((err as Error)?.stack ?? err)}`);
          }
        } finally {
          txn?.close();
        }
        if (id === 0 && f.snapshots % 20 === 0) recheck('while the writers commit');
        await tick();
      }
    };
    await Promise.all(Array.from({ length: a.readers }, (_, i) => one(i)));
    while (db.txnId < cfg.end && Date.now() < deadline) await sleep(10);
    if (db.txnId < cfg.end) problem(`the run's last commit (${cfg.end}) did not come within ${a.waitMs} ms; at ${db.txnId}`);
    recheck('after the churn');
    db.close();
    closed = true;
    recheck('after the handle closed');
  } catch (err) {
    f.errors++;
    problem(`${codeOf(err)} ${String((err as Error)?.stack ?? err)}`);
  } finally {
    if (!closed) db.close();
  }
  return { name: a.name, role: 'reader', figures: f, problems };
}

async function main(): Promise<void> {
  const a = (isMainThread ? JSON.parse(process.argv[2]!) : workerData) as PeerArgs;
  const result = a.role === 'writer' ? await writer(a) : await reader(a);
  if (isMainThread) fs.writeSync(1, `result ${JSON.stringify(result)}\n`);
  else parentPort!.postMessage(result);
}

main().catch((err: unknown) => {
  const text = `${codeOf(err)} ${String((err as Error)?.stack ?? err)}`;
  if (isMainThread) {
    fs.writeSync(2, text + '\n');
    process.exit(1);
  }
  throw err;
});
