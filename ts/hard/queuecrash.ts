// Crash torture of the task queue (issue #15 §4, `npm run hardening -- --suite
// queuecrash`; a short form runs in `npm test`). Each cycle starts 2–3 agent
// processes (ts/hard/queuecrash.child.ts) on one database: they enqueue,
// claim, complete, fail and abandon tasks, and now and then stall past a lease
// before answering (so stale answers meet fencing). The parent SIGKILLs all of them at
// a random moment, or one of them while the others go on, or one kills itself
// at the k-th pass of a named crash window of the engine (while it holds the
// writer: page writes, log append and sync, checkpoint steps). Then the parent
// opens the database (recovering it when no handle is left) and checks, against
// the ledger of everything the agents reported across all cycles so far:
//
// - lost enqueues: an acknowledged enqueue whose task does not exist;
// - lost completions: an acknowledged completion whose task is not done with
//   that token;
// - duplicates: a task whose completion was acknowledged for two tokens, or a
//   done task whose token no agent tried to complete with (a phantom);
// - stuck: once the longest lease has passed, a claim of everything must take
//   every task that is not finished: a task still claimed after that is stuck;
// - q.verify() and db.verify() find nothing.
//
// The parent completes what its own claim took (so the queue drains), and the
// next cycle goes on with the same database; a fresh one every EPOCH_CYCLES.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { open } from '../db/index.js';
import { FAILPOINTS, type FailpointName } from '../io/failpoint.js';
import { openQueue } from '../queue/index.js';
import { compiledEngine } from './compiled.js';
import type { QueueChildArgs } from './queuecrash.child.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { rngOf } from './workload.js';

const EPOCH_CYCLES = 25;
const LEASE_MS = 300;
/** The engine's windows an agent may die at: those a queue's commits and checkpoints pass. */
const WINDOWS: readonly FailpointName[] = FAILPOINTS.filter((f) => !f.includes('Truncate') && f !== 'beforeLogCompactRename');

export interface QueueCrashOptions extends SuiteOptions {
  /** Cycles to run (default: 6 short, 120 long). */
  cycles?: number;
}

/** The suite's figures. */
interface Counts {
  cycles: number;
  tasks: number;
  completions: number;
  claims: number;
  duplicates: number;
  phantoms: number;
  lostEnqueues: number;
  lostCompletions: number;
  stuck: number;
  verifyProblems: number;
  childErrors: number;
  failpointDeaths: number;
  failures: number;
}

interface ChildRun {
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

/** What all agents reported, across the cycles of one database. */
class Ledger {
  readonly enqueued = new Set<number>();
  /** Completions acknowledged: task -> tokens (more than one is a duplicate). */
  readonly done = new Map<number, Set<number>>();
  /** Completions tried: task -> tokens. */
  readonly tried = new Map<number, Set<number>>();
  take(lines: readonly string[]): string[] {
    const errors: string[] = [];
    for (const l of lines) {
      const [kind, ...rest] = l.split(' ');
      const nums = rest.map(Number);
      if (kind === 'enq') for (const id of nums) this.enqueued.add(id);
      else if (kind === 'try') add(this.tried, nums[0]!, nums[1]!);
      else if (kind === 'done') add(this.done, nums[0]!, nums[1]!);
      else if (kind === 'err') errors.push(l);
    }
    return errors;
  }
}

function add(m: Map<number, Set<number>>, k: number, v: number): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function startChild(script: string, args: QueueChildArgs): ChildRun {
  const p = spawn(process.execPath, [script, JSON.stringify(args)], { env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let pending = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    const parts = pending.split('\n');
    pending = parts.pop()!;
    lines.push(...parts);
  });
  let stderr = '';
  p.stderr!.on('data', (c: Buffer) => void (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    p.on('exit', (code, signal) => {
      if (pending !== '') lines.push(pending);
      if (stderr.trim() !== '' && code !== 0 && signal === null) lines.push(`err stderr ${stderr.trim().replace(/\n/g, ' ')}`);
      resolve({ code, signal });
    }),
  );
  return { lines, exited, kill: () => void p.kill('SIGKILL') };
}

export async function runQueueCrash(opts: QueueCrashOptions): Promise<Figures> {
  const cycles = opts.cycles ?? (opts.long ? 120 : 6);
  const r = rngOf(opts.seed);
  const scratch = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-queuecrash-'));
  const f: Counts = { cycles: 0, tasks: 0, completions: 0, claims: 0, duplicates: 0, phantoms: 0, lostEnqueues: 0, lostCompletions: 0, stuck: 0, verifyProblems: 0, childErrors: 0, failpointDeaths: 0, failures: 0 };
  const fail = (why: string): void => {
    f.failures++;
    opts.log(`FAIL cycle ${f.cycles}: ${why}`);
  };
  try {
    const script = nodePath.join(compiledEngine(scratch), 'hard', 'queuecrash.child.js');
    let ledger = new Ledger();
    let path = '';
    let seen = { enqueued: 0, completions: 0, claims: 0 };
    for (let c = 0; c < cycles; c++) {
      if (c % EPOCH_CYCLES === 0) {
        ledger = new Ledger();
        path = nodePath.join(scratch, `q${c}.ndb`);
        seen = { enqueued: 0, completions: 0, claims: 0 };
      }
      const n = 2 + Math.floor(r() * 2);
      const plan = r();
      const victim = Math.floor(r() * n);
      const children = Array.from({ length: n }, (_, i) => {
        const dies = plan >= 0.6 && i === victim;
        return startChild(script, {
          path,
          seed: Math.floor(r() * 2 ** 31),
          claims: 30 + Math.floor(r() * 60),
          agents: 2 + Math.floor(r() * 4),
          leaseMs: LEASE_MS,
          failpoint: dies ? WINDOWS[Math.floor(r() * WINDOWS.length)]! : null,
          hit: 1 + Math.floor(r() * 20),
        });
      });
      // Kill: everyone at one moment (plan < 0.35), one of them (< 0.6) while the others go on,
      // or nobody from here (a child dies at its window, or all finish).
      const at = 100 + Math.floor(r() * 900);
      await new Promise((res) => setTimeout(res, at));
      if (plan < 0.35) for (const ch of children) ch.kill();
      else if (plan < 0.6) children[victim]!.kill();
      const deadline = setTimeout(() => children.forEach((ch) => ch.kill()), 60_000);
      await Promise.all(children.map((ch) => ch.exited));
      clearTimeout(deadline);
      for (const ch of children) {
        for (const e of ledger.take(ch.lines)) {
          f.childErrors++;
          fail(`agent: ${e}`);
        }
        if (ch.lines.some((l) => l.startsWith('die '))) f.failpointDeaths++;
      }
      f.cycles++;
      const now = await check(path, ledger, f, fail);
      f.tasks += now.enqueued - seen.enqueued;
      f.completions += now.completions - seen.completions;
      f.claims += now.claims - seen.claims;
      seen = now;
      if (f.cycles % 10 === 0) opts.log(`${f.cycles} cycles, ${f.tasks} tasks, ${f.completions} completions`);
    }
    return { ...f };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** Recovers the database, checks it against the ledger, then drains what the agents left. */
async function check(path: string, ledger: Ledger, f: Counts, fail: (why: string) => void): Promise<{ enqueued: number; completions: number; claims: number }> {
  const db = open(path, { sync: 'full' });
  const q = openQueue(db, 'work', { retention: { finishedMs: Infinity, maxFinished: Infinity } });
  try {
    for (const id of ledger.enqueued) if (q.get(id) === undefined) (f.lostEnqueues++, fail(`acknowledged enqueue of task ${id} is lost`));
    for (const [id, tokens] of ledger.done) {
      if (tokens.size > 1) (f.duplicates++, fail(`task ${id} completed with tokens ${[...tokens].join(', ')}`));
      const t = q.get(id);
      if (t === undefined || t.state !== 'done' || !tokens.has(t.token!)) (f.lostCompletions++, fail(`acknowledged completion of task ${id} (tokens ${[...tokens].join(', ')}) is lost: ${JSON.stringify(t)}`));
    }
    // Every done task was completed by a try some agent (or this parent) made.
    for (const t of q.list({ state: 'done', limit: Number.MAX_SAFE_INTEGER })) {
      if (!ledger.tried.get(t.id)?.has(t.token!)) (f.phantoms++, fail(`task ${t.id} is done with token ${t.token}, which nobody tried to complete with`));
    }
    const problems = q.verify().problems.concat(db.verify().problems.map((p) => JSON.stringify(p)));
    if (problems.length > 0) (f.verifyProblems += problems.length, fail(`verify: ${problems.slice(0, 3).join('; ')}`));
    // Once the longest lease has passed, everything unfinished is claimable.
    await new Promise((res) => setTimeout(res, LEASE_MS + 20));
    const taken = await q.claim({ worker: 'parent', max: 1_000_000, leaseMs: 60_000 });
    const stuck = q.list({ state: 'claimed', limit: Number.MAX_SAFE_INTEGER }).filter((t) => t.worker !== 'parent');
    if (stuck.length > 0) (f.stuck += stuck.length, fail(`stuck beyond one lease: ${stuck.map((t) => t.id).join(', ')}`));
    for (const t of taken) add(ledger.tried, t.id, t.token);
    await Promise.all(taken.map((t) => q.complete(t, 'parent')));
    for (const t of taken) add(ledger.done, t.id, t.token);
    const s = q.stats();
    return { enqueued: s.enqueued, completions: s.completions, claims: s.claims };
  } finally {
    await q.close();
    db.close();
  }
}

export const queueCrashSuite: HardeningSuite = {
  name: 'queuecrash',
  run: (opts) => runQueueCrash(opts),
};
