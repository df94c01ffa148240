// Crash torture with real processes (issue 5, §2 and §8): a child process runs
// the seeded workload (ts/hard/workload.ts: puts, deletes, overflow values,
// multi-op commits, commit() and commitAsync() groups, checkpoints, aborts,
// time-travel reads, now and then truncateLog) and prints each commit it tries
// and each one acknowledged. The parent SIGKILLs it at a random moment (after
// k acknowledgements, or after a random delay that may fall inside open and
// recovery), or the child SIGKILLs itself at the k-th pass of a named crash
// window (ts/io/failpoint.ts). Then the parent recovers a copy of the files and
// checks, against the model:
//
// - the recovered txn T satisfies lastAcked <= T <= lastAttempted (no lost
//   acknowledged commit, no phantom) and the state equals the model at T;
// - verify() is clean; time travel answers for retained txns with the model's
//   state; replay(path) of the log reaches T with the snapshot's state hash;
// - the next child, recovering the original files, opens at T too.
//
// The child's own time-travel reads are checked against the model as well.
// ts/hard/crashmulti.ts is the multi-process mode: several children on one
// database at once, killed together or one while the others go on.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { pathToFileURL } from 'node:url';
import { FAILPOINTS, type FailpointName } from '../io/failpoint.js';
import { compiledEngine } from './compiled.js';
import { CRASH_HISTORY_TXNS as HISTORY_TXNS, CRASH_PAGE_SIZE as PAGE_SIZE, CrashLedger } from './recovered.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { Model, rngOf, WORKLOAD_JS } from './workload.js';

/** Options of the child's database; the parent opens copies the same way. */

/** How a cycle ends the child. */
type Kill = { kind: 'acks'; after: number } | { kind: 'timer'; ms: number } | { kind: 'failpoint'; name: FailpointName; hit: number };

export interface CrashOptions extends SuiteOptions {
  /** Cycles to run (default: 24 short, 510 long). */
  cycles?: number;
}

/**
 * The child: argv path, seed, cycleSeed, limit, failpoint name or '-', hit,
 * truncate (0/1). Writes lines with fs.writeSync so each is in the pipe
 * before the next step (a SIGKILL loses no acknowledged line).
 */
function childSource(distDir: string): string {
  const dist = (p: string): string => JSON.stringify(pathToFileURL(nodePath.join(distDir, p)).href);
  return `import * as fs from 'node:fs';
import { open, stateHashOf, implementation } from ${dist('index.js')};
import { setFailpointHook } from ${dist('io/failpoint.js')};
${WORKLOAD_JS}
const [path, seedArg, cycleSeedArg, limitArg, fpName, fpHit, truncArg] = process.argv.slice(2);
const seed = Number(seedArg);
const limit = Number(limitArg);
const out = (s) => fs.writeSync(1, s + '\\n');
if (fpName !== '-') {
  let hits = 0;
  const want = Number(fpHit);
  setFailpointHook((name) => {
    if (name === fpName && ++hits === want) process.kill(process.pid, 'SIGKILL');
  });
}
const r = rngOf(Number(cycleSeedArg));
const db = open(path, { pageSize: ${PAGE_SIZE}, history: { txns: ${HISTORY_TXNS} }, checkpoint: { commits: 2 + Math.floor(r() * 12) } });
out('open ' + db.txnId + ' ' + implementation);
const apply = (w, t) => { for (const [op, k, v] of opsFor(seed, t)) { if (op === 'put') w.put(k, v); else w.del(k); } };
let t = db.txnId + 1;
while (t <= limit) {
  const x = r();
  if (x < 0.06) {
    db.checkpoint();
  } else if (x < 0.12 && truncArg === '1') {
    const before = db.stats().checkpoint.txnId;
    // Announced first: a kill inside truncateLog may leave the log cut.
    if (before > 1) { out('trunc ' + before); db.truncateLog({ beforeTxnId: before }); }
  } else if (x < 0.16) {
    const s = db.stats().history;
    if (s.oldestTxnId !== null) {
      const at = s.oldestTxnId + Math.floor(r() * (db.txnId - s.oldestTxnId + 1));
      const rd = db.beginRead({ txnId: at });
      out('tt ' + at + ' ' + stateHashOf(rd.scan()));
      rd.close();
    }
  } else if (x < 0.19) {
    const w = db.beginWrite();
    apply(w, t);
    w.abort();
  } else if (x < 0.45) {
    const batch = [];
    for (let n = 1 + Math.floor(r() * 8); n > 0 && t <= limit; n--, t++) {
      const w = db.beginWrite();
      apply(w, t);
      const want = t;
      out('try ' + want);
      batch.push(w.commitAsync().then((id) => {
        if (id !== want) throw new Error('commitAsync gave ' + id + ', expected ' + want);
        out('ack ' + id + ' ' + digestOf(opsFor(seed, id)));
      }));
    }
    await Promise.all(batch);
  } else {
    const w = db.beginWrite();
    apply(w, t);
    out('try ' + t);
    const id = w.commit();
    if (id !== t) throw new Error('commit gave ' + id + ', expected ' + t);
    out('ack ' + id + ' ' + digestOf(opsFor(seed, id)));
    t++;
  }
}
db.close();
out('done');
`;
}

interface ChildRun {
  opened: number | null;
  implementation: string | null;
  tried: number;
  acked: number[];
  /** Acks whose digest differs from the model's (a harness or workload bug). */
  badDigests: number;
  /** Time-travel reads in the child: [txnId, state hash]. */
  reads: Array<[number, string]>;
  truncated: boolean;
  done: boolean;
  signal: NodeJS.Signals | null;
  code: number | null;
  killedByParent: boolean;
  stderr: string;
}

function runChild(script: string, dbPath: string, seed: number, cycleSeed: number, limit: number, kill: Kill, truncate: boolean, model: Model): Promise<ChildRun> {
  const fp = kill.kind === 'failpoint' ? [kill.name, String(kill.hit)] : ['-', '0'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, dbPath, String(seed), String(cycleSeed), String(limit), ...fp, truncate ? '1' : '0'], {
      env: { ...process.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: ChildRun = {
      opened: null,
      implementation: null,
      tried: 0,
      acked: [],
      badDigests: 0,
      reads: [],
      truncated: false,
      done: false,
      signal: null,
      code: null,
      killedByParent: false,
      stderr: '',
    };
    const killNow = (): void => {
      if (!run.killedByParent && child.exitCode === null && child.signalCode === null) run.killedByParent = child.kill('SIGKILL');
    };
    let timer: NodeJS.Timeout | null = null;
    if (kill.kind === 'timer') timer = setTimeout(killNow, kill.ms);
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const [word, a, b] = line.split(' ');
        const n = Number(a);
        if (word === 'open') {
          run.opened = n;
          run.implementation = b ?? null;
        } else if (word === 'try') run.tried = Math.max(run.tried, n);
        else if (word === 'ack') {
          run.acked.push(n);
          if (Number(b) !== model.digest(n)) run.badDigests++;
        } else if (word === 'tt') run.reads.push([n, b!]);
        else if (word === 'trunc') run.truncated = true;
        else if (word === 'done') run.done = true;
      }
      if (kill.kind === 'acks' && run.acked.length >= kill.after) killNow();
    });
    child.stderr.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      run.code = code;
      run.signal = signal;
      resolve(run);
    });
  });
}

function describeKill(k: Kill): string {
  return k.kind === 'acks' ? `SIGKILL after ${k.after} acks` : k.kind === 'timer' ? `SIGKILL after ${k.ms} ms` : `SIGKILL at hit ${k.hit} of ${k.name}`;
}

export async function runCrash(opts: CrashOptions): Promise<Figures> {
  const cycles = opts.cycles ?? (opts.long ? 510 : 24);
  const scratch = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-crash-'));
  const log = opts.log;
  const top = rngOf(opts.seed);
  const rand = (n: number): number => Math.floor(top() * n);
  const fig = {
    cycles: 0,
    epochs: 0,
    killsByParent: 0,
    killsAtFailpoint: 0,
    childFinished: 0,
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
    childReopenMismatches: 0,
    childErrors: 0,
    tornTailsInjected: 0,
    killedBeforeCreated: 0,
    failures: 0,
  };
  const ledger = new CrashLedger(fig, log);
  const byFailpoint = ledger.byFailpoint;

  try {
    const distDir = compiledEngine(scratch);
    const script = nodePath.join(scratch, 'child.mjs');
    fs.writeFileSync(script, childSource(distDir));

    let epoch = -1;
    let epochSeed = 0;
    let model = new Model(0);
    let dbPath = '';
    let base = 0;
    let truncated = false;
    let fpNext = 0;
    const newEpoch = (): void => {
      epoch++;
      fig.epochs++;
      epochSeed = (opts.seed + Math.imul(epoch + 1, 0x9e3779b9)) >>> 0;
      model = new Model(epochSeed);
      const dir = nodePath.join(scratch, `epoch-${epoch}`);
      fs.mkdirSync(dir);
      dbPath = nodePath.join(dir, 'db');
      base = 0;
      truncated = false;
    };
    newEpoch();
    const copyPath = nodePath.join(scratch, 'check.db');

    for (let cycle = 0; cycle < cycles; cycle++) {
      if (cycle > 0 && cycle % 25 === 0) newEpoch();
      const cycleSeed = (epochSeed ^ Math.imul(cycle + 1, 0x85ebca6b)) >>> 0;
      // Kill choice: the first cycles visit every window once; then a third at windows.
      let kill: Kill;
      const atWindow = cycle < FAILPOINTS.length || rand(3) === 0;
      if (atWindow) {
        const name = FAILPOINTS[fpNext++ % FAILPOINTS.length]!;
        // Log truncation and compaction pass their windows once or twice a cycle.
        const rare = name === 'beforeLogTruncate' || name === 'midLogTruncate' || name === 'beforeLogCompactRename';
        kill = { kind: 'failpoint', name, hit: rare ? 1 : 1 + rand(opts.long ? 8 : 3) };
      }
      else if (rand(2) === 0) kill = { kind: 'acks', after: 1 + rand(40) };
      else kill = { kind: 'timer', ms: rand(250) };
      // The windows of log truncation are passed when recovery cuts a torn tail,
      // or a failed commit cuts its record: give the next open a torn append.
      const windowName = kill.kind === 'failpoint' ? kill.name : null;
      if ((windowName === 'beforeLogTruncate' || windowName === 'midLogTruncate' || rand(10) === 0) && fs.existsSync(`${dbPath}.log`)) {
        const junk = Buffer.alloc(1 + rand(300));
        for (let i = 0; i < junk.length; i++) junk[i] = rand(256);
        fs.appendFileSync(`${dbPath}.log`, junk);
        fig.tornTailsInjected++;
      }
      // truncateLog now and then (always in the cycle killed at its window).
      const truncate = windowName === 'beforeLogCompactRename' || rand(12) === 0;
      const limit = base + (kill.kind === 'failpoint' ? 60 : 150);
      const run = await runChild(script, dbPath, epochSeed, cycleSeed, limit, kill, truncate, model);
      fig.cycles++;
      const context = `seed ${opts.seed} epoch ${epoch} (epoch seed ${epochSeed}) cycle ${cycle} (cycle seed ${cycleSeed}), ${describeKill(kill)}${truncate ? ', truncateLog on' : ''}`;
      const problems: string[] = [];
      if (run.killedByParent) fig.killsByParent++;
      else if (run.signal === 'SIGKILL') {
        fig.killsAtFailpoint++;
        if (windowName) byFailpoint[windowName]!++;
      } else if (run.done && run.code === 0) fig.childFinished++;
      else {
        fig.childErrors++;
        problems.push(`child exited with code ${run.code} signal ${run.signal}: ${run.stderr.trim().split('\n').slice(0, 6).join(' | ')}`);
      }
      if (run.truncated) truncated = true;
      fig.acknowledgedCommits += run.acked.length;
      if (run.opened !== null && run.opened !== base) {
        fig.childReopenMismatches++;
        problems.push(`the child recovered to ${run.opened}, the parent's copy to ${base}`);
      }
      if (run.badDigests > 0) problems.push(`${run.badDigests} acknowledged commits with digests not the model's`);
      for (let i = 1; i < run.acked.length; i++) {
        if (run.acked[i] !== run.acked[i - 1]! + 1) problems.push(`acknowledgements out of order: ${run.acked[i - 1]} then ${run.acked[i]}`);
      }
      for (const [t, h] of run.reads) {
        fig.timeTravelChecks++;
        if (h !== model.hash(t)) {
          fig.timeTravelMismatches++;
          problems.push(`the child's time-travel read of txn ${t} has state ${h}, the model ${model.hash(t)}`);
        }
      }
      const lastAcked = Math.max(base, ...run.acked);
      const lastAttempted = Math.max(base, run.tried);

      // Recover a copy; the original is left for the next child to recover.
      const recovered = ledger.check({ dbPath, copyPath, lastAcked, lastAttempted, truncated, hash: (t) => model.hash(t), rand, problems });
      if (ledger.failed(context, problems, lastAttempted)) {
        newEpoch();
        continue;
      }
      base = recovered;
      if (opts.long && cycle % 50 === 49) log(`${cycle + 1} cycles, p50 recovery ${ledger.recoveryP50().toFixed(1)} ms`);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return ledger.figures();
}

export const crashSuite: HardeningSuite = { name: 'crash', run: runCrash };
