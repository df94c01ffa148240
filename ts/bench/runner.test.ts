import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { implementation } from '../native/kernels.js';
import { writeFigures } from './amplification.js';
import { profileFor, zeroIo, type BenchCase } from './registry.js';
import { discoverResults, harnessBytesPerSample, measure, resultFile, runBenchmarks, warmUp, type RunOptions } from './runner.js';
import { readResult, validateSummary } from './schema.js';

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-run-'));
afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

const options = (o: Partial<RunOptions>): RunOptions => ({
  repeats: 2,
  warmupNs: 0,
  warmupOps: 10,
  seed: 7,
  profile: profileFor('custom', { records: 2000, opsScale: 0.05 }),
  out,
  summary: true,
  progress: false,
  log: () => {},
  ...o,
});

describe('runner', () => {
  it('writes one validated file per repeat under stable names, and summary.json', () => {
    const r = runBenchmarks(options({ filter: 'micro/pager/checksum_verify_16k' }));
    expect(r.failures).toEqual([]);
    const names = discoverResults(out).map((f) => path.relative(out, f));
    expect(names).toEqual([0, 1].map((i) => path.join('micro', 'pager', `checksum_verify_16k.${implementation}_r00${i}.json`)));
    expect(resultFile(out, { suite: 'micro', group: 'pager', name: 'checksum_verify_16k' }, implementation, 1)).toBe(path.join(out, names[1]!));
    const first = readResult(path.join(out, names[0]!));
    expect(first.repeat).toEqual({ index: 0, count: 2 });
    expect(first.config.seed).toBe(7);
    expect(first.profile.name).toBe('custom');
    expect(first.results.ops_total).toBe(2500);
    expect(first.results.errors_total).toBe(0);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    validateSummary(summary);
    expect(summary.benchmarks[0].id).toBe(`micro/pager/checksum_verify_16k.${implementation}`);
    expect(summary.pending.map((p: { id: string }) => p.id)).toContain('micro/mvcc/conflict_detection_basic');
  });

  it('a rerun with fewer repeats leaves no stale repeat files behind', () => {
    runBenchmarks(options({ filter: 'micro/pager/checksum_verify_16k', repeats: 1 }));
    expect(discoverResults(out).map((f) => path.basename(f))).toEqual([`checksum_verify_16k.${implementation}_r000.json`]);
  });

  it('kernel benchmarks run on every available implementation in one process; a database benchmark checks itself', () => {
    const r = runBenchmarks(options({ filter: 'kernels/crc32c_16k', repeats: 1 }));
    expect(r.failures).toEqual([]);
    const impls = discoverResults(path.join(out, 'micro', 'kernels')).map((f) => readResult(f).build.implementation);
    expect(impls).toContain('fallback');
    if (implementation === 'native') expect(impls).toContain('native');
    const c = runBenchmarks(options({ filter: 'micro/pager/commit_meta_fsync', repeats: 1 }));
    expect(c.failures).toEqual([]);
    const res = readResult(resultFile(out, { suite: 'micro', group: 'pager', name: 'commit_meta_fsync' }, implementation, 0)).results;
    expect(res.io.fdatasync + res.io.fsync).toBe(res.ops_total);
  });

  it('a case that commits gets results.write over the measured loop (its warm-up commits not counted), and summary medians', () => {
    const done = { commits: 0, committedBytes: 0 };
    const io = { ...zeroIo() };
    const c: BenchCase = {
      ops: 10,
      op() {
        // A "commit": 144 bytes committed, 4 KiB written, one fdatasync.
        done.commits++;
        done.committedBytes += 144;
        io.bytesWritten += 4096;
        io.fdatasyncs++;
      },
      io: () => ({ ...io }),
      commits: () => done,
    };
    for (let i = 0; i < 5; i++) c.op!(i);
    const m = measure(c, 10, 1);
    expect(m.write).toMatchObject({ commits: 10, committedBytes: 1440 });
    expect(m.write!.io.bytesWritten).toBe(40_960);
    const w = writeFigures(m.write!)!;
    expect(w.db_write_amplification).toBeCloseTo(4096 / 144);
    expect(w.fdatasyncs_per_commit).toBe(1);
    expect(w.device_source === '/proc/self/io' ? typeof w.device_bytes_written : w.device_bytes_written).toBe(w.device_source === '/proc/self/io' ? 'number' : null);
    expect(measure({ ops: 3, op: () => {} }, 3, 1).write).toBeUndefined();

    const r = runBenchmarks(options({ filter: 'micro/pager/commit_meta_fsync', repeats: 2 }));
    expect(r.failures).toEqual([]);
    const res = readResult(resultFile(out, { suite: 'micro', group: 'pager', name: 'commit_meta_fsync' }, implementation, 0)).results;
    expect(res.write).toMatchObject({ commits: res.ops_total, committed_bytes: res.ops_total * 144, fdatasyncs_per_commit: 1, committed_bytes_per_commit: 144 });
    expect(res.write!.db_bytes_written).toBe(res.bytes.written);
    const entry = r.summary!.benchmarks.find((e) => e.name === 'commit_meta_fsync')!;
    expect(entry.write).toMatchObject({ committed_bytes_per_commit: 144, fdatasyncs_per_commit: 1 });
    expect(entry.write!.db_write_amplification).toBeGreaterThan(1);
  });

  it('measures allocations: an op that allocates 1 KiB shows about 1 KiB per op; the loop itself is subtracted', () => {
    const keep: number[][] = [];
    const ops = 2000;
    // A JS array of 126 small integers: about 1 KiB on the JS heap, counted exactly. (A
    // 1 KiB typed array's backing store is external memory, which V8 accounts lazily: on a
    // loaded machine the meter saw about half of it.)
    const m = measure({ ops, op: () => void keep.push(new Array<number>(126).fill(1)) }, ops, 1);
    const perOp = (m.jsBytes - harnessBytesPerSample(1) * m.samples.length + m.externalBytes) / ops;
    expect(perOp).toBeGreaterThan(900);
    expect(perOp).toBeLessThan(1400);
    expect(m.samples.length).toBe(ops);
  });

  it('a failing warm-up is logged and the measurement goes on', () => {
    const lines: string[] = [];
    let calls = 0;
    const c = { ops: 10, op: () => void calls++, warmup: () => { throw new Error('disk full'); } };
    warmUp(c, 5, 0, 'micro/x/y.native', (l) => lines.push(l));
    expect(lines).toEqual(['micro/x/y.native: warm-up failed (disk full); measuring anyway']);
    measure(c, 10, 1);
    expect(calls).toBe(10);
  });
});
