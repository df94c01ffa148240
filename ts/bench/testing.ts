// Test helpers of the harness: a valid result to mutate, and a results tree
// with chosen figures (used by ts/bench/*.test.ts; not part of the CLI).

import { writeFigures } from './amplification.js';
import { zeroIo } from './registry.js';
import type { BenchResult, ImplName } from './schema.js';
import { resultFile } from './runner.js';
import { writeResult } from './schema.js';

export function sampleResult(): BenchResult {
  return {
    schema_version: 1,
    bench: { suite: 'micro', group: 'btree', name: 'point_get_hot_1m', critical: true },
    timestamp: '2025-01-02T03:04:05.678Z',
    repeat: { index: 0, count: 5 },
    profile: { name: 'ci', cpu_model: 'Test CPU', cores: 2, ram_bytes: 8 * 2 ** 30, os: 'linux 6.1 (Linux)', arch: 'x64', fs_type: 'ext4' },
    build: { node_version: 'v20.0.0', rust_version: 'rustc 1.80.0', implementation: 'native', mode: 'release' },
    git: { sha: 'a'.repeat(40), branch: 'main', dirty: false },
    config: {
      seed: 42,
      warmup_ops: 100,
      warmup_ns: 0,
      measured_ops: 1000,
      threads: 1,
      batch: 1,
      db: { page_size: 16384, checksum: 'crc32c', sync_mode: 'full', mmap: false },
      params: { records: 100000 },
    },
    results: {
      ops_total: 1000,
      duration_ns: 1e6,
      ops_per_sec: 1e6,
      latency_ns: { p50: 900, p95: 1500, p99: 2000, max: 5000 },
      bytes: { read: 0, written: 0 },
      io: { fsync: 0, fdatasync: 0, open: 0, close: 0 },
      alloc: { count: null, bytes: 100_000, bytes_per_op: 100, js_heap_bytes: 100_000, external_bytes: 0, gc_count: 0 },
      errors_total: 0,
      notes: [],
    },
  };
}

export interface Figures {
  name: string;
  group?: string;
  critical?: boolean;
  impl?: ImplName;
  /** ops/s of each repeat (their spread sets the CV). */
  ops: number[];
  p99?: number;
  allocPerOp?: number;
  fsyncs?: number;
  /** Bytes the database wrote per commit: gives each repeat write figures (one commit per op). */
  dbBytesPerCommit?: number;
}

/** Writes one result file per repeat of each benchmark under `dir`. */
export function writeTree(dir: string, figures: Figures[]): void {
  for (const f of figures) {
    f.ops.forEach((ops, i) => {
      const r = sampleResult();
      r.bench = { suite: 'micro', group: f.group ?? 'btree', name: f.name, critical: f.critical ?? true };
      r.build.implementation = f.impl ?? 'native';
      r.repeat = { index: i, count: f.ops.length };
      r.results.ops_per_sec = ops;
      r.results.duration_ns = (r.results.ops_total / ops) * 1e9;
      r.results.latency_ns.p99 = f.p99 ?? 2000;
      r.results.alloc.bytes_per_op = f.allocPerOp ?? 100;
      r.results.io.fdatasync = f.fsyncs ?? 0;
      if (f.dbBytesPerCommit !== undefined) {
        const commits = r.results.ops_total;
        r.results.write = writeFigures({
          commits,
          committedBytes: 100 * commits,
          io: { ...zeroIo(), bytesWritten: f.dbBytesPerCommit * commits, fdatasyncs: commits },
          deviceBytes: null,
          deviceSource: 'not measured (test)',
        });
      }
      writeResult(resultFile(dir, r.bench, r.build.implementation, i), r);
    });
  }
}
