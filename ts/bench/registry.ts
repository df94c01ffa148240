// The benchmark catalogue: what a benchmark is, the size profiles, and the
// list of every benchmark of every suite (ts/bench/suites/*.ts define them).
// A benchmark whose subsystem is not built yet is registered as pending with
// its reason: it is listed, never run, never faked.

import type { Kernels } from '../native/kernels.js';
import type { CommitCounters, WriteDelta } from './amplification.js';
import type { DbConfig, ImplName, ProfileName, RuleOutcome, Suite, SummaryEntry, TargetOutcome } from './schema.js';
import { kernelBenchmarks } from './suites/kernels.js';
import { logBenchmarks } from './suites/log.js';
import { btreeBenchmarks } from './suites/btree.js';
import { macroBenchmarks } from './suites/macro.js';
import { cartridgeBenchmarks } from './suites/cartridge.js';
import { replicationBenchmarks } from './suites/replication.js';
import { queueBenchmarks, queueDoneBenchmarks } from './suites/queue.js';
import { mvccBenchmarks } from './suites/mvcc.js';
import { pagerBenchmarks } from './suites/pager.js';
import { hardeningBenchmarks } from './suites/hardening.js';
import { concurrencyBenchmarks } from './suites/concurrency.js';
import { writeBenchmarks } from './suites/write.js';
import { reopenBenchmarks } from './suites/reopen.js';

/** Sizes of a profile. `ci` fits a 2-core shared machine in minutes; `dev_nvme` is the full size. */
export interface Profile {
  name: ProfileName;
  /** Records of the B-tree benchmarks (the issue's "1m" at dev_nvme). */
  records: number;
  /** Multiplies the measured ops of every benchmark. */
  opsScale: number;
}

export const PROFILES: Record<Exclude<ProfileName, 'custom'>, Profile> = {
  ci: { name: 'ci', records: 100_000, opsScale: 1 },
  dev_nvme: { name: 'dev_nvme', records: 1_000_000, opsScale: 4 },
};

/** `custom`: the ci sizes unless overridden (bench run --records N --ops-scale X). */
export function profileFor(name: ProfileName, overrides: { records?: number; opsScale?: number } = {}): Profile {
  const base = name === 'dev_nvme' ? PROFILES.dev_nvme : PROFILES.ci;
  return { name, records: overrides.records ?? base.records, opsScale: overrides.opsScale ?? base.opsScale };
}

/** What a benchmark gets to set itself up. */
export interface BenchContext {
  profile: Profile;
  seed: number;
  /** A fresh directory for the benchmark's files, removed afterwards. */
  dir: string;
  impl: ImplName;
  /** The kernel set of `impl` (kernel benchmarks call it directly). */
  kernels: Kernels;
}

/** Cumulative I/O counters of whatever the benchmark drives; the runner takes deltas. */
export interface IoCounters {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  fsyncs: number;
  fdatasyncs: number;
  opens: number;
  closes: number;
}

export function zeroIo(): IoCounters {
  return { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, fsyncs: 0, fdatasyncs: 0, opens: 0, closes: 0 };
}

/**
 * What a benchmark that measures itself (BenchCase.run) reports for one
 * repeat: the same figures as the runner's own loop, for work done elsewhere
 * (worker threads), with its op count.
 */
export interface SelfMeasured {
  ops: number;
  durationNs: number;
  /** Latency of each op (ns). */
  samples: Float64Array;
  errors: number;
  firstError?: unknown;
  jsBytes: number;
  externalBytes: number;
  gcCount: number;
  io: IoCounters;
  extra?: Record<string, number>;
  /** Commits over the repeat, with their I/O and device bytes (results.write). */
  write?: WriteDelta;
  notes?: string[];
}

/**
 * A benchmark ready to measure: the runner calls op(i) `ops` times per
 * repeat, or, for a benchmark whose work runs in worker threads, run() once.
 */
export interface BenchCase {
  /** Measured ops per repeat, or 'auto': calibrated to about 100 ms per repeat (unused with run). */
  ops: number | 'auto';
  /** Ops per timed latency sample (default 1; 0 = calibrated to ~2 µs a sample); latency figures are per op. */
  batch?: number;
  threads?: number;
  db?: DbConfig | null;
  /** Default warm-up ops when the command line gives none. */
  warmupOps?: number;
  /** Before each repeat's warm-up (e.g. a fresh copy of the database). */
  beforeRepeat?(repeat: number): void;
  /** Replaces the default warm-up (op() called warm-up-ops times) when ops would change the measured state. */
  warmup?(ops: number): void;
  /** Right before the measured loop, after the warm-up (e.g. remember a counter). */
  beforeMeasure?(): void;
  /** One measured op (required unless run is given). */
  op?(i: number): void;
  /**
   * Measures one repeat itself instead of the runner's loop (after warm-up);
   * allocations and I/O are the benchmark's to count, in the threads that did the work.
   */
  run?(repeat: number): SelfMeasured;
  /** After each repeat's measurement, outside the timing: checks (throwing counts as an error). */
  afterRepeat?(repeat: number): void;
  /** Cumulative counters (from db.stats().io + logIo and the benchmark's own open/close count). */
  io?(): IoCounters;
  /**
   * Cumulative commits and the bytes they put, for a benchmark whose ops
   * commit: the runner then records results.write (bytes and syncs per
   * commit, write amplification, device bytes from /proc/self/io) over the
   * measured loop, from these and io().
   */
  commits?(): CommitCounters;
  /** Per-repeat figures beyond the standard ones (records/s …). */
  extra?(measuredOps: number, durationNs: number, io: IoCounters): Record<string, number>;
  notes?: string[];
  teardown?(): void;
}

export interface Benchmark {
  suite: Suite;
  group: string;
  name: string;
  critical: boolean;
  /**
   * 'kernel': measured for each implementation in this process; 'db': the
   * process's implementation; 'threads': for each implementation in this
   * process, the work in worker threads that choose their kernels themselves.
   */
  kind: 'db' | 'kernel' | 'threads';
  /** Parameters at a profile, shown by `bench list` and recorded in each result. */
  params(p: Profile): Record<string, string | number | boolean>;
  /** Why it cannot run yet; pending benchmarks are listed, never run. */
  pending?: string;
  setup?(ctx: BenchContext): BenchCase;
  /** Performance goals judged on the summary (met or not, reported; they never fail a run). */
  targets?: Target[];
}

/**
 * A performance goal of one benchmark: a figure of its summary entry (the
 * median over repeats) against a bound. Machines differ (cores, disk), so a
 * target is reported as met or not with the figure, never enforced.
 */
export interface Target {
  /** The goal in words, e.g. "aggregate ops/s ÷ single-thread ops/s". */
  name: string;
  /** A key of the entry's extra medians, or one of its own figures (p50_ns, p99_ns, ops_per_sec). */
  metric: string;
  /** Met when the figure is >= (at least), <= (at most) or < (below) the bound. */
  bound: 'atLeast' | 'atMost' | 'below';
  limit: number;
  /** How figure and bound print: 1.82x, 4.20 µs, or 33,000/s. */
  unit: 'ratio' | 'ns' | 'per_sec';
}

/** A relation between benchmarks checked after a run (e.g. batching monotonicity). */
export interface Rule {
  name: string;
  check(entries: ReadonlyMap<string, SummaryEntry>): RuleOutcome[];
}

/** `<suite>/<group>/<name>`. */
export function benchId(b: Pick<Benchmark, 'suite' | 'group' | 'name'>): string {
  return `${b.suite}/${b.group}/${b.name}`;
}

/** The id of one benchmark's results in one implementation: `<suite>/<group>/<name>.<impl>`. */
export function resultId(b: Pick<Benchmark, 'suite' | 'group' | 'name'>, impl: ImplName): string {
  return `${benchId(b)}.${impl}`;
}

export function allBenchmarks(): Benchmark[] {
  return [
    ...pagerBenchmarks(),
    ...btreeBenchmarks(),
    ...mvccBenchmarks(),
    ...logBenchmarks(),
    ...writeBenchmarks(),
    ...reopenBenchmarks(),
    ...kernelBenchmarks(),
    ...macroBenchmarks(),
    ...queueBenchmarks(),
    ...queueDoneBenchmarks(),
    ...cartridgeBenchmarks(),
    ...replicationBenchmarks(),
    ...hardeningBenchmarks(),
    ...concurrencyBenchmarks(),
  ];
}

const BOUND_SIGN = { atLeast: '>=', atMost: '<=', below: '<' } as const;

/** A figure as targets print it. */
export function formatTargetValue(v: number, unit: Target['unit']): string {
  if (unit === 'ratio') return `${v.toFixed(2)}x`;
  if (unit === 'per_sec') return `${Math.round(v).toLocaleString('en-US')}/s`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(2)} µs`;
  return `${v.toFixed(0)} ns`;
}

/** Every target of the benchmarks in `entries`, judged on their medians. */
export function checkTargets(entries: readonly SummaryEntry[]): TargetOutcome[] {
  const byId = new Map(allBenchmarks().map((b) => [benchId(b), b]));
  const out: TargetOutcome[] = [];
  for (const e of entries) {
    for (const t of byId.get(`${e.suite}/${e.group}/${e.name}`)?.targets ?? []) {
      const own = (e as unknown as Record<string, unknown>)[t.metric];
      const v = e.extra?.[t.metric] ?? (typeof own === 'number' ? own : undefined);
      const value = v !== undefined && Number.isFinite(v) ? v : null;
      const met = value !== null && (t.bound === 'atLeast' ? value >= t.limit : t.bound === 'atMost' ? value <= t.limit : value < t.limit);
      out.push({ id: e.id, target: t.name, metric: t.metric, value, limit: `${BOUND_SIGN[t.bound]} ${formatTargetValue(t.limit, t.unit)}`, unit: t.unit, met });
    }
  }
  return out;
}

export { btreeRules as rules } from './suites/btree.js';

/** Glob over benchmark ids: `*` any run of characters but '/', `**` anything, `?` one character. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * The benchmarks of `suite` (all suites when undefined) whose id matches
 * `filter`. A filter without '/' matches the name or `group/name`; with '/' the
 * whole `suite/group/name`; a filter without glob characters matches a substring.
 */
export function selectBenchmarks(suite: string | undefined, filter: string | undefined): Benchmark[] {
  let list = allBenchmarks().filter((b) => suite === undefined || b.suite === suite);
  if (filter !== undefined) {
    const hasGlob = /[*?]/.test(filter);
    const re = globToRegExp(filter);
    list = list.filter((b) => {
      const id = benchId(b);
      const candidates = [id, `${b.group}/${b.name}`, b.name];
      return hasGlob ? candidates.some((c) => re.test(c)) : id.includes(filter);
    });
  }
  return list;
}

export function formatParams(params: Record<string, string | number | boolean>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${typeof v === 'number' && v >= 10_000 && Number.isInteger(v) ? humanCount(v) : v}`)
    .join(' ');
}

function humanCount(n: number): string {
  if (n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

/** `bench list`: one line per benchmark, grouped by suite, with counts. */
export function listLines(profile: Profile): string[] {
  const out: string[] = [];
  const all = allBenchmarks();
  for (const suite of ['micro', 'macro', 'concurrency', 'hardening'] as const) {
    const list = all.filter((b) => b.suite === suite);
    const pending = list.filter((b) => b.pending).length;
    out.push(`${suite} (${list.length} benchmarks${pending ? `, ${pending} pending` : ''}; sizes at profile ${profile.name})`);
    for (const b of list) {
      const mark = b.critical ? ' (CRITICAL)' : '';
      const impls = b.kind === 'db' ? '' : ' [native+fallback]';
      const p = formatParams(b.params(profile));
      const t = (b.targets ?? []).map((x) => `${x.metric} ${BOUND_SIGN[x.bound]} ${formatTargetValue(x.limit, x.unit)}`).join(', ');
      out.push(`  ${b.group}/${b.name}${mark}${impls}${p ? `  ${p}` : ''}${t ? `  targets: ${t}` : ''}${b.pending ? `  PENDING: ${b.pending}` : ''}`);
    }
  }
  out.push(`${all.length} benchmarks, ${all.filter((b) => b.critical).length} critical, ${all.filter((b) => b.pending).length} pending`);
  return out;
}
