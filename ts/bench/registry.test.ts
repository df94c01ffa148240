import { describe, expect, it } from 'vitest';
import { fallbackKernels } from '../native/kernels.js';
import { allBenchmarks, benchId, checkTargets, globToRegExp, listLines, profileFor, selectBenchmarks } from './registry.js';
import type { SummaryEntry } from './schema.js';
import { KERNEL_BENCHES } from './suites/kernels.js';

describe('registry', () => {
  it('has every benchmark of the issue, once', () => {
    const ids = allBenchmarks().map(benchId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of [
      'micro/pager/open_close_empty', 'micro/pager/read_page_random_16k_hot', 'micro/pager/read_page_random_16k_cold',
      'micro/pager/write_new_page_16k_no_sync', 'micro/pager/commit_meta_fsync', 'micro/pager/checksum_verify_16k',
      'micro/btree/build_sequential_insert_1m', 'micro/btree/point_get_hot_1m', 'micro/btree/point_get_cold_1m',
      'micro/btree/point_put_update_10pct_hot_txn1', 'micro/btree/point_put_update_10pct_hot_txn10', 'micro/btree/point_put_update_10pct_hot_txn100',
      'micro/btree/range_scan_1k_rows_hot', 'micro/btree/delete_10pct', 'micro/btree/build_sequential_insert_1m_v0', 'micro/btree/build_sequential_insert_1m_v4k',
      'micro/mvcc/snapshot_open_close', 'micro/mvcc/conflict_detection_basic',
      'concurrency/mvcc/readers_256_point_get_hot', 'concurrency/mvcc/writer_commits_with_readers_128', 'concurrency/mvcc/begin_read_latency',
      'micro/log/append_commit_record', 'micro/log/replay_into_memtable', 'micro/timetravel/open_snapshot_by_txn', 'micro/kernels/crc32c_16k',
      'micro/write/durable_commit_1put', 'micro/write/durable_commit_100put', 'micro/reopen/open_close_populated', 'micro/reopen/recover_1k_commits',
    ]) expect(ids).toContain(id);
  });

  it('the conflict benchmark is pending with a reason and has no code to run', () => {
    const pending = allBenchmarks().filter((b) => b.pending);
    expect(pending.map(benchId)).toContain('micro/mvcc/conflict_detection_basic');
    expect(pending.map(benchId).filter((id) => id.startsWith('concurrency/'))).toEqual([]);
    for (const b of pending) {
      expect(b.pending!.length).toBeGreaterThan(20);
      expect(b.setup).toBeUndefined();
    }
    for (const b of allBenchmarks().filter((x) => !x.pending)) expect(b.setup).toBeTypeOf('function');
  });

  it('every kernel has a benchmark (the native gate covers them all)', () => {
    const covered = new Set(KERNEL_BENCHES.flatMap((k) => k.kernels));
    expect(Object.keys(fallbackKernels).filter((k) => !covered.has(k as never))).toEqual([]);
  });

  it('bench list: one line each, (CRITICAL) marks, parameters at the profile, counts per suite', () => {
    const lines = listLines(profileFor('ci'));
    expect(lines[0]).toMatch(/^micro \(\d+ benchmarks, 1 pending; sizes at profile ci\)$/);
    expect(lines).toContain('  btree/point_get_hot_1m (CRITICAL)  records=100k key_bytes=16 value_bytes=128 access=uniform random');
    expect(lines).toContain('concurrency (3 benchmarks; sizes at profile ci)');
    expect(lines.find((l) => l.includes('readers_256'))).toMatch(/^  mvcc\/readers_256_point_get_hot \(CRITICAL\) \[native\+fallback\]  records=100k readers=256 threads=\d/);
    expect(lines.find((l) => l.includes('conflict_detection'))).toMatch(/PENDING: .*concurrent writers/);
    expect(listLines(profileFor('dev_nvme')).find((l) => l.includes('btree/point_get_hot_1m '))).toMatch(/records=1M/);
    expect(lines.at(-1)).toMatch(/^\d+ benchmarks, \d+ critical, \d+ pending$/);
  });

  it('filters by substring or glob', () => {
    expect(selectBenchmarks('micro', 'kernels/crc32c_16k').map(benchId)).toEqual(['micro/kernels/crc32c_16k']);
    expect(selectBenchmarks(undefined, 'point_put_*').length).toBe(3);
    expect(selectBenchmarks('micro', 'btree/*').every((b) => b.group === 'btree')).toBe(true);
    expect(globToRegExp('micro/**').test('micro/btree/x')).toBe(true);
    expect(globToRegExp('micro/*').test('micro/btree/x')).toBe(false);
  });
});

describe('targets', () => {
  const entry = (name: string, extra?: Record<string, number>, p99 = 4000): SummaryEntry => ({
    id: `concurrency/mvcc/${name}.native`, suite: 'concurrency', group: 'mvcc', name, implementation: 'native', critical: true, repeats: 3,
    ops_per_sec: 1000, p99_ns: p99, alloc_bytes_per_op: 0, fsyncs_per_op: 0, cv: 0, stable: true, errors_total: 0, ...(extra ? { extra } : {}),
  });

  it('judges each target of a benchmark on its medians: extra figures or its own, met or not, a missing figure never met', () => {
    const out = checkTargets([
      entry('readers_256_point_get_hot', { throughput_ratio: 1.69, p99_ratio: 2 }),
      entry('begin_read_latency', undefined, 4999),
      entry('writer_commits_with_readers_128', { writer_p99_ratio: 1.2 }),
    ]);
    const by = (id: string, metric: string) => out.find((t) => t.id.startsWith(`concurrency/mvcc/${id}`) && t.metric === metric)!;
    expect(by('readers_256_point_get_hot', 'throughput_ratio')).toMatchObject({ value: 1.69, limit: '>= 1.70x', met: false });
    expect(by('readers_256_point_get_hot', 'p99_ratio')).toMatchObject({ value: 2, limit: '<= 2.00x', met: true });
    expect(by('begin_read_latency', 'p99_ns')).toMatchObject({ value: 4999, limit: '< 5.00 µs', met: true });
    expect(by('writer_commits_with_readers_128', 'reader_p99_ratio')).toMatchObject({ value: null, met: false });
    expect(out).toHaveLength(5);
    expect(checkTargets([{ ...entry('x'), suite: 'micro', group: 'btree', name: 'point_get_hot_1m', id: 'micro/btree/point_get_hot_1m.native' }])).toEqual([]);
  });
});
