// The shape of benchmark result files and their validation against
// bench/results.schema.json (JSON Schema 2020-12, ajv). Every result is
// validated before it is written and again before it is compared or gated, so
// a hand-edited or foreign file fails with the field that is wrong.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';

export type Suite = 'micro' | 'macro' | 'hardening' | 'concurrency';
export type ProfileName = 'ci' | 'dev_nvme' | 'custom';
export type ImplName = 'native' | 'fallback';

export interface MachineProfile {
  name: ProfileName;
  cpu_model: string;
  cores: number;
  ram_bytes: number;
  os: string;
  arch: string;
  fs_type: string;
}

export interface BuildInfo {
  node_version: string;
  rust_version: string;
  implementation: ImplName;
  mode: 'release' | 'debug' | 'unknown';
  crc32c_backend?: string;
}

export interface GitInfo {
  sha: string;
  branch: string;
  dirty: boolean | null;
}

export interface DbConfig {
  page_size: number;
  checksum: 'crc32c';
  sync_mode: 'full' | 'none';
  mmap: false;
  cache_bytes?: number;
}

export interface BenchResult {
  schema_version: 1;
  bench: { suite: Suite; group: string; name: string; critical: boolean };
  timestamp: string;
  repeat: { index: number; count: number };
  profile: MachineProfile;
  build: BuildInfo;
  git: GitInfo;
  config: {
    seed: number;
    warmup_ops: number;
    warmup_ns: number;
    measured_ops: number;
    threads: number;
    batch?: number;
    db: DbConfig | null;
    params: Record<string, string | number | boolean>;
  };
  results: {
    ops_total: number;
    duration_ns: number;
    ops_per_sec: number;
    latency_ns: { p50: number; p95: number; p99: number; max: number };
    bytes: { read: number; written: number };
    io: { fsync: number; fdatasync: number; open: number; close: number; reads?: number; writes?: number };
    alloc: { count: number | null; bytes: number; bytes_per_op: number; js_heap_bytes: number; external_bytes: number; gc_count: number };
    errors_total: number;
    notes: string[];
    extra?: Record<string, number>;
    /** Of a benchmark whose ops commit (BenchCase.commits): what was written per commit and per committed byte. */
    write?: WriteFigures;
  };
}

/**
 * The write figures of one repeat (ts/bench/amplification.ts). db_*: the
 * database's own counters (data file + log); device_*: /proc/self/io, null
 * where unavailable (device_source says why).
 */
export interface WriteFigures {
  commits: number;
  committed_bytes: number;
  db_bytes_written: number;
  device_bytes_written: number | null;
  device_source: string;
  fdatasyncs: number;
  fsyncs: number;
  committed_bytes_per_commit: number;
  db_bytes_per_commit: number;
  device_bytes_per_commit: number | null;
  fdatasyncs_per_commit: number;
  fsyncs_per_commit: number;
  /** Bytes written ÷ bytes committed; null when nothing was committed (only empty commits). */
  db_write_amplification: number | null;
  device_write_amplification: number | null;
}

/** Medians over repeats of the per-commit write figures (a device figure null unless every repeat has one). */
export type WriteMedians = Pick<
  WriteFigures,
  | 'committed_bytes_per_commit'
  | 'db_bytes_per_commit'
  | 'device_bytes_per_commit'
  | 'fdatasyncs_per_commit'
  | 'fsyncs_per_commit'
  | 'db_write_amplification'
  | 'device_write_amplification'
>;

export interface SummaryEntry {
  id: string;
  suite: Suite;
  group: string;
  name: string;
  implementation: ImplName;
  critical: boolean;
  repeats: number;
  ops_per_sec: number;
  p50_ns?: number;
  p99_ns: number;
  alloc_bytes_per_op: number;
  fsyncs_per_op: number;
  cv: number;
  stable: boolean;
  errors_total: number;
  /** Median over repeats of each results.extra figure every repeat has. */
  extra?: Record<string, number>;
  /** Medians of results.write, when every repeat has it. */
  write?: WriteMedians;
}

export interface RuleOutcome {
  rule: string;
  ok: boolean;
  detail: string;
}

/** A benchmark's target (registry Target) judged on the summary's medians. */
export interface TargetOutcome {
  /** Result id: `<suite>/<group>/<name>.<impl>`. */
  id: string;
  target: string;
  metric: string;
  /** The median figure; null when the results lack it (then not met). */
  value: number | null;
  /** The bound, e.g. ">= 1.70x" or "< 5.00 µs". */
  limit: string;
  /** How value prints: a ratio (1.82x) or nanoseconds. */
  unit: 'ratio' | 'ns' | 'per_sec';
  met: boolean;
}

export interface Summary {
  schema_version: 1;
  timestamp: string;
  profile: MachineProfile;
  build: BuildInfo;
  git: GitInfo;
  benchmarks: SummaryEntry[];
  rules: RuleOutcome[];
  /** Performance targets of the benchmarks run: met or not, reported, never failing a run. */
  targets?: TargetOutcome[];
  pending?: { id: string; reason: string }[];
}

/** bench/results.schema.json: the same relative path from ts/bench/ and dist/bench/. */
export const SCHEMA_URL = new URL('../../bench/results.schema.json', import.meta.url);

/** A file that does not match the schema; the message names each wrong field. */
export class SchemaError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: not a valid benchmark file: ${problems.join('; ')}`);
    this.name = 'SchemaError';
  }
}

interface Validators {
  result: ValidateFunction;
  summary: ValidateFunction;
}

let validators: Validators | null = null;

function load(): Validators {
  if (validators) return validators;
  // ajv ships CommonJS; its 2020-12 build is a separate entry point.
  const require = createRequire(import.meta.url);
  const Ajv2020 = require('ajv/dist/2020.js').default as typeof import('ajv').default;
  const schema = JSON.parse(fs.readFileSync(SCHEMA_URL, 'utf8')) as { $id: string };
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addSchema(schema);
  validators = {
    result: ajv.getSchema(schema.$id)!,
    summary: ajv.getSchema(`${schema.$id}#/$defs/summary`)!,
  };
  return validators;
}

/** "results.latency_ns.p99: must be >= 0" from an ajv error. */
export function describeError(e: ErrorObject): string {
  let field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'required') field = [field, (e.params as { missingProperty: string }).missingProperty].filter(Boolean).join('.');
  if (e.keyword === 'additionalProperties') field = [field, (e.params as { additionalProperty: string }).additionalProperty].filter(Boolean).join('.');
  const what =
    e.keyword === 'required' ? 'is missing' : e.keyword === 'additionalProperties' ? 'is not a known field' : e.keyword === 'enum' ? `${e.message} (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : e.message;
  return `${field || '(root)'}: ${what}`;
}

function check(kind: keyof Validators, value: unknown, file: string): void {
  const v = load()[kind];
  if (v(value)) return;
  // oneOf and $ref chains repeat the same failure; keep each message once.
  const problems = [...new Set((v.errors ?? []).filter((e) => e.keyword !== 'oneOf').map(describeError))];
  throw new SchemaError(file, problems.length > 0 ? problems : ['does not match the schema']);
}

/** Throws SchemaError naming every wrong field unless `value` is a valid result. */
export function validateResult(value: unknown, file = 'result'): asserts value is BenchResult {
  check('result', value, file);
}

export function validateSummary(value: unknown, file = 'summary.json'): asserts value is Summary {
  check('summary', value, file);
}

/** Reads, parses and validates one result file. */
export function readResult(file: string): BenchResult {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SchemaError(file, [`not JSON (${(err as Error).message})`]);
  }
  validateResult(value, file);
  return value;
}

/** Validates `result` and writes it (pretty JSON); never writes an invalid file. */
export function writeResult(file: string, result: BenchResult): void {
  validateResult(result, file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
}

export function writeSummary(file: string, summary: Summary): void {
  validateSummary(summary, file);
  fs.writeFileSync(file, JSON.stringify(summary, null, 2) + '\n');
}
