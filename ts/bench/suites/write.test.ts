// The write and reopen benchmarks at a tiny size: each runs without error,
// checks itself, and the write cases carry results.write.

import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { implementation } from '../../native/kernels.js';
import { profileFor } from '../registry.js';
import { resultFile, runBenchmarks } from '../runner.js';
import { readResult } from '../schema.js';

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-write-'));
afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

const run = (filter: string) =>
  runBenchmarks({ filter, repeats: 1, warmupNs: 0, seed: 3, profile: profileFor('custom', { records: 2000, opsScale: 0.05 }), out, summary: false, progress: false, log: () => {} });
const result = (group: string, name: string) => readResult(resultFile(out, { suite: 'micro', group, name }, implementation, 0)).results;

describe('micro/write and micro/reopen', () => {
  it('durable commits on a populated database: one fdatasync each at least, write figures per commit', () => {
    expect(run('micro/write/*').failures).toEqual([]);
    for (const [name, puts] of [['durable_commit_1put', 1], ['durable_commit_100put', 100]] as const) {
      const r = result('write', name);
      expect(r.write).toMatchObject({ commits: r.ops_total, committed_bytes_per_commit: puts * 144 });
      expect(r.write!.fdatasyncs_per_commit).toBeGreaterThanOrEqual(1);
      // Every commit rewrites at least one 16 KiB page image, besides its log record.
      expect(r.write!.db_bytes_per_commit).toBeGreaterThan(puts * 144);
      expect(r.write!.db_write_amplification).toBeGreaterThan(1);
    }
  }, 60_000);

  it('reopen after a clean close and recovery after a crash', () => {
    expect(run('micro/reopen/*').failures).toEqual([]);
    expect(result('reopen', 'open_close_populated').errors_total).toBe(0);
    const rec = result('reopen', 'recover_1k_commits');
    expect(rec.errors_total).toBe(0);
    expect(rec.extra!.log_bytes_since_checkpoint).toBeGreaterThan(1000 * 144);
    expect(rec.extra!.commits_replayed_per_sec).toBeGreaterThan(0);
  }, 60_000);
});
