// Runs benchmarks: for each benchmark and implementation, setup, then per
// repeat a warm-up (discarded; a failing warm-up is logged and measurement
// goes on), the measured loop, checks; one validated JSON file per repeat,
// then summary.json over the whole output tree.
//
// How figures are taken (docs/benchmarks.md repeats this):
// - time: process.hrtime.bigint around the measured loop (duration, ops/s);
//   latency samples from one timer read at the end of each batch of `batch`
//   ops, divided by the batch (batch 1 for database operations: true per-op
//   percentiles; sub-microsecond kernels use batches of ~2 µs).
// - allocations: v8.GCProfiler records the heap statistics before and after
//   every GC inside the measured loop. Bytes allocated = growth of used heap
//   over the loop + what each GC freed; the same for V8's external memory
//   (ArrayBuffer/Buffer backing stores, i.e. native-side bytes). A GC runs
//   just before the loop. The loop's own timer reads allocate (a BigInt per
//   sample); that cost, measured on an empty op at the same batch size, is
//   subtracted. V8 has no object counter, so alloc.count is null.
// - I/O: deltas of the database's own counters (db.stats().io + logIo).
// - writes (a case with commits()): commits and committed bytes over the loop,
//   with the database's bytes and syncs and the process's device bytes
//   (/proc/self/io, read before and after the loop, outside the timing):
//   results.write, ts/bench/amplification.ts.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocMeter, collectGarbage } from './alloc.js';
import { deviceCounter, writeFigures, writeMedians, type DeviceCounter, type WriteDelta } from './amplification.js';
import { fallbackKernels, implementation, nativeKernels } from '../native/kernels.js';
import { buildInfo, gitInfo, machineProfile } from './metadata.js';
import { allBenchmarks, benchId, checkTargets, resultId, rules, selectBenchmarks, zeroIo, type Benchmark, type BenchCase, type IoCounters, type Profile, type SelfMeasured } from './registry.js';
import { readResult, writeResult, writeSummary, type BenchResult, type ImplName, type Summary, type SummaryEntry } from './schema.js';
import { coefficientOfVariation, latencySummary, median, UNSTABLE_CV } from './stats.js';

export type ImplChoice = ImplName | 'both';

export interface RunOptions {
  suite?: string;
  filter?: string;
  repeats: number;
  /** Warm-up ops before each repeat (undefined: the benchmark's default). */
  warmupOps?: number;
  /** Minimum warm-up time in ns before each repeat (0: none). */
  warmupNs: number;
  seed: number;
  profile: Profile;
  /** undefined: database benchmarks on this process's implementation, kernels on both. */
  impl?: ImplChoice;
  out: string;
  /** Only 'db' or only 'kernel' benchmarks (used for the child process of --impl both). */
  kinds?: 'db' | 'kernel';
  /** Write summary.json at the end (a child process leaves it to its parent). */
  summary: boolean;
  progress: boolean;
  log(line: string): void;
}

export interface RunOutcome {
  files: string[];
  summary: Summary | null;
  /** Benchmarks with errors and failed rules. */
  failures: string[];
}

/** `<out>/<suite>/<group>/<name>.<impl>_r000.json`: the stable file name of one repeat. */
export function resultFile(out: string, b: Pick<Benchmark, 'suite' | 'group' | 'name'>, impl: ImplName, repeat: number): string {
  return path.join(out, b.suite, b.group, `${b.name}.${impl}_r${String(repeat).padStart(3, '0')}.json`);
}

const RESULT_FILE = /^([a-z0-9_]+)\.(native|fallback)_r(\d{3,})\.json$/;

/** Every result file under `dir` (recursively), sorted. */
export function discoverResults(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (RESULT_FILE.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** The result id a file holds, from its contents. */
export function idOf(r: BenchResult): string {
  return resultId(r.bench, r.build.implementation);
}

/** Median figures per benchmark and implementation over its repeats. */
export function summarize(results: readonly BenchResult[]): SummaryEntry[] {
  const byId = new Map<string, BenchResult[]>();
  for (const r of results) {
    const id = idOf(r);
    if (!byId.has(id)) byId.set(id, []);
    byId.get(id)!.push(r);
  }
  const entries: SummaryEntry[] = [];
  for (const [id, rs] of [...byId].sort(([a], [b]) => a.localeCompare(b))) {
    const first = rs[0]!;
    const ops = rs.map((r) => r.results.ops_per_sec);
    const cv = coefficientOfVariation(ops);
    entries.push({
      id,
      suite: first.bench.suite,
      group: first.bench.group,
      name: first.bench.name,
      implementation: first.build.implementation,
      critical: first.bench.critical,
      repeats: rs.length,
      ops_per_sec: median(ops),
      p50_ns: median(rs.map((r) => r.results.latency_ns.p50)),
      p99_ns: median(rs.map((r) => r.results.latency_ns.p99)),
      alloc_bytes_per_op: median(rs.map((r) => r.results.alloc.bytes_per_op)),
      fsyncs_per_op: median(rs.map((r) => (r.results.io.fsync + r.results.io.fdatasync) / r.results.ops_total)),
      cv,
      stable: cv <= UNSTABLE_CV,
      errors_total: rs.reduce((s, r) => s + r.results.errors_total, 0),
      ...extraMedians(rs),
      ...writeMediansOf(rs),
    });
  }
  return entries;
}

/** Median over repeats of each results.extra figure that every repeat has. */
function extraMedians(rs: readonly BenchResult[]): { extra?: Record<string, number> } {
  const keys = Object.keys(rs[0]?.results.extra ?? {}).filter((k) => rs.every((r) => typeof r.results.extra?.[k] === 'number'));
  if (keys.length === 0) return {};
  return { extra: Object.fromEntries(keys.map((k) => [k, median(rs.map((r) => r.results.extra![k]!))])) };
}

/** Medians of results.write when every repeat has it. */
function writeMediansOf(rs: readonly BenchResult[]): { write?: ReturnType<typeof writeMedians> } {
  if (!rs.every((r) => r.results.write)) return {};
  const w = writeMedians(rs.map((r) => r.results.write!));
  return w ? { write: w } : {};
}

/** Reads and validates every result under `dir`. */
export function loadResults(dir: string): BenchResult[] {
  return discoverResults(dir).map((f) => readResult(f));
}

/** Builds, validates and writes `<out>/summary.json` from every result file under `out`. */
export function writeSummaryOf(out: string, profileName: Profile['name']): Summary {
  const results = loadResults(out);
  const entries = summarize(results);
  const byId = new Map(entries.map((e) => [e.id, e]));
  const first = results[0];
  const summary: Summary = {
    schema_version: 1,
    timestamp: new Date().toISOString(),
    profile: first?.profile ?? machineProfile(profileName, out),
    build: buildInfo(),
    git: first?.git ?? gitInfo(),
    benchmarks: entries,
    rules: rules.flatMap((r) => r.check(byId)),
    targets: checkTargets(entries),
    pending: allBenchmarks()
      .filter((b) => b.pending)
      .map((b) => ({ id: benchId(b), reason: b.pending! })),
  };
  writeSummary(path.join(out, 'summary.json'), summary);
  return summary;
}

// ---- measurement -----------------------------------------------------------------

interface Measured {
  durationNs: number;
  samples: Float64Array;
  errors: number;
  firstError: unknown;
  jsBytes: number;
  externalBytes: number;
  gcCount: number;
  io: IoCounters;
  /** Of a case with commits(). */
  write?: WriteDelta;
}

let device: DeviceCounter | null = null;
/** This process's device counter, looked up once. */
function deviceBytes(): DeviceCounter {
  device ??= deviceCounter();
  return device;
}

function ioDelta(a: IoCounters, b: IoCounters): IoCounters {
  return {
    reads: b.reads - a.reads,
    writes: b.writes - a.writes,
    bytesRead: b.bytesRead - a.bytesRead,
    bytesWritten: b.bytesWritten - a.bytesWritten,
    fsyncs: b.fsyncs - a.fsyncs,
    fdatasyncs: b.fdatasyncs - a.fdatasyncs,
    opens: b.opens - a.opens,
    closes: b.closes - a.closes,
  };
}

/** The measured loop: `ops` calls of op in timed batches, with allocation and I/O deltas. */
export function measure(c: BenchCase, ops: number, batch: number): Measured {
  const count = Math.ceil(ops / batch);
  // Batch end times (ns, as doubles); sample k = end[k] − end[k−1], end[−1] = the start.
  const ends = new Float64Array(count);
  const op = c.op;
  if (op === undefined) throw new Error('measure() needs a benchmark case with op()');
  collectGarbage();
  c.beforeMeasure?.();
  // Copies: a case may hand out the same live counter object each time.
  const commits0 = c.commits ? { ...c.commits() } : undefined;
  const dev0 = commits0 ? deviceBytes().read() : null;
  const io0 = c.io ? c.io() : zeroIo();
  const meter = allocMeter();
  const t0 = process.hrtime.bigint();
  let i = 0;
  let s = 0;
  let errors = 0;
  let firstError: unknown = undefined;
  while (i < ops) {
    const n = Math.min(batch, ops - i);
    try {
      for (let j = 0; j < n; j++) op(i + j);
    } catch (err) {
      errors++;
      if (errors === 1) firstError = err;
    }
    // One timer read per sample: the harness's only allocation in the loop (a BigInt).
    ends[s++] = Number(process.hrtime.bigint() - t0);
    i += n;
  }
  const t1 = process.hrtime.bigint();
  const allocated = meter.stop();
  const io1 = c.io ? c.io() : zeroIo();
  const io = ioDelta(io0, io1);
  let write: WriteDelta | undefined;
  if (commits0) {
    const commits1 = { ...c.commits!() };
    const dc = deviceBytes();
    const dev1 = dc.read();
    const seen = dev0 !== null && dev1 !== null;
    write = {
      commits: commits1.commits - commits0.commits,
      committedBytes: commits1.committedBytes - commits0.committedBytes,
      io,
      deviceBytes: seen ? dev1 - dev0 : null,
      deviceSource: seen || !dc.available ? dc.source : `unavailable: ${PROC_IO_LOST}`,
    };
  }
  const samples = new Float64Array(count);
  let prev = 0;
  for (let k = 0; k < count; k++) {
    const n = k === count - 1 ? ops - batch * (count - 1) : batch;
    samples[k] = (ends[k]! - prev) / n;
    prev = ends[k]!;
  }
  return {
    durationNs: Math.max(1, Number(t1 - t0)),
    samples,
    errors,
    firstError,
    ...allocated,
    io,
    ...(write ? { write } : {}),
  };
}

const PROC_IO_LOST = '/proc/self/io could not be read before or after the loop';

const harnessBytes = new Map<number, number>();
/**
 * JS heap bytes the measured loop itself allocates per latency sample at
 * `batch` (its timer reads), measured on an empty op in this process and
 * subtracted from every benchmark's figure.
 */
export function harnessBytesPerSample(batch: number): number {
  let b = harnessBytes.get(batch);
  if (b === undefined) {
    const samples = 20_000;
    const runs: number[] = [];
    for (let k = 0; k < 3; k++) runs.push(measure({ ops: 1, op: () => {} }, samples * batch, batch).jsBytes / samples);
    b = median(runs);
    harnessBytes.set(batch, b);
  }
  return b;
}

let primed = false;
/**
 * Runs the measured loop on empty ops until V8 has optimized it, so that the
 * loop's own numbers stay unboxed and its allocations (which would be counted
 * as the benchmark's) are zero from the first real repeat on.
 */
function primeMeasureLoop(): void {
  if (primed) return;
  primed = true;
  const noops = [(): void => {}, (i: number): void => void (i + 1), (): void => void 0];
  for (let k = 0; k < 6; k++) measure({ ops: 1, op: noops[k % 3]! }, 100_000, 1 + (k % 4));
}

/** Ops per repeat of an 'auto' benchmark (~100 ms) and a batch of ~2 µs. */
function calibrate(c: BenchCase): { ops: number; batch: number } {
  const op = c.op!;
  for (let calls = 1; ; calls *= 2) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) op(i);
    const ns = Number(process.hrtime.bigint() - t0);
    if (ns > 10_000_000 || calls >= 1 << 24) {
      const perOp = ns / calls;
      return { ops: Math.max(10, Math.ceil(100_000_000 / perOp)), batch: Math.max(1, Math.ceil(2000 / perOp)) };
    }
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Warm-up before a repeat: discarded, and a failure is logged, not fatal. */
export function warmUp(c: BenchCase, ops: number, ns: number, id: string, log: (l: string) => void): void {
  const start = process.hrtime.bigint();
  try {
    do {
      if (c.warmup) c.warmup(ops);
      else if (c.op) for (let i = 0; i < ops; i++) c.op(i);
    } while (ns > 0 && Number(process.hrtime.bigint() - start) < ns);
  } catch (err) {
    log(`${id}: warm-up failed (${message(err)}); measuring anyway`);
  }
}

/** The implementations a benchmark runs on in this process. */
function implsHere(b: Benchmark, o: RunOptions): ImplName[] {
  if (b.kind === 'kernel' || b.kind === 'threads') {
    const want: ImplName[] = o.impl === 'native' ? ['native'] : o.impl === 'fallback' ? ['fallback'] : ['native', 'fallback'];
    return want.filter((i) => i === 'fallback' || nativeKernels !== null);
  }
  const want = o.impl === undefined ? implementation : o.impl;
  return want === 'both' || want === implementation ? [implementation] : [];
}

/** Database benchmarks for an implementation this process does not have run in a child. */
function childImpls(o: RunOptions): ImplName[] {
  if (o.kinds === 'kernel' || o.impl === undefined) return [];
  const want: ImplName[] = o.impl === 'both' ? ['native', 'fallback'] : [o.impl];
  return want.filter((i) => i !== implementation);
}

export function runBenchmarks(o: RunOptions): RunOutcome {
  const all = selectBenchmarks(o.suite, o.filter).filter((b) => o.kinds === undefined || b.kind === o.kinds);
  const runnable = all.filter((b) => !b.pending);
  const machine = machineProfile(o.profile.name, o.out);
  const git = gitInfo();
  const files: string[] = [];
  const failures: string[] = [];
  // Kernel benchmarks measure both implementations with their repeats
  // interleaved (native r0, fallback r0, fallback r1, native r1, …), so machine
  // noise falls on both alike and the printed ratios mean something.
  const plan = runnable.map((b) => ({ b, impls: implsHere(b, o) })).filter((p) => p.impls.length > 0);
  for (const b of all.filter((x) => x.pending)) o.log(`${benchId(b)}: pending (${b.pending})`);
  for (const b of runnable) if (b.kind !== 'db' && nativeKernels === null && o.impl !== 'fallback') o.log(`${benchId(b)}: native kernels unavailable; fallback only`);
  if (plan.length > 0) primeMeasureLoop();
  let k = 0;
  for (const { b, impls } of plan) {
    k++;
    const dir = path.join(o.out, b.suite, b.group);
    fs.mkdirSync(dir, { recursive: true });
    const progress = (what: string): void => {
      if (o.progress) process.stderr.write(`\r\x1b[K[${k}/${plan.length}] ${benchId(b)} ${what}`);
    };
    interface Contender {
      impl: ImplName;
      id: string;
      work: string;
      c: BenchCase | null;
      ops: number;
      batch: number;
      warmOps: number;
      failed: boolean;
    }
    const contenders: Contender[] = impls.map((impl) => ({ impl, id: resultId(b, impl), work: '', c: null, ops: 0, batch: 1, warmOps: 0, failed: false }));
    const fail = (x: Contender, err: unknown): void => {
      o.log(`${x.id}: failed (${message(err)})`);
      x.failed = true;
      if (!failures.includes(x.id)) failures.push(x.id);
    };
    try {
      for (const x of contenders) {
        for (const f of fs.readdirSync(dir)) if (f.startsWith(`${b.name}.${x.impl}_r`)) fs.rmSync(path.join(dir, f));
        x.work = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-bench-'));
        try {
          progress(`setup ${x.impl}`);
          const c = b.setup!({ profile: o.profile, seed: o.seed, dir: x.work, impl: x.impl, kernels: x.impl === 'native' ? nativeKernels! : fallbackKernels });
          x.c = c;
          x.warmOps = o.warmupOps ?? c.warmupOps ?? 0;
          x.ops = c.ops === 'auto' ? 0 : c.ops;
          x.batch = c.batch || 1;
          if (c.run === undefined && c.op === undefined) throw new Error('the benchmark case has neither op() nor run()');
          if (c.run === undefined && (c.ops === 'auto' || c.batch === 0)) {
            warmUp(c, x.warmOps, 0, x.id, o.log);
            const cal = calibrate(c);
            if (c.ops === 'auto') x.ops = cal.ops;
            if (c.batch === 0) x.batch = cal.batch;
          }
        } catch (err) {
          fail(x, err);
        }
      }
      for (let r = 0; r < o.repeats; r++) {
        const order = r % 2 === 0 ? contenders : [...contenders].reverse();
        for (const x of order) {
          if (x.failed || x.c === null) continue;
          const c = x.c;
          progress(`${x.impl} repeat ${r + 1}/${o.repeats}`);
          try {
            c.beforeRepeat?.(r);
            warmUp(c, x.warmOps, o.warmupNs, x.id, o.log);
            const m: SelfMeasured = c.run ? c.run(r) : { ...measure(c, x.ops, x.batch), ops: x.ops };
            // The runner's loop allocates per latency sample (its timer reads); a self-measuring case counts its own.
            const harness = c.run ? 0 : harnessBytesPerSample(x.batch) * m.samples.length;
            const ops = m.ops;
            const notes = [...(c.notes ?? []), ...(m.notes ?? [])];
            let errors = m.errors;
            if (m.firstError !== undefined) notes.push(`error: ${message(m.firstError)}`);
            try {
              c.afterRepeat?.(r);
            } catch (err) {
              errors++;
              notes.push(`check failed: ${message(err)}`);
            }
            if (errors > 0) o.log(`${x.id} repeat ${r}: ${errors} errors (${notes.filter((n) => n.startsWith('error') || n.startsWith('check')).join('; ')})`);
            const jsBytes = Math.max(0, m.jsBytes - harness);
            const allocBytes = jsBytes + m.externalBytes;
            const result: BenchResult = {
              schema_version: 1,
              bench: { suite: b.suite, group: b.group, name: b.name, critical: b.critical },
              timestamp: new Date().toISOString(),
              repeat: { index: r, count: o.repeats },
              profile: machine,
              build: buildInfo(x.impl),
              git,
              config: {
                seed: o.seed,
                warmup_ops: x.warmOps,
                warmup_ns: o.warmupNs,
                measured_ops: ops,
                threads: c.threads ?? 1,
                batch: x.batch,
                db: c.db ?? null,
                params: b.params(o.profile),
              },
              results: {
                ops_total: ops,
                duration_ns: m.durationNs,
                ops_per_sec: ops / (m.durationNs / 1e9),
                latency_ns: latencySummary(m.samples),
                bytes: { read: m.io.bytesRead, written: m.io.bytesWritten },
                io: { fsync: m.io.fsyncs, fdatasync: m.io.fdatasyncs, open: m.io.opens, close: m.io.closes, reads: m.io.reads, writes: m.io.writes },
                alloc: { count: null, bytes: allocBytes, bytes_per_op: allocBytes / ops, js_heap_bytes: jsBytes, external_bytes: m.externalBytes, gc_count: m.gcCount },
                errors_total: errors,
                notes,
              },
            };
            const extra = { ...m.extra, ...c.extra?.(ops, m.durationNs, m.io) };
            if (Object.keys(extra).length > 0) result.results.extra = extra;
            const write = m.write ? writeFigures(m.write) : undefined;
            if (write) result.results.write = write;
            const file = resultFile(o.out, b, x.impl, r);
            writeResult(file, result);
            files.push(file);
            if (errors > 0 && !failures.includes(x.id)) failures.push(x.id);
          } catch (err) {
            fail(x, err);
          }
        }
      }
    } finally {
      for (const x of contenders) {
        try {
          x.c?.teardown?.();
        } catch (err) {
          o.log(`${x.id}: teardown failed (${message(err)})`);
        }
        if (x.work) fs.rmSync(x.work, { recursive: true, force: true });
      }
    }
  }
  if (o.progress) process.stderr.write('\r\x1b[K');
  for (const impl of childImpls(o)) {
    if (!runnable.some((b) => b.kind === 'db')) break;
    const code = runChild(impl, o);
    if (code !== 0) failures.push(`child run (${impl}) exited ${code}`);
  }
  let summary: Summary | null = null;
  if (o.summary) {
    summary = writeSummaryOf(o.out, o.profile.name);
    for (const r of summary.rules) if (!r.ok) failures.push(`rule failed: ${r.rule}: ${r.detail}`);
  }
  return { files, summary, failures };
}

/** Runs the database benchmarks on `impl` in a child process (the implementation is fixed at import). */
function runChild(impl: ImplName, o: RunOptions): number {
  const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  if (!fs.existsSync(main)) {
    o.log(`--impl ${impl}: needs the built command line (${main}); run npm run build`);
    return 1;
  }
  const args = [main, 'bench', 'run', '--impl', impl, '--kinds', 'db', '--no-summary', '--repeats', String(o.repeats), '--seed', String(o.seed), '--warmup-ns', String(o.warmupNs), '--profile', o.profile.name, '--records', String(o.profile.records), '--ops-scale', String(o.profile.opsScale), '--out', o.out];
  if (o.suite) args.push('--suite', o.suite);
  if (o.filter) args.push('--filter', o.filter);
  if (o.warmupOps !== undefined) args.push('--warmup-ops', String(o.warmupOps));
  o.log(`running the database benchmarks on ${impl} in a child process (NORTHSTAR_NATIVE=${impl === 'native' ? 1 : 0})`);
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NORTHSTAR_NATIVE: impl === 'native' ? '1' : '0' } });
  return r.status ?? 1;
}
