// Hardening §7 across worker threads and processes: the concurrency torture of
// ts/hard/concurrency.ts with readers in worker threads and in a child process
// while writers in other processes commit. Peers (ts/hard/concurrencymulti.child.ts),
// each with its own handle on one database:
//
// - 2 writer processes taking turns (beginWrite({ timeoutMs })) at the bank
//   workload of ts/hard/bank.ts: transfers, blobs up to 31,000 bytes (overflow
//   chains), then churn that rewrites every account and blob so freed pages are
//   reused and the file grows; automatic and explicit checkpoints, a short
//   history and a small page cache;
// - reader worker threads of this process and reader child processes, each
//   running several async readers until the last commit.
//
// Checked in every peer against the model (every thread and process rebuilds
// any txn's state from the seed): every snapshot's balances sum to the total
// and every account and blob equals its txn's (no torn state), prefix scans in
// pieces yield exactly the accounts in order, a reader's latest snapshots never
// go backwards, nothing throws (SnapshotNotFound for time travel to a txn the
// history left meanwhile is counted apart), each writer reads through its write
// transaction exactly the state of the txn before its own; buffers returned to
// readers never change, re-checked now and then, after the churn and after
// their handle closed (a buffer over reused or unmapped memory would change or
// fault). At the end the database holds the model's last state and verify() is
// clean.

import * as nodePath from 'node:path';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { open } from '../db/index.js';
import { acct, BankModel, bankCommit, blob, BLOBS, matches, type BankConfig } from './bank.js';
import type { PeerArgs, PeerResult } from './concurrencymulti.child.js';
import { compiledEngine } from './compiled.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { removeDir, tempDir } from '../testing/rng.js';

export interface ConcurrencyMultiOptions extends SuiteOptions {
  /** Transfer commits (default 150 short, 8,000 long), then churn commits (45, 300). */
  transfers?: number;
  churn?: number;
  /** Reader worker threads (default 2 short, 4 long) and reader processes (1, 2). */
  threads?: number;
  processes?: number;
  /** Async readers per reader handle (default 4 short, 8 long). */
  readersPerHandle?: number;
}

const PAGE_SIZE = 4096;
const WRITERS = 2;

/** Runs one peer; resolves with its result, or a result holding the reason it has none. */
function runPeer(script: string, args: PeerArgs, kind: 'thread' | 'process', timeoutMs: number): Promise<PeerResult> {
  const failed = (why: string): PeerResult => ({ name: args.name, role: args.role, figures: { peerFailures: 1 }, problems: [`${args.name}: ${why}`] });
  return new Promise((resolve) => {
    if (kind === 'thread') {
      const w = new Worker(script, { workerData: args });
      let result: PeerResult | null = null;
      const timer = setTimeout(() => void w.terminate(), timeoutMs);
      w.on('message', (m: PeerResult) => (result = m));
      w.on('error', (err) => {
        clearTimeout(timer);
        resolve(failed(`the worker threw ${String(err?.stack ?? err)}`));
      });
      w.on('exit', (code) => {
        clearTimeout(timer);
        resolve(result ?? failed(`the worker exited with code ${code} and no result`));
      });
      return;
    }
    const p = spawn(process.execPath, [script, JSON.stringify(args)], { env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', (e) => {
      clearTimeout(timer);
      resolve(failed(`spawn failed: ${e.message}`));
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('result '));
      if (line !== undefined && code === 0) resolve(JSON.parse(line.slice(7)) as PeerResult);
      else resolve(failed(`the process exited with code ${code} signal ${signal}: ${err.trim().split('\n').slice(0, 8).join(' | ')}`));
    });
  });
}

export async function runConcurrencyMulti(opts: ConcurrencyMultiOptions): Promise<Figures> {
  const transfers = opts.transfers ?? (opts.long ? 8000 : 150);
  const churn = opts.churn ?? (opts.long ? 300 : 45);
  const threads = opts.threads ?? (opts.long ? 4 : 2);
  const processes = opts.processes ?? (opts.long ? 2 : 1);
  const readersPerHandle = opts.readersPerHandle ?? (opts.long ? 8 : 4);
  const cfg: BankConfig = { seed: opts.seed, accounts: 300, transfersEnd: 1 + transfers, end: 1 + transfers + churn };
  const timeoutMs = opts.long ? 60 * 60_000 : 120_000;
  const dir = tempDir('concurrencymulti');
  const path = nodePath.join(dir, 'bank.ndb');
  const dbOptions = { pageSize: PAGE_SIZE, cacheSize: 64 * PAGE_SIZE, historyTxns: 8, checkpointCommits: 25 };
  const f = {
    writers: WRITERS,
    readerThreads: threads,
    readerProcesses: processes,
    readersPerHandle,
    commits: cfg.end,
    writerCommits: 0,
    writersThatCommitted: 0,
    asyncCommits: 0,
    explicitCheckpoints: 0,
    checkpointsBusy: 0,
    beginWriteTimeouts: 0,
    writerViewMismatches: 0,
    writerErrors: 0,
    readerSnapshots: 0,
    snapshotsInThreads: 0,
    snapshotsInProcesses: 0,
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
    readerErrors: 0,
    buffersKept: 0,
    bytesKept: 0,
    bufferChecks: 0,
    buffersChanged: 0,
    peerFailures: 0,
    pagesWritten: 0,
    maxFileSizePages: 0,
    finalPageCount: 0,
    finalStateMismatches: 0,
    verifyProblems: 0,
    failures: 0,
  };
  const fail = (what: string): void => {
    f.failures++;
    if (f.failures <= 20) opts.log(`FAIL ${what} (seed ${opts.seed})`);
  };
  try {
    const script = nodePath.join(compiledEngine(nodePath.join(dir, 'engine')), 'hard', 'concurrencymulti.child.js');
    // txn 1: the accounts.
    {
      const db = open(path, { pageSize: PAGE_SIZE });
      const w = db.beginWrite();
      for (const [k, v] of bankCommit(cfg, 1, () => 0).puts) w.put(k, v);
      w.commit();
      db.close();
    }
    const peer = (role: 'writer' | 'reader', name: string, salt: number): PeerArgs => ({
      role,
      name,
      path,
      cfg,
      seed: (opts.seed ^ Math.imul(salt, 0x9e3779b9)) >>> 0,
      readers: readersPerHandle,
      ...dbOptions,
      maxKeptBytes: 16 * 1024 * 1024,
      waitMs: timeoutMs - 10_000,
    });
    const runs: Array<Promise<PeerResult>> = [];
    for (let i = 0; i < WRITERS; i++) runs.push(runPeer(script, peer('writer', `writer process ${i}`, 1 + i), 'process', timeoutMs));
    for (let i = 0; i < processes; i++) runs.push(runPeer(script, peer('reader', `reader process ${i}`, 100 + i), 'process', timeoutMs));
    for (let i = 0; i < threads; i++) runs.push(runPeer(script, peer('reader', `reader thread ${i}`, 200 + i), 'thread', timeoutMs));
    const results = await Promise.all(runs);

    for (const r of results) {
      for (const p of r.problems) fail(p);
      const g = r.figures;
      const n = (k: string): number => g[k] ?? 0;
      f.peerFailures += n('peerFailures');
      if (r.role === 'writer') {
        f.writerCommits += n('commits');
        if (n('commits') > 0) f.writersThatCommitted++;
        f.asyncCommits += n('asyncCommits');
        f.explicitCheckpoints += n('checkpoints');
        f.checkpointsBusy += n('checkpointsBusy');
        f.beginWriteTimeouts += n('beginWriteTimeouts');
        f.writerViewMismatches += n('viewMismatches');
        f.writerErrors += n('errors');
        f.verifyProblems += n('verifyProblems');
        f.pagesWritten += Math.round(n('bytesWritten') / PAGE_SIZE);
        f.maxFileSizePages = Math.max(f.maxFileSizePages, n('maxFileSizePages'));
      } else {
        f.readerSnapshots += n('snapshots');
        if (r.name.includes('thread')) f.snapshotsInThreads += n('snapshots');
        else f.snapshotsInProcesses += n('snapshots');
        for (const k of ['timeTravelSnapshots', 'timeTravelRefused', 'longLivedSnapshots', 'pointReads', 'scans', 'scanEntries', 'invariantViolations', 'tornReads', 'scanMismatches', 'snapshotsBackwards', 'buffersKept', 'bytesKept', 'bufferChecks', 'buffersChanged'] as const) {
          f[k] += n(k);
        }
        f.readerErrors += n('errors');
      }
    }
    if (f.writerCommits !== cfg.end - 1) fail(`the writers made ${f.writerCommits} commits, the run has ${cfg.end - 1}`);

    // The database after everyone closed: the model's last state, verify() clean.
    const db = open(path, { pageSize: PAGE_SIZE });
    try {
      if (db.txnId !== cfg.end) fail(`the database is at txn ${db.txnId}, the run ended at ${cfg.end}`);
      const model = new BankModel(cfg);
      const rd = db.beginRead();
      for (let i = 0; i < cfg.accounts; i++) if (!matches(rd.get(acct(i)), model.at(acct(i), rd.txnId))) f.finalStateMismatches++;
      for (let b = 0; b < BLOBS; b++) if (!matches(rd.get(blob(b)), model.at(blob(b), rd.txnId))) f.finalStateMismatches++;
      rd.close();
      if (f.finalStateMismatches > 0) fail(`${f.finalStateMismatches} keys differ from the model's last state`);
      const report = db.verify();
      f.verifyProblems += report.problems.length;
      if (!report.ok) fail(`verify after the run: ${report.problems[0]?.message}`);
      f.finalPageCount = db.stats().pageCount;
    } finally {
      db.close();
    }
    if (f.pagesWritten <= f.finalPageCount) fail(`no page was reused (${f.pagesWritten} pages written, ${f.finalPageCount} in the file)`);
    if (f.snapshotsInThreads === 0 || f.snapshotsInProcesses === 0) fail(`readers checked ${f.snapshotsInThreads} snapshots in threads, ${f.snapshotsInProcesses} in processes`);
    const violations = f.invariantViolations + f.tornReads + f.scanMismatches + f.snapshotsBackwards + f.readerErrors + f.writerErrors + f.writerViewMismatches + f.buffersChanged + f.peerFailures;
    if (violations > 0 && f.failures === 0) fail(`${violations} violations`);
  } finally {
    removeDir(dir);
  }
  return f;
}

export const concurrencyMultiSuite: HardeningSuite = { name: 'concurrencymulti', run: runConcurrencyMulti };
