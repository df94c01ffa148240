import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gate, loadAllowList, type AllowEntry } from './gate.js';
import { loadResults, summarize } from './runner.js';
import { writeTree, type Figures } from './testing.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tree(figures: Figures[]): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-gate-'));
  dirs.push(d);
  writeTree(d, figures);
  return d;
}
const entries = (figures: Figures[]) => summarize(loadResults(tree(figures)));
const steady = (x: number): number[] => [x, x * 1.01, x * 0.99];

describe('gate', () => {
  const base = entries([
    { name: 'point_get_hot_1m', ops: steady(1000), p99: 2000, allocPerOp: 100 },
    { name: 'delete_10pct', ops: steady(500), fsyncs: 1 },
    { name: 'point_get_cold_1m', critical: false, ops: steady(300) },
  ]);

  it('passes when nothing moved beyond the thresholds', () => {
    const cur = entries([
      { name: 'point_get_hot_1m', ops: steady(960), p99: 2150, allocPerOp: 104 },
      { name: 'delete_10pct', ops: steady(500), fsyncs: 1 },
      { name: 'point_get_cold_1m', critical: false, ops: steady(300) },
    ]);
    const g = gate(base, cur, []);
    expect(g.findings).toEqual([]);
    expect(g.passed).toBe(true);
    expect(g.checked).toBe(2); // critical only
  });

  it('catches a synthetic regression of each metric', () => {
    const cur = entries([
      { name: 'point_get_hot_1m', ops: steady(900), p99: 2300, allocPerOp: 110 },
      { name: 'delete_10pct', ops: steady(500), fsyncs: 2 },
      { name: 'point_get_cold_1m', critical: false, ops: steady(10) }, // not critical: never gated
    ]);
    const g = gate(base, cur, []);
    expect(g.passed).toBe(false);
    const got = g.findings.map((f) => `${f.id} ${f.metric} ${f.status}`).sort();
    expect(got).toEqual([
      'micro/btree/delete_10pct.native fsyncs_per_op regression',
      'micro/btree/point_get_hot_1m.native alloc_per_op regression',
      'micro/btree/point_get_hot_1m.native p99 regression',
      'micro/btree/point_get_hot_1m.native throughput regression',
    ]);
  });

  it('reports an unstable benchmark (CV > 10%) without failing on it', () => {
    const cur = entries([
      { name: 'point_get_hot_1m', ops: [500, 900, 1300] },
      { name: 'delete_10pct', ops: steady(500), fsyncs: 1 },
    ]);
    const g = gate(base, cur, []);
    expect(g.unstable).toEqual(['micro/btree/point_get_hot_1m.native']);
    expect(g.findings.every((f) => f.status === 'unstable')).toBe(true);
    expect(g.passed).toBe(true);
  });

  it('honours an allow entry with a justification, for the metrics it names', () => {
    const cur = entries([
      { name: 'point_get_hot_1m', ops: steady(900), p99: 2000 },
      { name: 'delete_10pct', ops: steady(500), fsyncs: 2 },
    ]);
    const allow: AllowEntry[] = [{ benchmark: 'micro/btree/point_get_hot_1m', justification: 'copy-on-read values, accepted in review', metrics: ['throughput'] }];
    const g = gate(base, cur, allow);
    const hot = g.findings.find((f) => f.id.includes('point_get_hot'))!;
    expect(hot.status).toBe('allowed');
    expect(hot.justification).toMatch(/copy-on-read/);
    expect(g.findings.find((f) => f.id.includes('delete'))!.status).toBe('regression');
    expect(g.passed).toBe(false);
    expect(gate(base, cur, [...allow, { benchmark: 'micro/btree/delete_*', justification: 'one more sync for the new checksum page' }]).passed).toBe(true);
  });

  it('lists critical baseline benchmarks missing from the current run', () => {
    const g = gate(base, entries([{ name: 'delete_10pct', ops: steady(500), fsyncs: 1 }]), []);
    expect(g.missing).toEqual(['micro/btree/point_get_hot_1m.native']);
  });

  it('loadAllowList: missing file is empty; an entry without a justification is an error', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-allow-'));
    dirs.push(d);
    expect(loadAllowList(path.join(d, 'none.json'))).toEqual([]);
    const f = path.join(d, 'allow.json');
    fs.writeFileSync(f, JSON.stringify({ entries: [{ benchmark: 'micro/btree/x' }] }));
    expect(() => loadAllowList(f)).toThrow(/entries\[0\]\.justification/);
    fs.writeFileSync(f, JSON.stringify({ entries: [{ benchmark: 'micro/btree/x', justification: 'measured, explained in PR 12' }] }));
    expect(loadAllowList(f)).toHaveLength(1);
  });

  it('the committed bench/allow_regression.json is valid', () => {
    expect(() => loadAllowList('bench/allow_regression.json')).not.toThrow();
  });
});

describe('allowFor', () => {
  it('waives the native gate only for entries that name native_vs_fallback', async () => {
    const { allowFor } = await import('./gate.js');
    const all: AllowEntry[] = [{ benchmark: 'micro/kernels/*', justification: 'baseline drift accepted in review' }];
    expect(allowFor('micro/kernels/leaf_search', 'native_vs_fallback', all)).toBeUndefined();
    expect(allowFor('micro/kernels/leaf_search.native', 'throughput', all)).toBeDefined();
    const named: AllowEntry[] = [{ benchmark: 'micro/kernels/leaf_search', justification: 'within the N-API call cost', metrics: ['native_vs_fallback'] }];
    expect(allowFor('micro/kernels/leaf_search', 'native_vs_fallback', named)?.justification).toMatch(/N-API/);
    expect(allowFor('micro/kernels/leaf_search.native', 'throughput', named)).toBeUndefined();
  });
});
