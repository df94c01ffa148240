// The task-queue workload of `macro/task_queue_claims/*` and of
// bench/queue_peers.mjs's NorthstarDB rows (issue #15 §5): `tasks` no-op
// tasks enqueued up front, then `agents` agents claim (`max` per claim) and
// complete them, every call durable (sync 'full'), until none is left. Agents
// are async functions in one process ('async'), or spread over worker threads
// ('threads') or child processes ('processes'), each with its own handle.
//
// Figures: tasks/s from the first claim to the last completion, claim latency
// (asked -> durable claim) per claim call, duplicates (a task handed out
// twice: must be 0), stuck tasks (not done at the end: must be 0), commits
// and log fdatasyncs per task (summed over every handle).
//
// Run as a script (the harness's child): `node queue_load.js '<json QueueLoadOptions>'`
// prints one JSON QueueLoadResult line.

import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { open } from '../db/index.js';
import { openQueue, QueueWorker } from '../queue/index.js';
import type { WorkQueue } from '../queue/types.js';

export type QueueLoadMode = 'async' | 'threads' | 'processes';

export interface QueueLoadOptions {
  /** Database file (created; removed by the caller). */
  file: string;
  tasks: number;
  agents: number;
  mode: QueueLoadMode;
  /** Workers (threads or processes) the agents are spread over (ignored for 'async'). */
  workers?: number;
  /** Tasks per claim (default 1); completions of one claim go together. */
  max?: number;
  /** Agents as one q.work() pool per handle (concurrency = its agents) instead of claim/complete loops. */
  work?: boolean;
}

export interface QueueLoadResult {
  tasks: number;
  durationNs: number;
  tasksPerSec: number;
  /** Claim latency of every claim call that got tasks, ns. */
  claimNs: number[];
  duplicates: number;
  stuck: number;
  commits: number;
  fdatasyncs: number;
  /** Bytes the handles wrote (data file + log). */
  bytesWritten: number;
}

/** What one group of agents (one handle) reports. */
interface AgentsReport {
  ids: number[];
  claimNs: number[];
  startNs: number;
  endNs: number;
  fdatasyncs: number;
  bytesWritten: number;
}

const now = (): number => Number(process.hrtime.bigint());

/** `agents` async agents on a fresh handle of `file`, each claiming `max` at a time until the queue is empty. */
async function runAgents(file: string, agents: number, max: number, work = false): Promise<AgentsReport> {
  const db = open(file, { sync: 'full' });
  const q = openQueue(db, 'bench', { retention: { finishedMs: Infinity, maxFinished: Infinity } });
  const s0 = db.stats();
  const ids: number[] = [];
  const claimNs: number[] = [];
  const startNs = now();
  if (work) {
    // q.work()'s own loop, its claims timed on the way through.
    let idle = 0;
    const timed: WorkQueue = {
      claim: async (o) => {
        const t0 = now();
        const got = await q.claim({ ...o, waitMs: 0 });
        if (got.length > 0) claimNs.push(now() - t0);
        else idle++;
        return got;
      },
      complete: (t, r) => q.complete(t, r),
      fail: (t, o) => q.fail(t, o),
      renew: (t, ms) => q.renew(t, ms),
    };
    const pool = new QueueWorker(timed, { concurrency: agents, worker: `${process.pid}` }, (t) => void ids.push(t.id), () => {});
    while (idle === 0 || q.stats().counts.pending + q.stats().counts.claimed > 0) await new Promise((r) => setTimeout(r, 1));
    await pool.close();
  } else {
    await Promise.all(
      Array.from({ length: agents }, async (_, a) => {
        for (;;) {
          const t0 = now();
          const got = await q.claim({ worker: `${process.pid}:${a}`, max });
          if (got.length === 0) return;
          claimNs.push(now() - t0);
          for (const t of got) ids.push(t.id);
          await Promise.all(got.map((t) => q.complete(t)));
        }
      }),
    );
  }
  const endNs = now();
  const s1 = db.stats();
  await q.close();
  db.close();
  return {
    ids,
    claimNs,
    startNs,
    endNs,
    fdatasyncs: s1.logIo.fdatasyncs - s0.logIo.fdatasyncs + (s1.io.fdatasyncs - s0.io.fdatasyncs),
    bytesWritten: s1.logIo.bytesWritten - s0.logIo.bytesWritten + (s1.io.bytesWritten - s0.io.bytesWritten),
  };
}

const SELF = fileURLToPath(import.meta.url);

/** Runs the agents of one worker (thread or process) and hands back its report. */
function inWorker(mode: 'threads' | 'processes', file: string, agents: number, max: number, work: boolean): Promise<AgentsReport> {
  const args = { role: 'agents', file, agents, max, work };
  if (mode === 'threads') {
    return new Promise((resolve, reject) => {
      const w = new Worker(SELF, { workerData: args });
      w.once('message', resolve);
      w.once('error', reject);
    });
  }
  return new Promise((resolve, reject) => {
    const p = fork(SELF, [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    p.once('message', (m) => resolve(m as AgentsReport));
    p.once('error', reject);
    p.once('exit', (code) => code !== 0 && reject(new Error(`queue agents process exited with ${code}`)));
  });
}

/** The whole workload: enqueue, then the agents, then the checks. */
export async function runQueueLoad(o: QueueLoadOptions): Promise<QueueLoadResult> {
  const max = o.max ?? 1;
  {
    const db = open(o.file, { sync: 'full' });
    const q = openQueue(db, 'bench', { retention: { finishedMs: Infinity, maxFinished: Infinity } });
    for (let i = 0; i < o.tasks; i += 1000) await q.enqueue(Array.from({ length: Math.min(1000, o.tasks - i) }, (_, j) => ({ type: 'noop', payload: { n: i + j } })));
    await q.close();
    db.close();
  }
  const txn0 = txnOf(o.file);
  let reports: AgentsReport[];
  if (o.mode === 'async') reports = [await runAgents(o.file, o.agents, max, o.work)];
  else {
    const workers = Math.max(1, Math.min(o.workers ?? 4, o.agents));
    const per = Array.from({ length: workers }, (_, i) => Math.floor(o.agents / workers) + (i < o.agents % workers ? 1 : 0));
    reports = await Promise.all(per.map((n) => inWorker(o.mode as 'threads' | 'processes', o.file, n, max, o.work === true)));
  }
  const commits = txnOf(o.file) - txn0;
  const seen = new Set<number>();
  let duplicates = 0;
  for (const r of reports) for (const id of r.ids) (seen.has(id) ? duplicates++ : seen.add(id));
  const db = open(o.file);
  const q = openQueue(db, 'bench');
  const stuck = o.tasks - q.stats().counts.done;
  await q.close();
  db.close();
  const startNs = Math.min(...reports.map((r) => r.startNs));
  const endNs = Math.max(...reports.map((r) => r.endNs));
  const durationNs = endNs - startNs;
  return {
    tasks: seen.size,
    durationNs,
    tasksPerSec: seen.size / (durationNs / 1e9),
    claimNs: reports.flatMap((r) => r.claimNs),
    duplicates,
    stuck,
    commits,
    fdatasyncs: reports.reduce((s, r) => s + r.fdatasyncs, 0),
    bytesWritten: reports.reduce((s, r) => s + r.bytesWritten, 0),
  };
}

function txnOf(file: string): number {
  const db = open(file);
  const t = db.txnId;
  db.close();
  return t;
}

// ---- as a script, a worker thread, or a forked agents process ----

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'agents') {
  const d = workerData as { file: string; agents: number; max: number; work: boolean };
  void runAgents(d.file, d.agents, d.max, d.work).then((r) => parentPort!.postMessage(r));
} else if (isMainThread && process.argv[1] === SELF) {
  const arg = JSON.parse(process.argv[2]!) as ({ role: 'agents' } & { file: string; agents: number; max: number; work: boolean }) | QueueLoadOptions;
  if ('role' in arg) {
    void runAgents(arg.file, arg.agents, arg.max, arg.work).then((r) => {
      process.send!(r, () => process.exit(0));
    });
  } else {
    void runQueueLoad(arg).then((r) => {
      fs.writeSync(1, `${JSON.stringify(r)}\n`);
      process.exit(0);
    });
  }
}

/** A temporary database file for one run, and its removal. */
export function scratchFile(): { file: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-queue-load-'));
  return { file: path.join(dir, 'q.ndb'), remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
