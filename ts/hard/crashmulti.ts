// Crash torture with several processes on one database at once (hardening §2,
// the multi-process issue): the multi-process mode of ts/hard/crash.ts. Each
// cycle starts 2–3 children (ts/hard/crashmulti.child.ts) on the same files;
// they take turns as writer (beginWrite({ timeoutMs })), read, time-travel,
// checkpoint, verify and now and then truncateLog, and report each commit they
// try (with its txn id and the monotonic clock) and each one acknowledged. The
// parent SIGKILLs all of them at one random moment, or one of them (then the
// survivors go on and must take over: the next writer cuts the dead one's
// unpublished tail), or each at its own moment, or one child SIGKILLs itself at
// the k-th pass of a named crash window (ts/io/failpoint.ts) while the others
// live. After all are gone, the parent recovers a copy of the files and checks
// it as the single-process mode does.
//
// The reference model merges the children's commits by txn id. Every child's
// txn t has its own operations (opsFor(opsSeed, t)), so whose commit became t
// matters. A try of txn t at time s means the trying child took the writer
// lock when txn t - 1 was the latest published commit: every earlier try of t
// or later was never published and was cut off (or, if all died before that,
// may still be recovered from the log). So the candidate of txn t is its latest
// try, and the model's state at T applies, for t = 1..T, each t's candidate.
// Checked:
//
// - every acknowledged commit is its txn's candidate (none was cut off or
//   overwritten), and the recovered txn T satisfies lastAcked <= T <=
//   lastAttempted, with the model's state at T (no lost commit, no phantom);
// - verify() is clean; time travel gives the model's state for retained txns;
//   replay(path) of the log reaches T with the same state hash;
// - the survivors' view, while others are killed: no error but WriteBusy (and
//   SnapshotNotFound for time travel whose txn left the history meanwhile,
//   counted); every snapshot they read (latest, time travel, held across other
//   processes' commits) and the state each opened at equal the model at that
//   snapshot's txn; their latest snapshots never go backwards; their verify()
//   finds nothing;
// - the next cycle's first opener recovers the original files to T as well
//   (its open state is checked like a read).

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { FAILPOINTS, type FailpointName } from '../io/failpoint.js';
import { StateHash } from '../log/replay.js';
import type { ChildArgs } from './crashmulti.child.js';
import { compiledEngine } from './compiled.js';
import { CRASH_HISTORY_TXNS as HISTORY_TXNS, CRASH_PAGE_SIZE as PAGE_SIZE, CrashLedger } from './recovered.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { digestOf, opsFor, rngOf } from './workload.js';

/** Options of the children's database; the parent opens copies the same way. */
/** Cycles on one database before a fresh one. */
const EPOCH_CYCLES = 20;

export interface CrashMultiOptions extends SuiteOptions {
  /** Cycles to run (default: 16 short, 300 long). */
  cycles?: number;
}

/** When the parent kills: after this many acknowledgements in the cycle, or this long after the start. */
type Trigger = { acks: number } | { ms: number };

/**
 * How a cycle ends its children. `one` and `failpoint` have a victim; the
 * survivors then go on for `after` acknowledgements and are killed (`finish`
 * 'kill') or run to the end of their workload ('run').
 */
type Plan =
  | { kind: 'all'; trigger: Trigger }
  | { kind: 'one'; victim: number; trigger: Trigger; after: number; finish: 'kill' | 'run' }
  | { kind: 'failpoint'; victim: number; name: FailpointName; hit: number; after: number; finish: 'kill' | 'run' }
  | { kind: 'stagger'; triggers: Trigger[] };

interface Try {
  child: number;
  opsSeed: number;
  t: number;
  ts: bigint;
}

/** What one child reported and how it ended. */
interface ChildRun {
  index: number;
  args: ChildArgs;
  opened: { t: number; hash: string } | null;
  tries: Try[];
  acks: Array<{ t: number; digest: number }>;
  reads: Array<{ t: number; hash: string; kind: string }>;
  refused: number;
  busy: number;
  verifies: number[];
  truncated: boolean;
  /** Where the log started when it closed, for a child with retention (null otherwise). */
  logStart: number | null;
  /** Killed itself at a failpoint. */
  died: { name: string; ts: bigint } | null;
  done: boolean;
  err: string | null;
  /** When the parent sent SIGKILL. */
  killedAt: bigint | null;
  exited: boolean;
  /** When the parent saw it exit. */
  exitedAt: bigint;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

const hr = (): bigint => process.hrtime.bigint();

/**
 * The model of one database: the agreed prefix (txns 1..base, each with the
 * ops seed of the child whose commit it is) and, after it, the current
 * candidates, with the state hash after every txn.
 */
class MergedModel {
  private readonly hashes: string[];
  private readonly entries = new Map<string, [number, number]>();
  private readonly h = new StateHash();
  private tailSeeds: number[] = [];
  private tailHashes: string[] = [];

  constructor() {
    this.hashes = [this.h.toString()];
  }

  /** The last txn of the agreed prefix. */
  get base(): number {
    return this.hashes.length - 1;
  }

  /** The candidates after the prefix: `seeds[i]` is the ops seed of txn base + 1 + i. */
  setTail(seeds: number[]): void {
    this.tailSeeds = seeds;
    const entries = new Map(this.entries);
    const h = new StateHash();
    h.lo = this.h.lo;
    h.hi = this.h.hi;
    this.tailHashes = seeds.map((seed, i) => {
      apply(entries, h, opsFor(seed, this.base + 1 + i));
      return h.toString();
    });
  }

  /** The last txn with a candidate. */
  get last(): number {
    return this.base + this.tailSeeds.length;
  }

  /** State hash after txn t (undefined beyond the candidates). */
  hash(t: number): string | undefined {
    return t <= this.base ? this.hashes[t] : this.tailHashes[t - this.base - 1];
  }

  /** Makes txns base+1..T (candidates) part of the agreed prefix. */
  settle(T: number): void {
    const seeds = this.tailSeeds.slice(0, T - this.base);
    for (const seed of seeds) {
      apply(this.entries, this.h, opsFor(seed, this.base + 1));
      this.hashes.push(this.h.toString());
    }
    this.setTail([]);
  }
}

function apply(entries: Map<string, [number, number]>, h: StateHash, ops: ReturnType<typeof opsFor>): void {
  for (const op of ops) {
    const old = entries.get(op[1]);
    if (old) {
      h.remove(old[0], old[1]);
      entries.delete(op[1]);
    }
    if (op[0] === 'put') {
      const e = h.entry(Buffer.from(op[1], 'latin1'), Buffer.from(op[2], 'latin1'));
      h.add(e[0], e[1]);
      entries.set(op[1], e);
    }
  }
}

/** Starts the children and drives `plan`; resolves when every child has exited. */
function runCycle(script: string, all: ChildArgs[], plan: Plan, timeoutMs: number): Promise<{ runs: ChildRun[]; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const runs: ChildRun[] = [];
    const procs: ChildProcess[] = [];
    const timers: NodeJS.Timeout[] = [];
    let acks = 0;
    let victimGone: bigint | null = null;
    let survivorAcks = 0;
    let left = all.length;
    let timedOut = false;
    const kill = (i: number, ts = hr()): void => {
      const run = runs[i]!;
      const p = procs[i]!;
      if (run.exited || run.killedAt !== null || p.exitCode !== null || p.signalCode !== null) return;
      run.killedAt = ts;
      p.kill('SIGKILL');
    };
    /** One timestamp for all: no child counts as killed while the others lived. */
    const killAll = (): void => {
      const ts = hr();
      for (let i = 0; i < runs.length; i++) kill(i, ts);
    };
    /** Reacts to an acknowledgement or an exit. */
    const control = (): void => {
      if (plan.kind === 'all') {
        if ('acks' in plan.trigger && acks >= plan.trigger.acks) killAll();
      } else if (plan.kind === 'stagger') {
        plan.triggers.forEach((t, i) => {
          if ('acks' in t && acks >= t.acks) kill(i);
        });
      } else {
        if (plan.kind === 'one' && 'acks' in plan.trigger && acks >= plan.trigger.acks) kill(plan.victim);
        if (victimGone === null) {
          const v = runs[plan.victim]!;
          if (v.killedAt !== null) victimGone = v.killedAt;
          else if (v.exited && v.signal === 'SIGKILL') victimGone = v.died?.ts ?? hr();
        }
        if (victimGone !== null && plan.finish === 'kill' && survivorAcks >= plan.after) killAll();
      }
    };
    const at = (trigger: Trigger, fn: () => void): void => {
      if ('ms' in trigger) timers.push(setTimeout(fn, trigger.ms));
    };
    if (plan.kind === 'all') at(plan.trigger, killAll);
    else if (plan.kind === 'one') at(plan.trigger, () => kill(plan.victim));
    else if (plan.kind === 'stagger') plan.triggers.forEach((t, i) => at(t, () => kill(i)));
    timers.push(
      setTimeout(() => {
        timedOut = true;
        killAll();
      }, timeoutMs),
    );

    all.forEach((args, index) => {
      const run: ChildRun = {
        index,
        args,
        opened: null,
        tries: [],
        acks: [],
        reads: [],
        refused: 0,
        busy: 0,
        verifies: [],
        truncated: false,
        logStart: null,
        died: null,
        done: false,
        err: null,
        killedAt: null,
        exited: false,
        exitedAt: 0n,
        code: null,
        signal: null,
        stderr: '',
      };
      runs.push(run);
      const p = spawn(process.execPath, [script, JSON.stringify(args)], { env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(p);
      let pending = '';
      p.stdout!.on('data', (chunk: Buffer) => {
        pending += chunk.toString('latin1');
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          const [word, a, b, c] = line.split(' ');
          const n = Number(a);
          if (word === 'open') run.opened = { t: n, hash: b! };
          else if (word === 'try') run.tries.push({ child: index, opsSeed: args.opsSeed, t: n, ts: BigInt(b!) });
          else if (word === 'ack') {
            run.acks.push({ t: n, digest: Number(b) });
            acks++;
            if (victimGone !== null && (plan.kind === 'one' || plan.kind === 'failpoint') && index !== plan.victim) survivorAcks++;
          } else if (word === 'rd') run.reads.push({ t: n, hash: b!, kind: c! });
          else if (word === 'refused') run.refused++;
          else if (word === 'busy') run.busy++;
          else if (word === 'verify') run.verifies.push(n);
          else if (word === 'trunc') run.truncated = true;
          else if (word === 'logstart') run.logStart = n;
          else if (word === 'die') run.died = { name: a!, ts: BigInt(b!) };
          else if (word === 'done') run.done = true;
          else if (word === 'err') run.err = line.slice(4);
        }
        control();
      });
      p.stderr!.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
      p.on('error', reject);
      p.on('close', (code, signal) => {
        run.exited = true;
        run.exitedAt = hr();
        run.code = code;
        run.signal = signal;
        control();
        if (--left === 0) {
          for (const t of timers) clearTimeout(t);
          resolve({ runs, timedOut });
        }
      });
    });
  });
}

function describePlan(plan: Plan, n: number): string {
  const trig = (t: Trigger): string => ('acks' in t ? `after ${t.acks} acks` : `after ${t.ms} ms`);
  const rest = (p: { after: number; finish: string }): string => (p.finish === 'kill' ? `, the rest after ${p.after} more acks` : ', the rest run to the end');
  switch (plan.kind) {
    case 'all':
      return `${n} children, SIGKILL all ${trig(plan.trigger)}`;
    case 'one':
      return `${n} children, SIGKILL child ${plan.victim} ${trig(plan.trigger)}${rest(plan)}`;
    case 'failpoint':
      return `${n} children, child ${plan.victim} SIGKILLs itself at hit ${plan.hit} of ${plan.name}${rest(plan)}`;
    case 'stagger':
      return `${n} children, SIGKILL each ${plan.triggers.map(trig).join(' / ')}`;
  }
}

export async function runCrashMulti(opts: CrashMultiOptions): Promise<Figures> {
  const cycles = opts.cycles ?? (opts.long ? 300 : 16);
  const scratch = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-crashmulti-'));
  const log = opts.log;
  const top = rngOf(opts.seed ^ 0x3c6ef372);
  const rand = (n: number): number => Math.floor(top() * n);
  const fig = {
    cycles: 0,
    epochs: 0,
    children: 0,
    killsByParent: 0,
    killsAtFailpoint: 0,
    killsWhileOthersLive: 0,
    childrenFinished: 0,
    failpointsNotReached: 0,
    acknowledgedCommits: 0,
    lostCommits: 0,
    phantomCommits: 0,
    stateMismatches: 0,
    verifyProblems: 0,
    timeTravelChecks: 0,
    timeTravelMismatches: 0,
    replayChecks: 0,
    replayMismatches: 0,
    replaySkippedAfterTruncateLog: 0,
    /** Children whose retention had dropped log records by the time they closed. */
    retentionDrops: 0,
    openChecks: 0,
    openMismatches: 0,
    survivorReads: 0,
    survivorReadMismatches: 0,
    survivorSnapshotsBackwards: 0,
    survivorTimeTravelRefused: 0,
    survivorWriteBusy: 0,
    survivorVerifies: 0,
    childErrors: 0,
    takeoversAfterKill: 0,
    takeoversFromDeadWriter: 0,
    unpublishedTailsCut: 0,
    tornTailsInjected: 0,
    killedBeforeCreated: 0,
    timeouts: 0,
    failures: 0,
  };
  const ledger = new CrashLedger(fig, log);
  const byFailpoint = ledger.byFailpoint;

  try {
    const script = nodePath.join(compiledEngine(scratch), 'hard', 'crashmulti.child.js');
    let epoch = -1;
    let epochSeed = 0;
    let epochCycle = 0;
    let model = new MergedModel();
    let dbPath = '';
    let truncated = false;
    let fpNext = opts.seed % FAILPOINTS.length;
    let serial = 0;
    const newEpoch = (): void => {
      epoch++;
      fig.epochs++;
      epochCycle = 0;
      epochSeed = (opts.seed + Math.imul(epoch + 1, 0x9e3779b9)) >>> 0;
      model = new MergedModel();
      const dir = nodePath.join(scratch, `epoch-${epoch}`);
      fs.mkdirSync(dir);
      dbPath = nodePath.join(dir, 'db');
      truncated = false;
    };
    newEpoch();
    const copyPath = nodePath.join(scratch, 'check.db');

    for (let cycle = 0; cycle < cycles; cycle++) {
      if (epochCycle++ === EPOCH_CYCLES) newEpoch();
      const base = model.base;
      const n = 2 + rand(2);
      const trigger = (): Trigger => (rand(2) === 0 ? { acks: 1 + rand(opts.long ? 60 : 30) } : { ms: rand(400) });
      const victim = rand(n);
      const after = 1 + rand(12);
      const finish = rand(3) === 0 ? 'run' : 'kill';
      // Every other cycle of the first ones visits the next window (from a seed-dependent one);
      // then 4 in 10 do.
      let plan: Plan;
      const pick = cycle < 2 * FAILPOINTS.length ? (cycle % 2 === 0 ? 0 : 4 + rand(6)) : rand(10);
      if (pick < 4) {
        const name = FAILPOINTS[fpNext++ % FAILPOINTS.length]!;
        const rare = name === 'beforeLogTruncate' || name === 'midLogTruncate' || name === 'beforeLogCompactRename';
        plan = { kind: 'failpoint', victim, name, hit: rare ? 1 : 1 + rand(opts.long ? 6 : 3), after, finish };
      } else if (pick < 6) plan = { kind: 'one', victim, trigger: trigger(), after, finish };
      else if (pick < 8) plan = { kind: 'all', trigger: trigger() };
      else plan = { kind: 'stagger', triggers: Array.from({ length: n }, trigger) };
      const window = plan.kind === 'failpoint' ? plan.name : null;
      // The log truncation windows are passed where a torn tail is cut (recovery) and where a
      // writer takes over from a dead one: give the victim a torn tail to recover first.
      const tornFirst = window === 'beforeLogTruncate' || window === 'midLogTruncate';
      if ((tornFirst || rand(10) === 0) && fs.existsSync(`${dbPath}.log`)) {
        const junk = Buffer.alloc(1 + rand(300));
        for (let i = 0; i < junk.length; i++) junk[i] = rand(256);
        fs.appendFileSync(`${dbPath}.log`, junk);
        fig.tornTailsInjected++;
      }
      const children: ChildArgs[] = [];
      for (let i = 0; i < n; i++) {
        const isVictim = plan.kind === 'failpoint' && i === victim;
        serial++;
        children.push({
          path: dbPath,
          opsSeed: (epochSeed ^ Math.imul(serial, 0x85ebca6b)) >>> 0,
          seed: (opts.seed ^ Math.imul(serial, 0xc2b2ae35)) >>> 0,
          commits: (opts.long ? 20 : 10) + rand(opts.long ? 40 : 20),
          failpoint: isVictim ? window : null,
          hit: isVictim && plan.kind === 'failpoint' ? plan.hit : 0,
          truncate: (isVictim && window === 'beforeLogCompactRename') || rand(12) === 0,
          delayMs: tornFirst && !isVictim ? 300 : rand(3) === 0 ? rand(100) : 0,
          pageSize: PAGE_SIZE,
          historyTxns: HISTORY_TXNS,
          checkpointCommits: isVictim ? 2 + rand(4) : 2 + rand(12),
          // Now and then a handle whose checkpoints drop log records (retention,
          // file_format_v1 §8.7), always when the victim dies in a log compaction.
          retainTxns: (isVictim && window === 'beforeLogCompactRename') || rand(6) === 0 ? 1 + rand(5) : null,
          timeoutMs: 10_000,
        });
      }
      fig.children += n;
      const { runs, timedOut } = await runCycle(script, children, plan, opts.long ? 120_000 : 60_000);
      fig.cycles++;
      const context = `seed ${opts.seed} epoch ${epoch} (epoch seed ${epochSeed}) cycle ${cycle}: ${describePlan(plan, n)}`;
      const problems: string[] = [];
      if (timedOut) {
        fig.timeouts++;
        problems.push('the cycle timed out; children were killed');
      }

      // How each child ended.
      for (const run of runs) {
        const others = runs.filter((o) => o !== run);
        if (run.killedAt !== null) fig.killsByParent++;
        else if (run.signal === 'SIGKILL' && run.died !== null) {
          fig.killsAtFailpoint++;
          byFailpoint[run.died.name]!++;
        } else if (run.done && run.code === 0) {
          fig.childrenFinished++;
          if (run.args.failpoint !== null) fig.failpointsNotReached++;
        } else {
          fig.childErrors++;
          problems.push(`child ${run.index} exited with code ${run.code} signal ${run.signal}: ${run.err ?? ''} ${run.stderr.trim().split('\n').slice(0, 6).join(' | ')}`);
        }
        fig.acknowledgedCommits += run.acks.length;
        fig.survivorWriteBusy += run.busy;
        fig.survivorTimeTravelRefused += run.refused;
        if (run.truncated) truncated = true;
        if (run.logStart !== null && run.logStart > 32) fig.retentionDrops++;
        // A death while another child lived, and whether a survivor wrote after it.
        const deathTs = run.killedAt ?? (run.signal === 'SIGKILL' ? (run.died?.ts ?? null) : null);
        if (deathTs !== null && others.some((o) => o.exitedAt > deathTs && (o.killedAt === null || o.killedAt > deathTs))) {
          fig.killsWhileOthersLive++;
          const later = others.flatMap((o) => o.tries.filter((t) => t.ts > deathTs));
          if (later.length > 0) fig.takeoversAfterKill++;
          // Died in the middle of a commit (a try without its ack): the next writer took over from it.
          const last = run.tries[run.tries.length - 1];
          if (last !== undefined && !run.acks.some((a) => a.t === last.t) && later.some((t) => t.ts > last.ts)) {
            fig.takeoversFromDeadWriter++;
          }
        }
      }

      // The candidates: the latest try of each txn cuts every earlier try of it or later txns.
      const tries = runs.flatMap((r) => r.tries).sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
      const cand = new Map<number, Try>();
      for (const tr of tries) {
        if (tr.t <= base) {
          problems.push(`child ${tr.child} tried txn ${tr.t}, at or before the recovered txn ${base}`);
          continue;
        }
        for (const [t, old] of cand) {
          if (t >= tr.t) {
            cand.delete(t);
            if (old.child !== tr.child) fig.unpublishedTailsCut++;
            else problems.push(`child ${tr.child} tried txn ${tr.t} again`);
          }
        }
        cand.set(tr.t, tr);
      }
      let lastAttempted = base;
      const seeds: number[] = [];
      while (cand.has(lastAttempted + 1)) seeds.push(cand.get(++lastAttempted)!.opsSeed);
      if (cand.size !== lastAttempted - base) problems.push(`tries leave a gap after txn ${lastAttempted}: ${[...cand.keys()].sort((a, b) => a - b).join(',')}`);
      model.setTail(seeds);
      let lastAcked = base;
      for (const run of runs) {
        for (let i = 0; i < run.acks.length; i++) {
          const { t, digest } = run.acks[i]!;
          lastAcked = Math.max(lastAcked, t);
          if (digest !== digestOf(opsFor(run.args.opsSeed, t))) problems.push(`child ${run.index} acknowledged txn ${t} with a digest not the model's`);
          if (i > 0 && t <= run.acks[i - 1]!.t) problems.push(`child ${run.index} acknowledged ${run.acks[i - 1]!.t} then ${t}`);
          const c = cand.get(t);
          if (c === undefined || c.child !== run.index) {
            fig.lostCommits++;
            problems.push(`txn ${t}, acknowledged to child ${run.index}, was cut off: ${c === undefined ? 'no try of it remains' : `child ${c.child} tried it later`}`);
          }
        }
      }

      // The survivors' view: where each opened, every snapshot read, verify.
      for (const run of runs) {
        if (run.opened !== null) {
          fig.openChecks++;
          if (run.opened.t < base || run.opened.hash !== model.hash(run.opened.t)) {
            fig.openMismatches++;
            problems.push(`child ${run.index} opened at txn ${run.opened.t} with state ${run.opened.hash}, the model's ${model.hash(run.opened.t)} (recovered before: ${base})`);
          }
        }
        let latest = run.opened?.t ?? 0;
        for (const rd of run.reads) {
          fig.survivorReads++;
          if (rd.hash !== model.hash(rd.t)) {
            fig.survivorReadMismatches++;
            problems.push(`child ${run.index}: ${rd.kind} snapshot of txn ${rd.t} has state ${rd.hash}, the model's ${model.hash(rd.t)}`);
          }
          if (rd.kind === 'latest') {
            if (rd.t < latest) {
              fig.survivorSnapshotsBackwards++;
              problems.push(`child ${run.index}: latest snapshot ${rd.t} after ${latest}`);
            }
            latest = Math.max(latest, rd.t);
          }
        }
        for (const v of run.verifies) {
          fig.survivorVerifies++;
          if (v !== 0) {
            fig.verifyProblems += v;
            problems.push(`child ${run.index}: verify() found ${v} problems`);
          }
        }
      }

      // Recover a copy; the originals are left for the next cycle's children.
      const recovered = ledger.check({ dbPath, copyPath, lastAcked, lastAttempted, truncated, hash: (t) => model.hash(t), rand, problems });
      if (ledger.failed(context, problems, lastAttempted)) {
        newEpoch();
        continue;
      }
      model.settle(recovered);
      if (opts.long && cycle % 25 === 24) log(`${cycle + 1} cycles, ${fig.acknowledgedCommits} acknowledged, p50 recovery ${ledger.recoveryP50().toFixed(1)} ms`);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return ledger.figures();
}

export const crashMultiSuite: HardeningSuite = { name: 'crashmulti', run: runCrashMulti };
