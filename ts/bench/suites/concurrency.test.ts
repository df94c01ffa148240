// The concurrency suite end to end at a tiny size: every configuration runs in
// worker threads (the built dist/ worker script), for each implementation this
// process has, and every figure the targets need is in the results.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nativeKernels } from '../../native/kernels.js';
import { ensureBuilt } from '../../testing/build.js';
import { profileFor } from '../registry.js';
import { discoverResults, runBenchmarks } from '../runner.js';
import { readResult } from '../schema.js';
import { combine, spread } from './concurrency.js';
import type { LoopReport } from './concurrency_worker.js';

const zero = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, fsyncs: 0, fdatasyncs: 0, opens: 0, closes: 0 };
const report = (ops: number, startNs: number, endNs: number, samples: number[], errors = 0, cpuNs = 0, runqueueNs = 0): LoopReport => ({
  ops, startNs, endNs, samples: Float64Array.from(samples), errors, ...(errors ? { firstError: `e${startNs}` } : {}),
  jsBytes: 10, externalBytes: 1, gcCount: 1, io: { ...zero, reads: ops }, cpuNs, runqueueNs, catchUps: 1,
});

describe('concurrency helpers', () => {
  it('spread: readers over threads as evenly as they go', () => {
    expect(spread(256, 2)).toEqual([128, 128]);
    expect(spread(256, 3)).toEqual([86, 85, 85]);
    expect(spread(128, 4)).toEqual([32, 32, 32, 32]);
  });

  it('combine: ops summed over the span from the first start to the last end; samples, allocations and I/O of every thread', () => {
    const m = combine([report(3, 100, 400, [1, 2, 3]), report(2, 150, 500, [4, 5], 1)]);
    expect(m.ops).toBe(5);
    expect(m.durationNs).toBe(400);
    expect([...m.samples]).toEqual([1, 2, 3, 4, 5]);
    expect(m).toMatchObject({ errors: 1, firstError: 'e150', jsBytes: 20, externalBytes: 2, gcCount: 2 });
    expect(m.io.reads).toBe(5);
    // Shares of each thread's own span on a CPU and waiting for one, averaged; absent when a
    // thread has no figure. Catch-ups summed.
    expect(m.extra).toEqual({ catch_ups: 2 });
    const s = combine([report(1, 0, 100, [1], 0, 100, 0), report(1, 0, 200, [1], 0, 100, 100)]);
    expect(s.extra).toEqual({ cpu_share: 0.75, runqueue_share: 0.25, catch_ups: 2 });
  });
});

describe('the concurrency suite at a tiny size', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-conc-'));
  beforeAll(ensureBuilt, 120_000);
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  it('runs every benchmark in worker threads on each implementation, with the figures its targets need', () => {
    const logs: string[] = [];
    const r = runBenchmarks({ suite: 'concurrency', repeats: 2, warmupNs: 0, warmupOps: 200, seed: 3, profile: profileFor('custom', { records: 2000, opsScale: 0.05 }), out, summary: true, progress: false, log: (l) => logs.push(l) });
    expect(r.failures).toEqual([]);
    const impls = nativeKernels ? ['fallback', 'native'] : ['fallback'];
    const files = discoverResults(out).map((f) => readResult(f));
    expect(files).toHaveLength(3 * 2 * impls.length);
    for (const res of files) {
      expect(res.build.implementation).toBe(impls.find((i) => i === res.build.implementation));
      expect(res.results.errors_total).toBe(0);
      expect(res.results.ops_total).toBeGreaterThan(0);
      expect(res.results.notes.length).toBeGreaterThan(0);
    }
    const of = (name: string) => files.filter((f) => f.bench.name === name);
    for (const f of of('readers_256_point_get_hot')) {
      expect(f.bench.suite).toBe('concurrency');
      expect(Object.keys(f.results.extra!)).toEqual(expect.arrayContaining(['throughput_ratio', 'p99_ratio', 'single_thread_ops_per_sec', 'single_reader_p99_ns']));
      expect(f.config.threads).toBeGreaterThanOrEqual(2);
    }
    for (const f of of('writer_commits_with_readers_128')) {
      expect(Object.keys(f.results.extra!)).toEqual(
        expect.arrayContaining(['writer_p99_ratio', 'reader_p99_ratio', 'writer_unloaded_p99_ns', 'reader_p99_no_writes_ns', 'reader_slow_op_share', 'reader_catch_up_op_share']),
      );
      // The readers learn the writer's commits: at least one catch-up, at most one per commit per reader thread.
      expect(f.results.extra!.reader_catch_ups_per_commit).toBeGreaterThan(0);
      expect(f.results.extra!.reader_catch_ups_per_commit).toBeLessThanOrEqual(f.config.threads! - 1);
      // The writer's figures: one fdatasync per commit (sync 'full'), its checkpoints outside the timing.
      expect(f.results.io.fdatasync + f.results.io.fsync).toBe(f.results.ops_total);
      expect(f.config.db!.sync_mode).toBe('full');
    }
    for (const f of of('begin_read_latency')) expect(f.results.extra!.catch_up_p99_ns).toBeGreaterThan(0);
    const targets = r.summary!.targets!;
    expect(targets).toHaveLength(5 * impls.length);
    for (const t of targets) expect(t.value).not.toBeNull();
  }, 120_000);
});
