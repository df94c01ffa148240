// What a person reads after a run: the summary table, pass/fail counts per
// suite, a CSV for spreadsheets, and one self-contained HTML page (inline CSS
// and SVG, no scripts, nothing fetched) with throughput and latency
// percentiles per benchmark, current against baseline.

import { alignTable, compareEntries, fmtNum, pct } from './compare.js';
import type { GateOutcome } from './gate.js';
import { formatTargetValue } from './registry.js';
import type { BenchResult, RuleOutcome, Summary, SummaryEntry, TargetOutcome } from './schema.js';
import { median } from './stats.js';

export function fmtNs(ns: number): string {
  if (!Number.isFinite(ns)) return 'n/a';
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

/** The end-of-run table: one line per benchmark and implementation. */
export function summaryLines(entries: readonly SummaryEntry[]): string[] {
  const rows = [['benchmark', 'impl', 'ops/s', 'p50', 'p99', 'alloc B/op', 'fsync/op', 'CV', 'stable', 'err']];
  for (const e of entries) {
    rows.push([
      `${e.suite}/${e.group}/${e.name}${e.critical ? ' *' : ''}`,
      e.implementation,
      fmtNum(e.ops_per_sec),
      fmtNs(e.p50_ns ?? NaN),
      fmtNs(e.p99_ns),
      fmtNum(e.alloc_bytes_per_op),
      e.fsyncs_per_op === 0 ? '0' : e.fsyncs_per_op.toFixed(3),
      `${(e.cv * 100).toFixed(1)}%`,
      e.stable ? 'yes' : 'NO',
      String(e.errors_total),
    ]);
  }
  return [...alignTable(rows), '* critical; CV = coefficient of variation of ops/s across repeats (> 10%: unstable, not gated)', ...writeLines(entries)];
}

/**
 * The write figures of the benchmarks that commit (summary `write`): bytes
 * per commit and write amplification, database and device, syncs per commit.
 * Empty when no entry has them.
 */
export function writeLines(entries: readonly SummaryEntry[]): string[] {
  const withWrite = entries.filter((e) => e.write);
  if (withWrite.length === 0) return [];
  const na = (x: number | null, f: (v: number) => string): string => (x === null ? 'n/a' : f(x));
  const amp = (x: number): string => `${x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1)}x`;
  const rows = [['benchmark', 'impl', 'committed B', 'db B', 'device B', 'db amp', 'device amp', 'fdatasync', 'fsync']];
  for (const e of withWrite) {
    const w = e.write!;
    rows.push([
      `${e.suite}/${e.group}/${e.name}`,
      e.implementation,
      fmtNum(w.committed_bytes_per_commit),
      fmtNum(w.db_bytes_per_commit),
      na(w.device_bytes_per_commit, fmtNum),
      na(w.db_write_amplification, amp),
      na(w.device_write_amplification, amp),
      w.fdatasyncs_per_commit.toFixed(3),
      w.fsyncs_per_commit.toFixed(3),
    ]);
  }
  return [
    '',
    'writes per commit (median over repeats): bytes committed (key + value), written by the database (data file + log), given to the device (/proc/self/io; n/a where unavailable); amplification = written ÷ committed',
    ...alignTable(rows),
  ];
}

/** Native against fallback for the kernels (both measured in one process, repeats interleaved). */
export function implRatioLines(entries: readonly SummaryEntry[]): string[] {
  const by = new Map(entries.map((e) => [e.id, e]));
  const rows = [['benchmark', 'native ops/s', 'fallback ops/s', 'native/fallback']];
  for (const e of entries) {
    if (e.implementation !== 'native' || e.group !== 'kernels') continue;
    const f = by.get(e.id.replace(/\.native$/, '.fallback'));
    if (!f) continue;
    rows.push([`${e.group}/${e.name}`, fmtNum(e.ops_per_sec), fmtNum(f.ops_per_sec), `${(e.ops_per_sec / f.ops_per_sec).toFixed(2)}x`]);
  }
  return rows.length > 1 ? alignTable(rows) : [];
}

export function ruleLines(rules: readonly RuleOutcome[]): string[] {
  return rules.map((r) => `rule ${r.ok ? 'ok' : 'FAILED'}: ${r.rule}: ${r.detail}`);
}

/**
 * The concurrency suite's figures beyond the table: each benchmark compares
 * configurations measured side by side, and those live in its extra medians.
 */
export function extraLines(entries: readonly SummaryEntry[]): string[] {
  return entries
    .filter((e) => e.suite === 'concurrency' && e.extra)
    .map((e) => `${e.id}: ${Object.entries(e.extra!).map(([k, v]) => `${k} ${k.endsWith('_ns') ? fmtNs(v) : k.endsWith('ratio') ? `${v.toFixed(2)}x` : fmtNum(v)}`).join(', ')}`);
}

/** One line per target: met or NOT MET, the median figure against its bound. */
export function targetLines(targets: readonly TargetOutcome[]): string[] {
  return targets.map((t) => `target ${t.met ? 'met' : 'NOT MET'}: ${t.id}: ${t.target}: ${t.value === null ? 'no figure' : formatTargetValue(t.value, t.unit)} (target ${t.limit})`);
}

export interface SuiteCount {
  suite: string;
  pass: number;
  fail: number;
  unstable: number;
  pending: number;
}

/** Per suite: fail = errors, or (with a gate outcome) a regression; unstable ones counted apart. */
export function suiteCounts(summary: Summary, gateOutcome?: GateOutcome): SuiteCount[] {
  const regressed = new Set(gateOutcome?.findings.filter((f) => f.status === 'regression').map((f) => f.id) ?? []);
  const out = new Map<string, SuiteCount>();
  const get = (s: string): SuiteCount => {
    if (!out.has(s)) out.set(s, { suite: s, pass: 0, fail: 0, unstable: 0, pending: 0 });
    return out.get(s)!;
  };
  for (const e of summary.benchmarks) {
    const c = get(e.suite);
    if (e.errors_total > 0 || regressed.has(e.id)) c.fail++;
    else c.pass++;
    if (!e.stable) c.unstable++;
  }
  for (const p of summary.pending ?? []) get(p.id.split('/')[0]!).pending++;
  for (const r of summary.rules) if (!r.ok) get('micro').fail++;
  return [...out.values()];
}

export function suiteCountLines(counts: readonly SuiteCount[]): string[] {
  return counts.map((c) => `${c.suite}: ${c.pass} passed, ${c.fail} failed (${c.unstable} unstable, ${c.pending} pending)`);
}

const CSV_COLUMNS = ['id', 'suite', 'group', 'name', 'implementation', 'critical', 'repeats', 'ops_per_sec', 'p50_ns', 'p99_ns', 'alloc_bytes_per_op', 'fsyncs_per_op', 'cv', 'stable', 'errors_total'] as const;
/** Write figures (summary `write`), after the others; empty cells where a benchmark has none or a figure is unavailable. */
const CSV_WRITE_COLUMNS = ['committed_bytes_per_commit', 'db_bytes_per_commit', 'device_bytes_per_commit', 'db_write_amplification', 'device_write_amplification', 'fdatasyncs_per_commit', 'fsyncs_per_commit'] as const;

export function csvOf(entries: readonly SummaryEntry[]): string {
  const cell = (v: unknown): string => {
    const s = v === undefined || v === null ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const row = (e: SummaryEntry): string => [...CSV_COLUMNS.map((c) => cell(e[c])), ...CSV_WRITE_COLUMNS.map((c) => cell(e.write?.[c]))].join(',');
  return [[...CSV_COLUMNS, ...CSV_WRITE_COLUMNS].join(','), ...entries.map(row)].join('\n') + '\n';
}

// ---- HTML -----------------------------------------------------------------------

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

/** Median over repeats of each latency percentile, per result id. */
export function latencyById(results: readonly BenchResult[]): Map<string, Percentiles> {
  const by = new Map<string, BenchResult[]>();
  for (const r of results) {
    const id = `${r.bench.suite}/${r.bench.group}/${r.bench.name}.${r.build.implementation}`;
    if (!by.has(id)) by.set(id, []);
    by.get(id)!.push(r);
  }
  const out = new Map<string, Percentiles>();
  for (const [id, rs] of by) {
    out.set(id, {
      p50: median(rs.map((r) => r.results.latency_ns.p50)),
      p95: median(rs.map((r) => r.results.latency_ns.p95)),
      p99: median(rs.map((r) => r.results.latency_ns.p99)),
    });
  }
  return out;
}

const ROW = 22;
const LABEL = 360;
const PLOT = 420;

/** Throughput per benchmark: current (blue) and baseline (grey) bars, each row scaled to its larger value. */
function throughputSvg(entries: readonly SummaryEntry[], base: Map<string, SummaryEntry>): string {
  const h = entries.length * ROW + 30;
  const parts: string[] = [];
  entries.forEach((e, i) => {
    const y = 20 + i * ROW;
    const b = base.get(e.id);
    const max = Math.max(e.ops_per_sec, b?.ops_per_sec ?? 0) || 1;
    parts.push(`<text x="${LABEL - 6}" y="${y + 12}" text-anchor="end">${esc(e.id)}</text>`);
    const wc = (e.ops_per_sec / max) * PLOT;
    parts.push(`<rect x="${LABEL}" y="${y + (b ? 1 : 4)}" width="${wc.toFixed(1)}" height="${b ? 9 : 12}" fill="${e.stable ? '#3b6fd8' : '#d8a03b'}"><title>${esc(e.id)}: ${fmtNum(e.ops_per_sec)} ops/s, CV ${(e.cv * 100).toFixed(1)}%</title></rect>`);
    if (b) {
      const wb = (b.ops_per_sec / max) * PLOT;
      parts.push(`<rect x="${LABEL}" y="${y + 11}" width="${wb.toFixed(1)}" height="9" fill="#9aa3ad"><title>baseline: ${fmtNum(b.ops_per_sec)} ops/s</title></rect>`);
    }
    const delta = b ? ` (${pct((e.ops_per_sec - b.ops_per_sec) / b.ops_per_sec)})` : '';
    parts.push(`<text x="${LABEL + PLOT + 6}" y="${y + 12}">${fmtNum(e.ops_per_sec)} ops/s${delta}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${LABEL + PLOT + 200}" height="${h}" font-family="sans-serif" font-size="11"><text x="${LABEL}" y="12" font-weight="bold">throughput (each row scaled to its larger bar; blue current, grey baseline, amber unstable)</text>${parts.join('')}</svg>`;
}

/** Latency percentiles on one log axis: p50 ● p95 ◆ p99 ▲, baseline as hollow grey marks. */
function latencySvg(ids: readonly string[], cur: Map<string, Percentiles>, base: Map<string, Percentiles>): string {
  const all = [...cur.values(), ...base.values()].flatMap((p) => [p.p50, p.p95, p.p99]).filter((x) => x > 0);
  const lo = Math.floor(Math.log10(Math.max(1, Math.min(...all, 1e9))));
  const hi = Math.ceil(Math.log10(Math.max(...all, 10)));
  const x = (ns: number): number => LABEL + ((Math.log10(Math.max(ns, 10 ** lo)) - lo) / Math.max(1, hi - lo)) * PLOT;
  const h = ids.length * ROW + 50;
  const parts: string[] = [];
  for (let d = lo; d <= hi; d++) {
    parts.push(`<line x1="${x(10 ** d)}" y1="18" x2="${x(10 ** d)}" y2="${h - 22}" stroke="#ddd"/><text x="${x(10 ** d)}" y="${h - 8}" text-anchor="middle">${fmtNs(10 ** d)}</text>`);
  }
  ids.forEach((id, i) => {
    const y = 20 + i * ROW + 10;
    parts.push(`<text x="${LABEL - 6}" y="${y + 4}" text-anchor="end">${esc(id)}</text>`);
    const mark = (p: Percentiles, fill: string, stroke: string, dy: number, who: string): void => {
      parts.push(`<circle cx="${x(p.p50).toFixed(1)}" cy="${y + dy}" r="4" fill="${fill}" stroke="${stroke}"><title>${who} p50 ${fmtNs(p.p50)}</title></circle>`);
      parts.push(`<rect x="${(x(p.p95) - 4).toFixed(1)}" y="${y + dy - 4}" width="8" height="8" transform="rotate(45 ${x(p.p95).toFixed(1)} ${y + dy})" fill="${fill}" stroke="${stroke}"><title>${who} p95 ${fmtNs(p.p95)}</title></rect>`);
      parts.push(`<path d="M${x(p.p99).toFixed(1)} ${y + dy - 5} l5 9 h-10 z" fill="${fill}" stroke="${stroke}"><title>${who} p99 ${fmtNs(p.p99)}</title></path>`);
    };
    const b = base.get(id);
    if (b) mark(b, 'none', '#9aa3ad', 4, 'baseline');
    const c = cur.get(id);
    if (c) mark(c, '#3b6fd8', '#3b6fd8', b ? -3 : 0, 'current');
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${LABEL + PLOT + 60}" height="${h}" font-family="sans-serif" font-size="11"><text x="${LABEL}" y="12" font-weight="bold">latency per op, log scale: ● p50 ◆ p95 ▲ p99 (filled current, hollow grey baseline)</text>${parts.join('')}</svg>`;
}

export interface HtmlInput {
  summary: Summary;
  results: readonly BenchResult[];
  baseline?: { entries: readonly SummaryEntry[]; results: readonly BenchResult[] };
  gate?: GateOutcome;
}

export function htmlOf(input: HtmlInput): string {
  const { summary } = input;
  const entries = summary.benchmarks;
  const base = new Map((input.baseline?.entries ?? []).map((e) => [e.id, e]));
  const curLat = latencyById(input.results);
  const baseLat = latencyById(input.baseline?.results ?? []);
  const counts = suiteCountLines(suiteCounts(summary, input.gate));
  const cmp = input.baseline ? compareEntries(input.baseline.entries, entries) : null;
  const rowsHtml = entries
    .map((e) => {
      const r = cmp?.rows.find((x) => x.id === e.id);
      return `<tr class="${e.stable ? '' : 'unstable'}"><td>${esc(e.id)}${e.critical ? ' <b>(CRITICAL)</b>' : ''}</td><td>${fmtNum(e.ops_per_sec)}</td><td>${fmtNs(e.p50_ns ?? NaN)}</td><td>${fmtNs(e.p99_ns)}</td><td>${fmtNum(e.alloc_bytes_per_op)}</td><td>${e.fsyncs_per_op.toFixed(3)}</td><td>${(e.cv * 100).toFixed(1)}%</td><td>${r ? pct(r.throughput) : ''}</td><td>${r ? pct(r.p99) : ''}</td><td>${e.errors_total}</td></tr>`;
    })
    .join('\n');
  const m = summary.profile;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>NorthstarDB benchmarks ${esc(summary.git.sha.slice(0, 10))}</title>
<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}tr.unstable{background:#fff4e0}svg{display:block;margin:16px 0}.fail{color:#b00}</style></head>
<body>
<h1>NorthstarDB benchmarks</h1>
<p>profile <b>${esc(m.name)}</b> · ${esc(m.cpu_model)} · ${m.cores} cores · ${(m.ram_bytes / 2 ** 30).toFixed(1)} GiB · ${esc(m.os)} · fs ${esc(m.fs_type)}<br>
node ${esc(summary.build.node_version)} · ${esc(summary.build.rust_version)} · git ${esc(summary.git.sha)} (${esc(summary.git.branch)}${summary.git.dirty ? ', dirty' : ''}) · ${esc(summary.timestamp)}</p>
<ul>${counts.map((c) => `<li>${esc(c)}</li>`).join('')}${summary.rules.map((r) => `<li class="${r.ok ? '' : 'fail'}">rule ${r.ok ? 'ok' : 'FAILED'}: ${esc(r.rule)}: ${esc(r.detail)}</li>`).join('')}${targetLines(summary.targets ?? []).map((l, i) => `<li class="${summary.targets![i]!.met ? '' : 'fail'}">${esc(l)}</li>`).join('')}</ul>
${input.gate ? `<p class="${input.gate.passed ? '' : 'fail'}">gate against baseline: ${input.gate.passed ? 'passed' : 'FAILED'}; ${input.gate.findings.map((f) => `${esc(f.id)} ${f.metric} ${pct(f.change)} (${f.status})`).join('; ') || 'no regressions'}</p>` : ''}
${throughputSvg(entries, base)}
${latencySvg(entries.map((e) => e.id), curLat, baseLat)}
<table><tr><th>benchmark</th><th>ops/s</th><th>p50</th><th>p99</th><th>alloc B/op</th><th>fsync/op</th><th>CV</th><th>Δ ops/s</th><th>Δ p99</th><th>errors</th></tr>
${rowsHtml}
</table>
${(summary.pending ?? []).length ? `<h2>Pending</h2><ul>${summary.pending!.map((p) => `<li>${esc(p.id)}: ${esc(p.reason)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}
