// Pairs the results of two output trees by benchmark id (suite/group/name and
// implementation, read from each file's contents, so the trees may be laid
// out differently) and computes the change of each figure.

import { loadResults, summarize } from './runner.js';
import type { SummaryEntry } from './schema.js';

export interface ComparedRow {
  id: string;
  base: SummaryEntry;
  current: SummaryEntry;
  /** Relative changes: (current − base) ÷ base; NaN when base is 0. */
  throughput: number;
  p99: number;
  allocPerOp: number;
  fsyncsPerOp: number;
  /** Relative changes of the bytes written per commit, by the database (data file + log) and to the device: null unless both sides have them. */
  dbBytesPerCommit: number | null;
  deviceBytesPerCommit: number | null;
  /** Either side's CV across repeats is above 10%. */
  unstable: boolean;
}

export interface Comparison {
  rows: ComparedRow[];
  onlyInBase: string[];
  onlyInCurrent: string[];
}

export function relativeChange(base: number, current: number): number {
  if (base === 0) return current === 0 ? 0 : Infinity;
  return (current - base) / base;
}

export function compareEntries(base: readonly SummaryEntry[], current: readonly SummaryEntry[]): Comparison {
  const b = new Map(base.map((e) => [e.id, e]));
  const c = new Map(current.map((e) => [e.id, e]));
  const rows: ComparedRow[] = [];
  for (const [id, be] of b) {
    const ce = c.get(id);
    if (!ce) continue;
    rows.push({
      id,
      base: be,
      current: ce,
      throughput: relativeChange(be.ops_per_sec, ce.ops_per_sec),
      p99: relativeChange(be.p99_ns, ce.p99_ns),
      allocPerOp: relativeChange(be.alloc_bytes_per_op, ce.alloc_bytes_per_op),
      fsyncsPerOp: relativeChange(be.fsyncs_per_op, ce.fsyncs_per_op),
      dbBytesPerCommit: changeOf(be.write?.db_bytes_per_commit, ce.write?.db_bytes_per_commit),
      deviceBytesPerCommit: changeOf(be.write?.device_bytes_per_commit, ce.write?.device_bytes_per_commit),
      unstable: !be.stable || !ce.stable,
    });
  }
  return {
    rows: rows.sort((x, y) => x.id.localeCompare(y.id)),
    onlyInBase: [...b.keys()].filter((id) => !c.has(id)).sort(),
    onlyInCurrent: [...c.keys()].filter((id) => !b.has(id)).sort(),
  };
}

/** relativeChange of two figures either side may lack (null: not compared). */
function changeOf(base: number | null | undefined, current: number | null | undefined): number | null {
  return base === undefined || base === null || current === undefined || current === null ? null : relativeChange(base, current);
}

/** Every result under both directories, validated, summarized and paired. */
export function compareDirs(baseDir: string, currentDir: string): Comparison {
  return compareEntries(summarize(loadResults(baseDir)), summarize(loadResults(currentDir)));
}

export function pct(x: number): string {
  if (!Number.isFinite(x)) return x > 0 ? '+inf' : 'n/a';
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
}

export function comparisonLines(c: Comparison): string[] {
  // The write columns (bytes per commit written by the database, and to the device) only
  // when some pair has them: benchmarks that commit (ts/bench/amplification.ts).
  const writes = c.rows.some((r) => r.dbBytesPerCommit !== null);
  const head = ['benchmark', 'ops/s base', 'ops/s now', 'Δ ops/s', 'Δ p99', 'Δ alloc/op', 'Δ fsync/op'];
  const rows = [[...head, ...(writes ? ['Δ db B/commit', 'Δ device B/commit'] : []), 'note']];
  const orNa = (x: number | null): string => (x === null ? 'n/a' : pct(x));
  for (const r of c.rows) {
    const row = [r.id, fmtNum(r.base.ops_per_sec), fmtNum(r.current.ops_per_sec), pct(r.throughput), pct(r.p99), pct(r.allocPerOp), pct(r.fsyncsPerOp)];
    if (writes) row.push(orNa(r.dbBytesPerCommit), orNa(r.deviceBytesPerCommit));
    rows.push([...row, r.unstable ? 'unstable (CV > 10%)' : '']);
  }
  const lines = alignTable(rows);
  if (c.onlyInBase.length) lines.push(`only in the first: ${c.onlyInBase.join(', ')}`);
  if (c.onlyInCurrent.length) lines.push(`only in the second: ${c.onlyInCurrent.join(', ')}`);
  lines.push(`${c.rows.length} benchmarks paired, ${c.onlyInBase.length + c.onlyInCurrent.length} unpaired`);
  return lines;
}

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  if (x >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function alignTable(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i > 0 && /^[-+0-9.,]+[%x]?$|^n\/a$/.test(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
