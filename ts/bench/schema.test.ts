import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readResult, SchemaError, validateResult, validateSummary, writeResult, type BenchResult } from './schema.js';
import { sampleResult } from './testing.js';

function problems(mutate: (r: Record<string, any>) => void): string {
  const r = structuredClone(sampleResult()) as Record<string, any>;
  mutate(r);
  try {
    validateResult(r, 'x.json');
  } catch (err) {
    expect(err).toBeInstanceOf(SchemaError);
    return (err as Error).message;
  }
  throw new Error('accepted an invalid result');
}

describe('bench/results.schema.json', () => {
  it('accepts a valid result, with and without optional fields', () => {
    expect(() => validateResult(sampleResult())).not.toThrow();
    const r = sampleResult();
    r.config.db = null;
    r.results.extra = { write_amplification: 2.5 };
    r.git = { sha: 'unknown', branch: 'unknown', dirty: null };
    r.profile.fs_type = 'unknown';
    expect(() => validateResult(r)).not.toThrow();
    r.bench.suite = 'concurrency';
    expect(() => validateResult(r)).not.toThrow();
  });

  it('accepts write figures, device ones null where unavailable, and rejects a malformed one', () => {
    const w = { commits: 10, committed_bytes: 1440, db_bytes_written: 40960, device_bytes_written: 81920, device_source: '/proc/self/io', fdatasyncs: 10, fsyncs: 0, committed_bytes_per_commit: 144, db_bytes_per_commit: 4096, device_bytes_per_commit: 8192, fdatasyncs_per_commit: 1, fsyncs_per_commit: 0, db_write_amplification: 28.4, device_write_amplification: 56.9 };
    const r = sampleResult();
    r.results.write = w;
    expect(() => validateResult(r)).not.toThrow();
    r.results.write = { ...w, device_bytes_written: null, device_bytes_per_commit: null, device_write_amplification: null, device_source: 'unavailable: no /proc/self/io on darwin' };
    expect(() => validateResult(r)).not.toThrow();
    expect(problems((x) => (x.results.write = { ...w, commits: 0 }))).toMatch(/results\.write\.commits: must be >= 1/);
    expect(problems((x) => (x.results.write = { ...w, device_source: undefined }))).toMatch(/results\.write\.device_source: is missing/);
    expect(problems((x) => (x.results.write = { ...w, amplification: 3 }))).toMatch(/results\.write\.amplification: is not a known field/);
  });

  it.each<[string, (r: Record<string, any>) => void, RegExp]>([
    ['a missing required field', (r) => delete r.results.latency_ns.p99, /results\.latency_ns\.p99: is missing/],
    ['a field of the wrong type', (r) => (r.results.ops_total = '12'), /results\.ops_total: must be integer/],
    ['a negative count', (r) => (r.results.io.fdatasync = -1), /results\.io\.fdatasync: must be >= 0/],
    ['an unknown field', (r) => (r.results.speed = 1), /results\.speed: is not a known field/],
    ['a bad enum value', (r) => (r.build.implementation = 'wasm'), /build\.implementation: must be equal to one of the allowed values \(native, fallback\)/],
    ['a bad profile name', (r) => (r.profile.name = 'laptop'), /profile\.name: must be equal to one of the allowed values/],
    ['a malformed timestamp', (r) => (r.timestamp = 'yesterday'), /timestamp: must match pattern/],
    ['a malformed git sha', (r) => (r.git.sha = 'abc'), /git\.sha: must match pattern/],
    ['zero ops', (r) => (r.results.ops_total = 0), /results\.ops_total: must be >= 1/],
    ['a wrong schema version', (r) => (r.schema_version = 2), /schema_version: must be equal to constant/],
    ['a bad benchmark name', (r) => (r.bench.name = 'Has Spaces'), /bench\.name: must match pattern/],
    ['a db config without page size', (r) => delete r.config.db.page_size, /config\.db/],
  ])('rejects %s, naming the field', (_what, mutate, message) => {
    expect(problems(mutate)).toMatch(message);
  });

  it('writeResult refuses to write an invalid file; readResult rejects non-JSON and invalid files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-schema-'));
    try {
      const bad = sampleResult() as BenchResult;
      (bad.results as any).ops_per_sec = -5;
      const file = path.join(dir, 'bad.json');
      expect(() => writeResult(file, bad)).toThrow(/results\.ops_per_sec/);
      expect(fs.existsSync(file)).toBe(false);
      fs.writeFileSync(file, '{ not json');
      expect(() => readResult(file)).toThrow(/bad\.json: not a valid benchmark file: not JSON/);
      fs.writeFileSync(file, JSON.stringify({ ...sampleResult(), repeat: { index: 0 } }));
      expect(() => readResult(file)).toThrow(/repeat\.count: is missing/);
      const good = path.join(dir, 'good.json');
      writeResult(good, sampleResult());
      expect(readResult(good).bench.name).toBe('point_get_hot_1m');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validates summary.json too', () => {
    const r = sampleResult();
    const summary = { schema_version: 1, timestamp: r.timestamp, profile: r.profile, build: r.build, git: r.git, benchmarks: [], rules: [] };
    expect(() => validateSummary(summary)).not.toThrow();
    expect(() => validateSummary({ ...summary, rules: [{ rule: 'x', ok: 'yes', detail: '' }] })).toThrow(/rules\.0\.ok: must be boolean/);
    // Optional since the concurrency suite: extra medians per entry, and targets.
    const entry = { id: 'concurrency/mvcc/x.native', suite: 'concurrency', group: 'mvcc', name: 'x', implementation: 'native', critical: false, repeats: 1, ops_per_sec: 1, p99_ns: 1, alloc_bytes_per_op: 0, fsyncs_per_op: 0, cv: 0, stable: true, errors_total: 0 };
    const target = { id: entry.id, target: 't', metric: 'throughput_ratio', value: 1.8, limit: '>= 1.70x', unit: 'ratio', met: true };
    expect(() => validateSummary({ ...summary, benchmarks: [{ ...entry, extra: { throughput_ratio: 1.8 } }], targets: [target, { ...target, value: null, met: false }] })).not.toThrow();
    expect(() => validateSummary({ ...summary, targets: [{ ...target, met: 'yes' }] })).toThrow(/targets\.0\.met: must be boolean/);
    const write = { committed_bytes_per_commit: 144, db_bytes_per_commit: 50_000, device_bytes_per_commit: null, fdatasyncs_per_commit: 1, fsyncs_per_commit: 0, db_write_amplification: 347, device_write_amplification: null };
    expect(() => validateSummary({ ...summary, benchmarks: [{ ...entry, write }] })).not.toThrow();
    expect(() => validateSummary({ ...summary, benchmarks: [{ ...entry, write: { ...write, fdatasyncs_per_commit: -1 } }] })).toThrow(/write\.fdatasyncs_per_commit: must be >= 0/);
  });
});
