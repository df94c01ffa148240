import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchCommand } from '../cli/bench.js';
import { runCli } from '../cli/program.js';
import { csvOf, htmlOf, summaryLines, writeLines } from './report.js';
import { loadResults, summarize, writeSummaryOf } from './runner.js';
import { writeTree } from './testing.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tree(ops: number): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-report-'));
  dirs.push(d);
  writeTree(d, [
    { name: 'point_get_hot_1m', ops: [ops, ops] },
    { name: 'crc32c_16k', group: 'kernels', impl: 'fallback', ops: [100, 100] },
    { name: 'crc32c_16k', group: 'kernels', impl: 'native', ops: [1200, 1250] },
  ]);
  return d;
}
function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, [benchCommand]);
  return { code, out, err };
}

describe('report', () => {
  it('summary table, CSV with one row per benchmark, self-contained HTML with SVG charts', () => {
    const d = tree(1000);
    const summary = writeSummaryOf(d, 'ci');
    expect(summaryLines(summary.benchmarks)[0]).toMatch(/^benchmark\s+impl\s+ops\/s/);
    const csv = csvOf(summary.benchmarks).trim().split('\n');
    expect(csv[0]).toMatch(/^id,suite,group,name,implementation,critical,repeats,ops_per_sec.*,errors_total,committed_bytes_per_commit,db_bytes_per_commit,device_bytes_per_commit,db_write_amplification,device_write_amplification,fdatasyncs_per_commit,fsyncs_per_commit$/);
    expect(csv).toHaveLength(4);
    expect(summaryLines(summary.benchmarks).join('\n')).not.toMatch(/writes per commit/);
    const base = tree(1100);
    const baseResults = loadResults(base);
    const html = htmlOf({ summary, results: loadResults(d), baseline: { entries: summarize(baseResults), results: baseResults } });
    expect(html).toMatch(/^<!doctype html>/);
    expect((html.match(/<svg /g) ?? []).length).toBe(2);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/); // nothing fetched, nothing run
    expect(html).toContain('-9.1%'); // 1000 against a baseline of 1100
  });

  it('write figures: a table after the summary (n/a for an unavailable device figure) and CSV cells', () => {
    const d = tree(1000);
    const e = writeSummaryOf(d, 'ci').benchmarks[0]!;
    const write = { committed_bytes_per_commit: 144, db_bytes_per_commit: 50_094.6, device_bytes_per_commit: 125_874, fdatasyncs_per_commit: 1.002, fsyncs_per_commit: 0, db_write_amplification: 347.88, device_write_amplification: 874.1 };
    const entries = [{ ...e, write }, { ...e, implementation: 'fallback' as const, write: { ...write, device_bytes_per_commit: null, device_write_amplification: null } }];
    const lines = writeLines(entries);
    expect(lines[1]).toMatch(/^writes per commit/);
    expect(lines[2]).toMatch(/^benchmark\s+impl\s+committed B\s+db B\s+device B\s+db amp\s+device amp\s+fdatasync\s+fsync$/);
    expect(lines[3]).toMatch(/native\s+144\s+50,095\s+125,874\s+348x\s+874x\s+1\.002\s+0\.000$/);
    expect(lines[4]).toMatch(/fallback\s+144\s+50,095\s+n\/a\s+348x\s+n\/a\s+1\.002/);
    expect(summaryLines(entries).slice(-5)).toEqual(lines);
    const csv = csvOf(entries).trim().split('\n');
    expect(csv[1]).toMatch(/,144,50094\.6,125874,347\.88,874\.1,1\.002,0$/);
    expect(csv[2]).toMatch(/,144,50094\.6,,347\.88,,1\.002,0$/);
  });

  it('northstar bench report / compare / gate / list from the command line', () => {
    const cur = tree(1000);
    const base = tree(1100);
    const csv = path.join(cur, 'out.csv');
    const html = path.join(cur, 'out.html');
    const r = cli('bench', 'report', cur, '--csv', csv, '--html', html, '--baseline', base);
    expect(r.out.join('\n')).toMatch(/micro: \d+ passed, 1 failed/);
    expect(r.code).toBe(1); // the -9.1% regression of a critical benchmark
    expect(fs.existsSync(csv) && fs.existsSync(html)).toBe(true);
    expect(cli('bench', 'compare', base, cur).out.join('\n')).toMatch(/3 benchmarks paired, 0 unpaired/);
    const g = cli('bench', 'gate', base, '--current', cur, '--allow', path.join(cur, 'none.json'));
    expect(g.code).toBe(1);
    expect(g.out.join('\n')).toMatch(/REGRESSION: micro\/btree\/point_get_hot_1m\.native throughput -9\.1%/);
    expect(cli('bench', 'gate', base, '--current', base).code).toBe(0);
    const list = cli('bench', 'list');
    expect(list.code).toBe(0);
    expect(list.out.some((l) => l.includes('(CRITICAL)'))).toBe(true);
    expect(cli('bench', '--list').out).toEqual(list.out);
    const missing = cli('bench', 'compare', path.join(cur, 'nope'), cur);
    expect(missing.code).toBe(1);
    expect(missing.err).toEqual([`northstar: ${path.join(cur, 'nope')}: no such directory`]);
  });
});
