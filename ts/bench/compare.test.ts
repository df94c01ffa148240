import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compareDirs, comparisonLines } from './compare.js';
import { discoverResults } from './runner.js';
import { sampleResult, writeTree } from './testing.js';
import { writeResult } from './schema.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-cmp-'));
  dirs.push(d);
  return d;
};

describe('compare', () => {
  it('pairs results by benchmark id across directories, whatever their layout', () => {
    const a = tmp();
    writeTree(a, [
      { name: 'point_get_hot_1m', ops: [1000, 1000] },
      { name: 'delete_10pct', ops: [500, 500] },
      { name: 'crc32c_16k', group: 'kernels', impl: 'fallback', ops: [100, 100] },
    ]);
    // The second tree nests its files one level deeper and lacks delete_10pct.
    const b = tmp();
    writeTree(path.join(b, 'nightly', 'run-7'), [
      { name: 'point_get_hot_1m', ops: [1100, 1100] },
      { name: 'crc32c_16k', group: 'kernels', impl: 'fallback', ops: [100, 100] },
      { name: 'crc32c_16k', group: 'kernels', impl: 'native', ops: [1500, 1500] },
    ]);
    const c = compareDirs(a, b);
    expect(c.rows.map((r) => r.id)).toEqual(['micro/btree/point_get_hot_1m.native', 'micro/kernels/crc32c_16k.fallback']);
    expect(c.rows[0]!.throughput).toBeCloseTo(0.1, 12);
    expect(c.onlyInBase).toEqual(['micro/btree/delete_10pct.native']);
    expect(c.onlyInCurrent).toEqual(['micro/kernels/crc32c_16k.native']);
    const lines = comparisonLines(c).join('\n');
    expect(lines).toMatch(/point_get_hot_1m\.native .*\+10\.0%/);
    expect(lines).toMatch(/2 benchmarks paired, 2 unpaired/);
  });

  it('shows the change of the bytes written per commit when both sides have write figures, n/a otherwise', () => {
    const a = tmp();
    writeTree(a, [
      { name: 'commit_durable_1put', ops: [100, 100], dbBytesPerCommit: 64_000 },
      { name: 'point_get_hot_1m', ops: [1000, 1000] },
    ]);
    const b = tmp();
    writeTree(b, [
      { name: 'commit_durable_1put', ops: [120, 120], dbBytesPerCommit: 16_000 },
      { name: 'point_get_hot_1m', ops: [1000, 1000] },
    ]);
    const c = compareDirs(a, b);
    expect(c.rows.map((r) => [r.id, r.dbBytesPerCommit, r.deviceBytesPerCommit])).toEqual([
      ['micro/btree/commit_durable_1put.native', -0.75, null],
      ['micro/btree/point_get_hot_1m.native', null, null],
    ]);
    const lines = comparisonLines(c);
    expect(lines[0]).toMatch(/Δ db B\/commit +Δ device B\/commit +note/);
    expect(lines.find((l) => l.includes('commit_durable_1put'))).toMatch(/-75\.0% +n\/a/);
    expect(lines.find((l) => l.includes('point_get_hot_1m'))).toMatch(/n\/a +n\/a/);
    // No write figures on either side: no write columns.
    expect(comparisonLines({ ...c, rows: c.rows.filter((r) => r.dbBytesPerCommit === null) })[0]).not.toMatch(/B\/commit/);
  });

  it('validates every file before comparing: an invalid one is an error naming the file and field', () => {
    const a = tmp();
    writeTree(a, [{ name: 'point_get_hot_1m', ops: [1000] }]);
    const file = discoverResults(a)[0]!;
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete r.results.ops_per_sec;
    fs.writeFileSync(file, JSON.stringify(r));
    expect(() => compareDirs(a, a)).toThrow(/point_get_hot_1m\.native_r000\.json: .*results\.ops_per_sec: is missing/);
  });

  it('discovers only result files with stable names', () => {
    const a = tmp();
    writeResult(path.join(a, 'micro', 'btree', 'point_get_hot_1m.native_r000.json'), sampleResult());
    fs.writeFileSync(path.join(a, 'summary.json'), '{}');
    fs.writeFileSync(path.join(a, 'micro', 'btree', 'notes.json'), '{}');
    expect(discoverResults(a).map((f) => path.relative(a, f))).toEqual([path.join('micro', 'btree', 'point_get_hot_1m.native_r000.json')]);
  });
});
