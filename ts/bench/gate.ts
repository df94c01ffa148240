// The two gates. gate(): current results against a baseline, on critical
// benchmarks only, with the thresholds of the issue; unstable benchmarks
// (CV > 10% on either side) are reported and never fail the gate; an entry of
// bench/allow_regression.json with a justification lets a named benchmark
// regress. implGate(): every kernel in both implementations in this process,
// paired and alternating, native must beat the fallback (CRC-32C of 16 KiB by 10x).

import * as fs from 'node:fs';
import { RecordBuilder } from '../log/record.js';
import { fallbackKernels, nativeKernels, nativeUnavailableReason, type Kernels } from '../native/kernels.js';
import { compareEntries, type ComparedRow } from './compare.js';
import { globToRegExp } from './registry.js';
import type { SummaryEntry } from './schema.js';
import { freshFactory, kernelFixtures, KERNEL_BENCHES } from './suites/kernels.js';

export const THRESHOLDS = {
  /** Throughput may fall by at most 5%. */
  throughputDrop: 0.05,
  /** p99 latency may rise by at most 10%. */
  p99Rise: 0.1,
  /** Allocated bytes per op may rise by at most 5%. */
  allocRise: 0.05,
  /** fsyncs + fdatasyncs per op may not rise at all. */
  fsyncRise: 0,
} as const;

export type Metric = 'throughput' | 'p99' | 'alloc_per_op' | 'fsyncs_per_op' | 'native_vs_fallback';

export interface AllowEntry {
  /** A benchmark id (`micro/btree/point_get_hot_1m`, optionally `.native`), or a glob over ids. */
  benchmark: string;
  justification: string;
  /**
   * Only these metrics may regress (all baseline metrics when absent).
   * 'native_vs_fallback' waives the native gate for a kernel benchmark and must be named explicitly.
   */
  metrics?: Metric[];
}

export interface Finding {
  id: string;
  metric: Metric;
  change: number;
  limit: string;
  status: 'regression' | 'allowed' | 'unstable';
  justification?: string;
}

export interface GateOutcome {
  passed: boolean;
  findings: Finding[];
  /** Critical benchmarks compared (stable or not). */
  checked: number;
  unstable: string[];
  /** Critical benchmarks of the baseline missing from the current run. */
  missing: string[];
}

export const DEFAULT_ALLOW_FILE = 'bench/allow_regression.json';

/** Reads the allow list; an entry without a justification is an error. Missing file: empty. */
export function loadAllowList(file: string): AllowEntry[] {
  if (!fs.existsSync(file)) return [];
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { entries?: unknown };
  if (!Array.isArray(doc.entries)) throw new Error(`${file}: expected { "entries": [...] }`);
  return doc.entries.map((e, i) => {
    const x = e as Partial<AllowEntry>;
    if (typeof x.benchmark !== 'string' || x.benchmark === '') throw new Error(`${file}: entries[${i}].benchmark: must be a benchmark id`);
    if (typeof x.justification !== 'string' || x.justification.trim().length < 10) throw new Error(`${file}: entries[${i}].justification: must say why (10 characters at least)`);
    return x as AllowEntry;
  });
}

export function allowFor(id: string, metric: Metric, allow: readonly AllowEntry[]): AllowEntry | undefined {
  const base = id.replace(/\.(native|fallback)$/, '');
  return allow.find((a) => {
    const re = globToRegExp(a.benchmark);
    const hit = a.benchmark === id || a.benchmark === base || re.test(id) || re.test(base);
    const named = a.metrics === undefined ? metric !== 'native_vs_fallback' : a.metrics.includes(metric);
    return hit && named;
  });
}

function regressions(r: ComparedRow): { metric: Metric; change: number; limit: string }[] {
  const out: { metric: Metric; change: number; limit: string }[] = [];
  if (r.throughput < -THRESHOLDS.throughputDrop) out.push({ metric: 'throughput', change: r.throughput, limit: '-5%' });
  if (r.p99 > THRESHOLDS.p99Rise) out.push({ metric: 'p99', change: r.p99, limit: '+10%' });
  if (r.allocPerOp > THRESHOLDS.allocRise) out.push({ metric: 'alloc_per_op', change: r.allocPerOp, limit: '+5%' });
  if (r.current.fsyncs_per_op > r.base.fsyncs_per_op + 1e-12) out.push({ metric: 'fsyncs_per_op', change: r.fsyncsPerOp, limit: 'any increase' });
  return out;
}

export function gate(baseline: readonly SummaryEntry[], current: readonly SummaryEntry[], allow: readonly AllowEntry[]): GateOutcome {
  const critical = baseline.filter((e) => e.critical);
  const cmp = compareEntries(critical, current);
  const findings: Finding[] = [];
  const unstable: string[] = [];
  for (const r of cmp.rows) {
    const regs = regressions(r);
    if (r.unstable) {
      unstable.push(r.id);
      for (const g of regs) findings.push({ id: r.id, ...g, status: 'unstable' });
      continue;
    }
    for (const g of regs) {
      const a = allowFor(r.id, g.metric, allow);
      findings.push(a ? { id: r.id, ...g, status: 'allowed', justification: a.justification } : { id: r.id, ...g, status: 'regression' });
    }
  }
  return {
    passed: !findings.some((f) => f.status === 'regression'),
    findings,
    checked: cmp.rows.length,
    unstable,
    missing: cmp.onlyInBase,
  };
}

// ---- native vs fallback ------------------------------------------------------------

export interface KernelRatio {
  name: string;
  kernels: string[];
  nativeNs: number;
  fallbackNs: number;
  /** fallback ÷ native (> 1: native is faster). */
  ratio: number;
  minRatio: number;
  ok: boolean;
  /** Measured again after a first failure (a failure must repeat to count). */
  confirmed: boolean;
  /** A failure waived by bench/allow_regression.json (metric 'native_vs_fallback'), with why. */
  allowed?: string;
}

export interface ImplGateOutcome {
  passed: boolean;
  ratios: KernelRatio[];
  /** Kernels no benchmark exercises: a new kernel needs one. */
  uncovered: string[];
  reason?: string;
}

function calls(op: () => unknown, targetNs: number): number {
  for (let n = 1; ; n *= 2) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) op();
    const ns = Number(process.hrtime.bigint() - t0);
    if (ns > targetNs / 8 || n >= 1 << 24) return Math.max(1, Math.ceil((n * targetNs) / Math.max(ns, 1)));
  }
}

function timed(op: () => unknown, n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) op();
  return Number(process.hrtime.bigint() - t0) / n;
}

/**
 * ns/op of native and fallback: the fastest of `rounds` alternating rounds of
 * ~`roundNs` each. Noise on a shared machine (preemption, a neighbour's cache
 * traffic) only ever adds time, so the fastest round is the estimate least
 * disturbed by it; alternating makes both contenders sample the same moments.
 */
function paired(kb: (typeof KERNEL_BENCHES)[number], native: Kernels, rounds: number, roundNs: number): [number, number] {
  const f = kernelFixtures();
  const ops = [freshFactory(kb.factory)(native, f, RecordBuilder), freshFactory(kb.factory)(fallbackKernels, f, RecordBuilder)];
  const n = ops.map((op) => calls(op, roundNs));
  const samples: number[][] = [[], []];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const j of order) samples[j]!.push(timed(ops[j]!, n[j]!));
  }
  return [Math.min(...samples[0]!), Math.min(...samples[1]!)];
}

export interface ImplGateOptions {
  /** Entries naming metric 'native_vs_fallback' waive a kernel's failure (reported, not hidden). */
  allow?: readonly AllowEntry[];
  rounds?: number;
  roundNs?: number;
  /** Per kernel as it is measured. */
  onRatio?(r: KernelRatio): void;
}

export function implGate(o: ImplGateOptions = {}): ImplGateOutcome {
  const all = Object.keys(fallbackKernels);
  const covered = new Set(KERNEL_BENCHES.flatMap((k) => k.kernels));
  const uncovered = all.filter((k) => !covered.has(k as keyof Kernels));
  if (nativeKernels === null) return { passed: false, ratios: [], uncovered, reason: `native kernels unavailable: ${nativeUnavailableReason}` };
  const rounds = o.rounds ?? 25;
  const roundNs = o.roundNs ?? 5_000_000;
  const ratios: KernelRatio[] = [];
  for (const kb of KERNEL_BENCHES) {
    const minRatio = kb.minRatio ?? 1;
    const verdict = (nat: number, fb: number): boolean => (minRatio > 1 ? fb / nat >= minRatio : fb > nat);
    let [nat, fb] = paired(kb, nativeKernels, rounds, roundNs);
    let confirmed = false;
    if (!verdict(nat, fb)) {
      // Noise on a shared machine can flip a close pair once; a real regression repeats.
      [nat, fb] = paired(kb, nativeKernels, rounds * 2, roundNs);
      confirmed = true;
    }
    const r: KernelRatio = { name: kb.name, kernels: kb.kernels, nativeNs: nat, fallbackNs: fb, ratio: fb / nat, minRatio, ok: verdict(nat, fb), confirmed };
    const waiver = r.ok ? undefined : allowFor(`micro/kernels/${kb.name}`, 'native_vs_fallback', o.allow ?? []);
    if (waiver) r.allowed = waiver.justification;
    ratios.push(r);
    o.onRatio?.(r);
  }
  return { passed: uncovered.length === 0 && ratios.every((r) => r.ok || r.allowed !== undefined), ratios, uncovered };
}
