// concurrency: many handles on one database at once (spec/concurrency_v0.md).
// Every handle lives in a worker thread of its own (ts/bench/suites/
// concurrency_worker.ts), opened with `open()` in that thread; the runner's
// thread only starts phases and collects figures. Each benchmark runs for
// native and fallback in this process, repeats interleaved, because a worker
// thread picks its kernels from its own NORTHSTAR_NATIVE.
//
// Definitions (docs/benchmarks.md repeats them):
// - A reader runs read transactions of READ_TXN_GETS random point gets each
//   (beginRead, gets, close). "N readers" on W threads: N/W readers per
//   thread, interleaved one get at a time, so N read transactions are live at
//   any moment. A reader op is one get (with the beginRead or close it starts
//   or ends); its latency is measured in the thread that makes it.
// - Each repeat measures a benchmark's configurations side by side (in
//   alternating order), so a ratio compares moments of the same machine.
//   Targets are judged on the median over repeats of each repeat's ratio.
//   Each repeat records the 1-minute load average at its start
//   (load_avg_1m): a ratio of threads to one thread needs free cores, and on
//   a shared machine someone else's work takes them.

import * as os from 'node:os';
import * as path from 'node:path';
import type { DbConfig, ImplName } from '../schema.js';
import type { Benchmark, BenchCase, BenchContext, IoCounters, Profile, SelfMeasured } from '../registry.js';
import { zeroIo } from '../registry.js';
import { latencySummary } from '../stats.js';
import { ThreadGroup, workerScript, type BenchThread } from '../threads.js';
import type { LoopReport, OpenReply } from './concurrency_worker.js';
import { buildDatabase, KEY_BYTES, VALUE_BYTES } from './fixtures.js';

const g = { suite: 'concurrency', group: 'mvcc' } as const;

/** Gets per read transaction of every reader. */
export const READ_TXN_GETS = 16;
/** Puts per commit of the writer (updates of random keys, sync 'full'). */
export const PUTS_PER_COMMIT = 4;
/** Length of each timed phase at ops scale 1 (ci; dev_nvme is 4x): readers only, and with the writer (its commits take ms each). */
const READ_PHASE_MS = 200;
// 1.5 s: at about 400-1,500 commits/s a phase holds 600 or more commits, so a
// p99 is not the 2nd slowest of 150 (it was at 300 ms: ratios swung 1.6-3x).
const WRITE_PHASE_MS = 1500;
const phaseMs = (p: Profile, ms: number): number => Math.max(20, Math.round(ms * p.opsScale));
/** Keys between two reads of a cache refill: fewer than a leaf holds at any page size, so every leaf is read. */
const REFILL_STRIDE = 8;
/** beginRead calls per repeat at ops scale 1: nothing changed since the last, and after another handle's commit. */
const BEGIN_READS = 50_000;
const CATCH_UPS = 500;

/**
 * Worker threads the readers are spread over: one per core, 2 at least, 4 at
 * most; NORTHSTAR_BENCH_READER_THREADS (1 to 64) sets it instead, e.g. to 1
 * on 2 cores to leave the writer a core of its own.
 */
export function readerThreads(): number {
  const set = process.env.NORTHSTAR_BENCH_READER_THREADS;
  if (set !== undefined && set !== '') {
    const n = Number(set);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`NORTHSTAR_BENCH_READER_THREADS must be an integer from 1 to 64, got ${set}`);
    return n;
  }
  return Math.min(4, Math.max(2, os.availableParallelism()));
}

/** `n` readers over `threads` threads, as evenly as they go. */
export function spread(n: number, threads: number): number[] {
  return Array.from({ length: threads }, (_, i) => Math.floor(n / threads) + (i < n % threads ? 1 : 0));
}

function envFor(impl: ImplName): NodeJS.ProcessEnv {
  return { ...process.env, NORTHSTAR_NATIVE: impl === 'native' ? '1' : '0' };
}

function sumIo(xs: readonly IoCounters[]): IoCounters {
  const out = zeroIo();
  for (const x of xs) for (const k of Object.keys(out) as (keyof IoCounters)[]) out[k] += x[k];
  return out;
}

/**
 * Linux: the share of its loop's span each thread spent on a CPU, and waiting
 * for one, averaged over the threads (`extra.cpu_share`, `extra.runqueue_share`;
 * absent where the kernel does not say). A thread of a busy loop waits only
 * when other threads or processes hold the cores.
 */
function schedShares(runs: readonly LoopReport[]): Record<string, number> {
  if (runs.some((r) => r.cpuNs <= 0)) return {};
  const share = (f: (r: LoopReport) => number): number => runs.reduce((s, r) => s + f(r) / Math.max(1, r.endNs - r.startNs), 0) / runs.length;
  return { cpu_share: share((r) => r.cpuNs), runqueue_share: share((r) => r.runqueueNs) };
}

/** The loops of one phase as one measurement: ops summed over the span from the first start to the last end. */
export function combine(runs: readonly LoopReport[]): SelfMeasured {
  let n = 0;
  for (const r of runs) n += r.samples.length;
  const samples = new Float64Array(n);
  let at = 0;
  for (const r of runs) {
    samples.set(r.samples, at);
    at += r.samples.length;
  }
  const failed = runs.find((r) => r.errors > 0);
  return {
    ops: runs.reduce((s, r) => s + r.ops, 0),
    durationNs: Math.max(1, Math.max(...runs.map((r) => r.endNs)) - Math.min(...runs.map((r) => r.startNs))),
    samples,
    errors: runs.reduce((s, r) => s + r.errors, 0),
    ...(failed ? { firstError: failed.firstError } : {}),
    jsBytes: runs.reduce((s, r) => s + r.jsBytes, 0),
    externalBytes: runs.reduce((s, r) => s + r.externalBytes, 0),
    gcCount: runs.reduce((s, r) => s + r.gcCount, 0),
    io: sumIo(runs.map((r) => r.io)),
    extra: { ...schedShares(runs), catch_ups: runs.reduce((s, r) => s + r.catchUps, 0) },
  };
}

/** The share of `m`'s ops slower than `ns`. */
function shareSlowerThan(m: SelfMeasured, ns: number): number {
  let n = 0;
  for (const x of m.samples) if (x > ns) n++;
  return n / Math.max(1, m.samples.length);
}

/**
 * Gets per CPU-second of the spread configuration ÷ those of one thread
 * (`per_cpu_efficiency`; 1 = the threads cost each other nothing): the
 * scaling left once other processes' share of the cores is taken out. On idle
 * cores throughput_ratio would be about `threads` × this.
 */
function perCpu(spread: SelfMeasured, one: SelfMeasured, threads: number): Record<string, number> {
  const cs = spread.extra?.cpu_share;
  const co = one.extra?.cpu_share;
  if (cs === undefined || co === undefined || cs <= 0 || co <= 0) return {};
  return { per_cpu_efficiency: opsPerSec(spread) / (threads * cs) / (opsPerSec(one) / co) };
}

/** extra[key] of `m` as `name`, when present. */
function shareOf(m: SelfMeasured, key: string, name: string): Record<string, number> {
  const v = m.extra?.[key];
  return v === undefined ? {} : { [name]: v };
}

const opsPerSec = (m: SelfMeasured): number => m.ops / (m.durationNs / 1e9);
const p99 = (m: SelfMeasured): number => latencySummary(m.samples).p99;

/** Posts `msg` to every thread, then takes every reply (so they work in parallel). */
function callAll<T>(threads: readonly BenchThread[], msg: (i: number) => object): T[] {
  threads.forEach((t, i) => t.post(msg(i)));
  const replies = threads.map((t) => {
    try {
      return { value: t.reply<T>() };
    } catch (error) {
      return { error };
    }
  });
  const failed = replies.find((r) => 'error' in r);
  if (failed) throw failed.error;
  return replies.map((r) => (r as { value: T }).value);
}

interface Threads {
  group: ThreadGroup;
  threads: BenchThread[];
  opened: OpenReply[];
}

/**
 * Starts `opens.length` worker threads on `ctx.impl`, each opening its own
 * handle on `file` with the given extra fields; on any failure every thread
 * started is ended before the error goes on.
 */
function startThreads(ctx: BenchContext, file: string, opens: readonly object[]): Threads {
  const group = new ThreadGroup(workerScript(import.meta.url, 'concurrency_worker.js'), envFor(ctx.impl));
  try {
    const threads = opens.map(() => group.spawn(null));
    const opened = callAll<OpenReply>(threads, (i) => ({ op: 'open', file, impl: ctx.impl, records: ctx.profile.records, seed: ctx.seed + 1000 * i, ...opens[i] }));
    return { group, threads, opened };
  } catch (err) {
    try {
      group.exitAll();
    } catch {
      // The first error is the one to report.
    }
    throw err;
  }
}

function template(ctx: BenchContext, name: string): string {
  const file = path.join(ctx.dir, name);
  buildDatabase(file, { records: ctx.profile.records, valueSize: VALUE_BYTES, txn: 10_000 });
  return file;
}

/** Runs `phases` in order on even repeats and reversed on odd ones, returning them by name. */
function sideBySide<P extends Record<string, () => unknown>>(repeat: number, phases: P): { [K in keyof P]: ReturnType<P[K]> } {
  const names = Object.keys(phases) as (keyof P)[];
  if (repeat % 2 === 1) names.reverse();
  const out = {} as { [K in keyof P]: ReturnType<P[K]> };
  for (const k of names) out[k] = phases[k]!() as ReturnType<P[typeof k]>;
  return out;
}

/** `main` with the errors of every configuration measured beside it. */
function withErrors(main: SelfMeasured, ...others: SelfMeasured[]): SelfMeasured {
  const all = [main, ...others];
  const first = all.find((m) => m.errors > 0);
  return { ...main, errors: all.reduce((s, m) => s + m.errors, 0), ...(first ? { firstError: first.firstError } : {}) };
}

function dbOf(o: OpenReply): DbConfig {
  return { page_size: o.pageSize, checksum: 'crc32c', sync_mode: o.sync, mmap: false };
}

function readersCase(ctx: BenchContext): BenchCase {
  const readers = 256;
  const threadsN = readerThreads();
  const counts = spread(readers, threadsN);
  const file = template(ctx, 'readers.ndb');
  const { group, threads, opened } = startThreads(ctx, file, counts.map(() => ({})));
  const T = phaseMs(ctx.profile, READ_PHASE_MS);
  const read = (t: BenchThread, n: number, ops = 0): [BenchThread, object] => [t, { op: 'read', readers: n, gets: READ_TXN_GETS, ops }];
  try {
    callAll(threads, () => ({ op: 'warm' }));
  } catch (err) {
    group.exitAll();
    throw err;
  }
  return {
    ops: 1,
    threads: threadsN,
    db: dbOf(opened[0]!),
    warmupOps: 20_000,
    warmup(ops) {
      group.run(threads.map((t, i) => read(t, counts[i]!, ops)));
      group.run([read(threads[0]!, 1, ops)]);
    },
    run(repeat) {
      const load = os.loadavg()[0]!;
      const m = sideBySide(repeat, {
        spread: () => combine(group.run(threads.map((t, i) => read(t, counts[i]!)), T)),
        oneThread: () => combine(group.run([read(threads[0]!, readers)], T)),
        oneReader: () => combine(group.run([read(threads[0]!, 1)], T)),
      });
      const s = m.spread;
      return {
        ...withErrors(s, m.oneThread, m.oneReader),
        extra: {
          load_avg_1m: load,
          threads: threadsN,
          single_thread_ops_per_sec: opsPerSec(m.oneThread),
          throughput_ratio: opsPerSec(s) / opsPerSec(m.oneThread),
          single_thread_p99_ns: p99(m.oneThread),
          single_reader_ops_per_sec: opsPerSec(m.oneReader),
          single_reader_p99_ns: p99(m.oneReader),
          p99_ratio: p99(s) / p99(m.oneReader),
          ...shareOf(s, 'cpu_share', 'cpu_share'),
          ...shareOf(s, 'runqueue_share', 'runqueue_share'),
          ...shareOf(m.oneThread, 'cpu_share', 'single_thread_cpu_share'),
          ...perCpu(s, m.oneThread, threadsN),
          timer_ns: opened[0]!.timerNs,
        },
      };
    },
    notes: [
      `${readers} readers = ${readers} live read transactions: ${counts.join(' + ')} readers in ${threadsN} worker threads, each thread with its own open() handle; a reader runs read transactions of ${READ_TXN_GETS} uniform random point gets, interleaved one get at a time`,
      `figures: the readers spread over ${threadsN} threads (ops/s = all gets ÷ the span from the first start to the last end; latency = one get, with the beginRead/close it starts or ends, in its thread); extra: the same ${readers} readers in 1 thread (throughput_ratio = spread ÷ 1 thread) and 1 reader in 1 thread (p99_ratio = spread p99 ÷ single-reader p99); ${T} ms per configuration, side by side in each repeat`,
      `hot: every handle read every key before the first repeat (page cache default 256 MiB); the runner's thread sleeps while they run; timer_ns = one timer read, included in every sample; cpu_share / runqueue_share (Linux): share of its span each reader thread spent on a CPU / waiting for one (other processes holding the cores), single_thread_cpu_share the same for the 1-thread configuration; per_cpu_efficiency = gets per CPU-second spread ÷ in 1 thread (on idle cores throughput_ratio ≈ threads × it)`,
    ],
    teardown: () => group.exitAll(),
  };
}

function writerCase(ctx: BenchContext): BenchCase {
  const readers = 128;
  const threadsN = readerThreads();
  const counts = spread(readers, threadsN);
  const file = template(ctx, 'writer.ndb');
  // Automatic checkpoints off for the writer: one is taken before each writer phase instead, outside the timing.
  const writerOpen = { options: { sync: 'full', checkpoint: { commits: 2 ** 40, logBytes: 2 ** 40 } } };
  const { group, threads, opened } = startThreads(ctx, file, [writerOpen, ...counts.map(() => ({}))]);
  const writer = threads[0]!;
  const readerThreadsList = threads.slice(1);
  const T = phaseMs(ctx.profile, WRITE_PHASE_MS);
  const read = (ops = 0): [BenchThread, object][] => readerThreadsList.map((t, i) => [t, { op: 'read', readers: counts[i]!, gets: READ_TXN_GETS, ops }]);
  const write = (ops = 0): [BenchThread, object] => [writer, { op: 'write', puts: PUTS_PER_COMMIT, ops }];
  const warm = (stride = REFILL_STRIDE): void => void callAll(readerThreadsList, () => ({ op: 'warm', stride }));
  try {
    warm(1);
  } catch (err) {
    group.exitAll();
    throw err;
  }
  return {
    ops: 1,
    threads: threadsN + 1,
    db: dbOf(opened[0]!),
    warmupOps: 10_000,
    warmup(ops) {
      writer.call({ op: 'checkpoint' });
      group.run([write(Math.max(1, Math.round(ops / 100))), ...read(ops)]);
    },
    run(repeat) {
      const load = os.loadavg()[0]!;
      const m = sideBySide(repeat, {
        writerAlone: () => {
          writer.call({ op: 'checkpoint' });
          return combine(group.run([write()], T));
        },
        readersAlone: () => {
          warm();
          return combine(group.run(read(), T));
        },
        together: () => {
          writer.call({ op: 'checkpoint' });
          warm();
          const [w, ...rs] = group.run<LoopReport>([write(), ...read()], T);
          return { writer: combine([w!]), readers: combine(rs) };
        },
      });
      const { writer: w, readers: r } = m.together;
      const alone = m.readersAlone;
      const unloaded = latencySummary(m.writerAlone.samples);
      return {
        ...withErrors(w, r, m.writerAlone, alone),
        extra: {
          load_avg_1m: load,
          reader_threads: threadsN,
          writer_unloaded_commits_per_sec: opsPerSec(m.writerAlone),
          writer_unloaded_p50_ns: unloaded.p50,
          writer_unloaded_p99_ns: unloaded.p99,
          writer_p99_ratio: p99(w) / unloaded.p99,
          reader_ops_per_sec: opsPerSec(r),
          reader_ops_per_sec_no_writes: opsPerSec(alone),
          reader_p99_ns: p99(r),
          reader_p99_no_writes_ns: p99(alone),
          reader_p99_ratio: p99(r) / p99(alone),
          reader_page_reads_per_commit: r.io.reads / Math.max(1, w.ops),
          // What sets reader_p99_ratio: the share of reader ops slower than twice the
          // no-writes p99 (the ratio is under 2 when this share is under 1%), and the share
          // of ops that caught up with a commit, each of which is one such slow op at most.
          reader_slow_op_share: shareSlowerThan(r, 2 * p99(alone)),
          reader_catch_up_op_share: (r.extra?.catch_ups ?? 0) / Math.max(1, r.ops),
          reader_catch_ups_per_commit: (r.extra?.catch_ups ?? 0) / Math.max(1, w.ops),
          ...shareOf(r, 'cpu_share', 'reader_cpu_share'),
          ...shareOf(alone, 'cpu_share', 'reader_cpu_share_no_writes'),
          ...shareOf(r, 'runqueue_share', 'reader_runqueue_share'),
          timer_ns: opened[0]!.timerNs,
        },
      };
    },
    notes: [
      `one writer thread committing transactions of ${PUTS_PER_COMMIT} updates of random keys (${KEY_BYTES} B keys, ${VALUE_BYTES} B values; sync 'full': one fdatasync each) while ${readers} readers (${counts.join(' + ')} in ${threadsN} worker threads, each thread with its own open() handle; read transactions of ${READ_TXN_GETS} random gets) read continuously`,
      `figures: the writer's commits with the readers running (latency = beginWrite + puts + commit; alloc and I/O the writer's); extra: the writer alone (writer_p99_ratio = loaded ÷ unloaded p99), the readers with and without the writer (reader_p99_ratio = with ÷ without); ${T} ms per configuration, side by side in each repeat`,
      `the readers' caches are filled again (a get of every ${REFILL_STRIDE}th key, which reads every leaf) before each configuration they run in, since the writer's commits evict the pages they rewrite; the writer checkpoints before each of its configurations, outside the timing, and not during them`,
    ],
    teardown: () => group.exitAll(),
  };
}

function beginReadCase(ctx: BenchContext): BenchCase {
  const file = template(ctx, 'begin.ndb');
  const { group, threads, opened } = startThreads(ctx, file, [{ peer: true }]);
  const t = threads[0]!;
  const n = Math.max(1000, Math.round(BEGIN_READS * ctx.profile.opsScale));
  const catchUps = Math.max(50, Math.round(CATCH_UPS * ctx.profile.opsScale));
  const call = (ops: number, catchUp: boolean): SelfMeasured => combine([t.call<LoopReport>({ op: 'beginRead', ops, catchUp })]);
  return {
    ops: n,
    threads: 1,
    db: dbOf(opened[0]!),
    warmupOps: 10_000,
    warmup(ops) {
      call(ops, false);
      call(Math.max(10, Math.round(ops / 100)), true);
    },
    run(repeat) {
      const load = os.loadavg()[0]!;
      const m = sideBySide(repeat, { same: () => call(n, false), caughtUp: () => call(catchUps, true) });
      const c = latencySummary(m.caughtUp.samples);
      return {
        ...withErrors(m.same, m.caughtUp),
        extra: { load_avg_1m: load, catch_up_p50_ns: c.p50, catch_up_p99_ns: c.p99, catch_up_max_ns: c.max, timer_ns: opened[0]!.timerNs },
      };
    },
    notes: [
      `beginRead() + close() on a handle in a worker thread when nothing changed since its last one (${n} per repeat, each timed alone: two timer reads around it, timer_ns each); extra catch_up_*: the same right after another handle on the file committed one put (sync 'none'; ${catchUps} per repeat; the commit is not timed): one catch-up over one log record (spec/concurrency_v0.md §4.1)`,
    ],
    teardown: () => group.exitAll(),
  };
}

export function concurrencyBenchmarks(): Benchmark[] {
  return [
    {
      ...g,
      name: 'readers_256_point_get_hot',
      critical: true,
      kind: 'threads',
      params: (p) => ({ records: p.records, readers: 256, threads: readerThreads(), gets_per_read_txn: READ_TXN_GETS, access: 'uniform random', phase_ms: phaseMs(p, READ_PHASE_MS) }),
      targets: [
        { name: 'aggregate ops/s, 256 readers over the worker threads ÷ the same readers in 1 thread', metric: 'throughput_ratio', bound: 'atLeast', limit: 1.7, unit: 'ratio' },
        { name: 'reader p99, 256 readers ÷ 1 reader alone', metric: 'p99_ratio', bound: 'atMost', limit: 2, unit: 'ratio' },
      ],
      setup: readersCase,
    },
    {
      ...g,
      name: 'writer_commits_with_readers_128',
      critical: true,
      kind: 'threads',
      params: (p) => ({ records: p.records, readers: 128, reader_threads: readerThreads(), puts_per_commit: PUTS_PER_COMMIT, sync: 'full', gets_per_read_txn: READ_TXN_GETS, phase_ms: phaseMs(p, WRITE_PHASE_MS) }),
      targets: [
        { name: 'writer commit p99 with 128 readers ÷ writer alone', metric: 'writer_p99_ratio', bound: 'atMost', limit: 2, unit: 'ratio' },
        { name: 'reader p99 with the writer ÷ without', metric: 'reader_p99_ratio', bound: 'below', limit: 2, unit: 'ratio' },
      ],
      setup: writerCase,
    },
    {
      ...g,
      name: 'begin_read_latency',
      critical: false,
      kind: 'threads',
      params: (p) => ({ records: p.records, call: 'beginRead() + close()', per_repeat: Math.max(1000, Math.round(BEGIN_READS * p.opsScale)), catch_ups: Math.max(50, Math.round(CATCH_UPS * p.opsScale)) }),
      targets: [
        { name: 'beginRead() + close() p99, nothing changed since the last', metric: 'p99_ns', bound: 'below', limit: 5000, unit: 'ns' },
      ],
      setup: beginReadCase,
    },
  ];
}
