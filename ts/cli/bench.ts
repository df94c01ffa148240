// `northstar bench`: list, run, compare, gate, capture-baseline, report: thin
// argument handling over ts/bench/.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { compareDirs, comparisonLines, pct } from '../bench/compare.js';
import { DEFAULT_ALLOW_FILE, gate, implGate, loadAllowList, THRESHOLDS, type GateOutcome } from '../bench/gate.js';
import { listLines, profileFor, type Profile } from '../bench/registry.js';
import { csvOf, htmlOf, implRatioLines, ruleLines, suiteCountLines, suiteCounts, summaryLines, extraLines, targetLines } from '../bench/report.js';
import { loadResults, runBenchmarks, summarize, writeSummaryOf, type ImplChoice } from '../bench/runner.js';
import type { ProfileName, Summary } from '../bench/schema.js';
import { CliError, Exit, type Io } from './common.js';

const int = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number`);
  return n;
};
const positive = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};

/** Progress goes to a terminal only, never under CI. */
const showProgress = (): boolean => Boolean(process.stderr.isTTY) && !process.env.CI;

interface RunFlags {
  suite?: string;
  filter?: string;
  repeats: number;
  warmupOps?: number;
  warmupNs: number;
  seed: number;
  profile: ProfileName;
  records?: number;
  opsScale?: number;
  impl?: ImplChoice;
  kinds?: 'db' | 'kernel';
  out: string;
  summary: boolean;
}

function profileOf(f: { profile: ProfileName; records?: number; opsScale?: number }): Profile {
  if (f.profile !== 'custom' && (f.records !== undefined || f.opsScale !== undefined)) {
    // Sizes that differ from the named profile make it a custom run (never mixed into ci baselines).
    return profileFor('custom', { ...profileFor(f.profile), ...(f.records !== undefined ? { records: f.records } : {}), ...(f.opsScale !== undefined ? { opsScale: f.opsScale } : {}) });
  }
  return profileFor(f.profile, { records: f.records, opsScale: f.opsScale });
}

function printSummary(s: Summary, io: Io, gateOutcome?: GateOutcome): void {
  for (const l of summaryLines(s.benchmarks)) io.out(l);
  const ratios = implRatioLines(s.benchmarks);
  if (ratios.length) {
    io.out('');
    io.out('native against fallback (same process, repeats interleaved, median ops/s; the gate is bench gate --impl):');
    for (const l of ratios) io.out(`  ${l}`);
  }
  const extras = extraLines(s.benchmarks);
  if (extras.length) {
    io.out('');
    io.out('concurrency figures (median over repeats of each repeat\'s figure):');
    for (const l of extras) io.out(`  ${l}`);
  }
  for (const l of ruleLines(s.rules)) io.out(l);
  const targets = s.targets ?? [];
  if (targets.length) {
    io.out('');
    io.out(`targets (median over repeats; reported, not enforced): ${targets.filter((t) => t.met).length} of ${targets.length} met`);
    for (const l of targetLines(targets)) io.out(`  ${l}`);
  }
  for (const l of suiteCountLines(suiteCounts(s, gateOutcome))) io.out(l);
}

function run(f: RunFlags, io: Io): number {
  const profile = profileOf(f);
  const outcome = runBenchmarks({
    suite: f.suite,
    filter: f.filter,
    repeats: f.repeats,
    warmupOps: f.warmupOps,
    warmupNs: f.warmupNs,
    seed: f.seed,
    profile,
    impl: f.impl,
    kinds: f.kinds,
    out: f.out,
    summary: f.summary,
    progress: showProgress(),
    log: (l) => io.err(`northstar bench: ${l}`),
  });
  if (outcome.files.length === 0 && !outcome.summary?.benchmarks.length) {
    if (f.kinds) return outcome.failures.length ? Exit.Failed : Exit.Ok;
    throw new CliError(`no benchmark matched (suite ${f.suite ?? 'any'}, filter ${f.filter ?? 'none'}); see northstar bench list`);
  }
  if (outcome.summary) {
    printSummary(outcome.summary, io);
    io.out(`${outcome.files.length} result files (validated against bench/results.schema.json) and summary.json in ${f.out}`);
  }
  for (const x of outcome.failures) io.err(`northstar bench: FAILED ${x}`);
  return outcome.failures.length ? Exit.Failed : Exit.Ok;
}

function runOptions(c: Command): Command {
  return c
    .option('--suite <suite>', 'micro, macro, concurrency or hardening (default: all)')
    .option('--filter <glob>', 'benchmark ids: a substring, or a glob over name, group/name or suite/group/name')
    .option('--repeats <n>', 'measured repeats per benchmark', positive('--repeats'), 5)
    .option('--warmup-ops <n>', "warm-up ops before each repeat (default: each benchmark's own)", int('--warmup-ops'))
    .option('--warmup-ns <n>', 'warm up for at least this many ns before each repeat', int('--warmup-ns'), 0)
    .option('--seed <n>', 'seed of every random choice', int('--seed'), 42)
    .addOption(new Option('--profile <name>', 'sizes').choices(['ci', 'dev_nvme', 'custom']).default('ci'))
    .option('--records <n>', 'B-tree records (makes the profile custom)', positive('--records'))
    .option('--ops-scale <x>', 'multiplies measured ops (makes the profile custom)', positive('--ops-scale'))
    .addOption(new Option('--impl <impl>', 'database benchmarks on native, fallback or both (default: the loaded one; kernels always both)').choices(['native', 'fallback', 'both']));
}

function resolveGate(baselineDir: string, currentDir: string, allowFile: string): { outcome: GateOutcome; current: Summary } {
  for (const d of [baselineDir, currentDir]) if (!fs.existsSync(d)) throw new CliError(`${d}: no such directory`);
  const baseEntries = summarize(loadResults(baselineDir));
  if (baseEntries.length === 0) throw new CliError(`${baselineDir}: no benchmark results found`);
  const current = writeSummaryOf(currentDir, (loadResults(currentDir)[0]?.profile.name ?? 'ci') as ProfileName);
  return { outcome: gate(baseEntries, current.benchmarks, loadAllowList(allowFile)), current };
}

function printGate(g: GateOutcome, io: Io): void {
  for (const f of g.findings) {
    const why = f.status === 'allowed' ? ` (allowed: ${f.justification})` : f.status === 'unstable' ? ' (unstable: CV > 10%, not gated)' : '';
    io.out(`${f.status === 'regression' ? 'REGRESSION' : f.status}: ${f.id} ${f.metric} ${pct(f.change)} (limit ${f.limit})${why}`);
  }
  for (const id of g.unstable) if (!g.findings.some((f) => f.id === id)) io.out(`unstable (CV > 10%, not gated): ${id}`);
  if (g.missing.length) io.out(`not in the current run: ${g.missing.join(', ')}`);
  io.out(
    `gate ${g.passed ? 'passed' : 'FAILED'}: ${g.checked} critical benchmarks compared, ${g.findings.filter((f) => f.status === 'regression').length} regressions, ${g.unstable.length} unstable, ${g.findings.filter((f) => f.status === 'allowed').length} allowed (thresholds: ops/s -${THRESHOLDS.throughputDrop * 100}%, p99 +${THRESHOLDS.p99Rise * 100}%, alloc/op +${THRESHOLDS.allocRise * 100}%, fsyncs/op any increase)`,
  );
}

function implGateCommand(io: Io, allowFile: string, out?: string): number {
  const lines: string[] = [];
  const g = implGate({
    allow: loadAllowList(allowFile),
    onRatio: (r) => {
      const line = `${r.ok ? 'ok  ' : r.allowed ? 'ALLOWED' : 'FAIL'} ${r.name.padEnd(28)} native ${r.nativeNs.toFixed(1).padStart(10)} ns/op  fallback ${r.fallbackNs.toFixed(1).padStart(10)} ns/op  ${r.ratio.toFixed(2).padStart(7)}x (needs ${r.minRatio > 1 ? `>= ${r.minRatio}x` : '> 1x'})${r.confirmed ? ' [re-measured]' : ''}${r.allowed ? ` (allowed: ${r.allowed})` : ''}`;
      lines.push(line);
      io.out(line);
    },
  });
  if (g.reason) io.err(`northstar bench gate --impl: ${g.reason}`);
  if (g.uncovered.length) io.out(`FAIL kernels without a benchmark: ${g.uncovered.join(', ')}`);
  if (out) fs.writeFileSync(out, JSON.stringify(g, null, 2) + '\n');
  const waived = g.ratios.filter((r) => !r.ok && r.allowed).length;
  io.out(`native gate ${g.passed ? 'passed' : 'FAILED'}: ${g.ratios.filter((r) => r.ok).length}/${g.ratios.length} kernels${waived ? `, ${waived} failing but allowed by ${allowFile}` : ''} (same process, alternating rounds, fastest round of each)`);
  return g.passed ? Exit.Ok : Exit.Failed;
}

export function benchCommand(io: Io, done: (code: number) => void): Command {
  const bench = new Command('bench')
    .description('benchmarks: list, run, compare, gate, capture-baseline, report')
    // Options after a subcommand are the subcommand's: without this, bench's own --profile
    // (for --list) took `bench run --profile dev_nvme`'s, and every run was at ci.
    .enablePositionalOptions()
    .option('--list', 'same as bench list')
    .addOption(new Option('--profile <name>', 'sizes shown by --list').choices(['ci', 'dev_nvme', 'custom']).default('ci'))
    .action((opts: { list?: boolean; profile: ProfileName }, cmd: Command) => {
      if (!opts.list) {
        cmd.help({ error: true });
        return;
      }
      for (const l of listLines(profileFor(opts.profile))) io.out(l);
      done(Exit.Ok);
    });

  bench
    .command('list')
    .description('every benchmark by suite, (CRITICAL) marked, with its parameters at the profile')
    .addOption(new Option('--profile <name>', 'sizes').choices(['ci', 'dev_nvme', 'custom']).default('ci'))
    .action((opts: { profile: ProfileName }) => {
      for (const l of listLines(profileFor(opts.profile))) io.out(l);
      done(Exit.Ok);
    });

  runOptions(bench.command('run').description('run benchmarks; one JSON file per repeat plus summary.json'))
    .option('--out <dir>', 'output directory', 'bench-results')
    .addOption(new Option('--kinds <kind>').choices(['db', 'kernel']).hideHelp())
    .option('--no-summary', 'do not write summary.json (for a child run)')
    .action((opts: RunFlags) => done(run(opts, io)));

  bench
    .command('compare')
    .description('pair every result of two directories by benchmark id and print the deltas')
    .argument('<dirA>', 'baseline results')
    .argument('<dirB>', 'current results')
    .action((a: string, b: string) => {
      for (const d of [a, b]) if (!fs.existsSync(d)) throw new CliError(`${d}: no such directory`);
      for (const l of comparisonLines(compareDirs(a, b))) io.out(l);
      done(Exit.Ok);
    });

  bench
    .command('gate')
    .description('exit 1 on a critical regression against a baseline, or (--impl) when native kernels do not beat the fallback')
    .argument('[baselineDir]', 'baseline results (e.g. bench/baselines/ci)')
    .option('--current <dir>', 'results to judge (default: run the critical benchmarks now)')
    .option('--impl', 'native-vs-fallback gate: every kernel, both implementations, this process')
    .option('--allow <file>', 'allowed regressions with justifications', DEFAULT_ALLOW_FILE)
    .option('--json <file>', 'with --impl: write the ratios as JSON')
    .option('--repeats <n>', 'repeats of the run made when --current is absent', positive('--repeats'), 5)
    .action((baselineDir: string | undefined, opts: { current?: string; impl?: boolean; allow: string; json?: string; repeats: number }) => {
      if (opts.impl) {
        done(implGateCommand(io, opts.allow, opts.json));
        return;
      }
      if (!baselineDir) throw new CliError('bench gate needs <baselineDir> (or --impl)');
      let current = opts.current;
      if (current === undefined) {
        const base = loadResults(baselineDir);
        if (base.length === 0) throw new CliError(`${baselineDir}: no benchmark results found`);
        current = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-gate-'));
        const suites = [...new Set(base.filter((r) => r.bench.critical).map((r) => r.bench.suite))];
        for (const suite of suites) {
          runBenchmarks({
            suite,
            repeats: opts.repeats,
            warmupNs: 0,
            seed: base[0]!.config.seed,
            profile: profileFor(base[0]!.profile.name),
            out: current,
            summary: false,
            progress: showProgress(),
            log: (l) => io.err(`northstar bench: ${l}`),
          });
        }
        io.out(`current run in ${current}`);
      }
      const { outcome } = resolveGate(baselineDir, current, opts.allow);
      printGate(outcome, io);
      done(outcome.passed ? Exit.Ok : Exit.Failed);
    });

  runOptions(bench.command('capture-baseline').description('run a suite and store it as bench/baselines/<profile>/ (git sha and machine inside)'))
    .option('--dir <dir>', 'baselines root', path.join('bench', 'baselines'))
    .action((opts: RunFlags & { dir: string }) => {
      const profile = profileOf(opts);
      const out = path.join(opts.dir, profile.name);
      removeOldBaseline(out);
      fs.mkdirSync(out, { recursive: true });
      const code = run({ ...opts, suite: opts.suite ?? 'micro', out, summary: true }, io);
      io.out(`baseline for profile ${profile.name} in ${out}`);
      done(code);
    });

  bench
    .command('report')
    .description('suite summary with pass/fail counts; --csv for spreadsheets; --html for a self-contained page with charts')
    .argument('<dir>', 'results directory')
    .option('--baseline <dir>', 'compare against (charts show both; pass/fail uses the gate)')
    .option('--csv <file>', 'write one CSV row per benchmark')
    .option('--html <file>', 'write a self-contained HTML report')
    .option('--allow <file>', 'allowed regressions', DEFAULT_ALLOW_FILE)
    .action((dir: string, opts: { baseline?: string; csv?: string; html?: string; allow: string }) => {
      if (!fs.existsSync(dir)) throw new CliError(`${dir}: no such directory`);
      const results = loadResults(dir);
      if (results.length === 0) throw new CliError(`${dir}: no benchmark results found`);
      const summary = writeSummaryOf(dir, results[0]!.profile.name);
      let baseline: { entries: ReturnType<typeof summarize>; results: ReturnType<typeof loadResults> } | undefined;
      let g: GateOutcome | undefined;
      if (opts.baseline) {
        const br = loadResults(opts.baseline);
        baseline = { entries: summarize(br), results: br };
        g = gate(baseline.entries, summary.benchmarks, loadAllowList(opts.allow));
      }
      printSummary(summary, io, g);
      if (g) printGate(g, io);
      if (opts.csv) {
        fs.writeFileSync(opts.csv, csvOf(summary.benchmarks));
        io.out(`CSV: ${opts.csv}`);
      }
      if (opts.html) {
        fs.writeFileSync(opts.html, htmlOf({ summary, results, baseline, gate: g }));
        io.out(`HTML: ${opts.html}`);
      }
      const failed = suiteCounts(summary, g).some((c) => c.fail > 0);
      done(failed ? Exit.Failed : Exit.Ok);
    });
  return bench;
}

/**
 * Removes the baseline `out` that capture-baseline replaces, only when it is
 * one: a directory holding summary.json and nothing but result files (.json)
 * in folders. Anything else there (a mistyped --dir) is refused, untouched.
 */
function removeOldBaseline(out: string): void {
  if (!fs.existsSync(out)) return;
  const stray = (dir: string): string | null => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        const s = stray(p);
        if (s !== null) return s;
      } else if (!e.isFile() || !e.name.endsWith('.json')) return p;
    }
    return null;
  };
  const entries = fs.readdirSync(out);
  const other = entries.length === 0 ? null : !entries.includes('summary.json') ? out : stray(out);
  if (other !== null) {
    throw new CliError(`${out} is not a benchmark baseline (${other === out ? 'no summary.json' : `${other} is not a result file`}); not replacing it`);
  }
  fs.rmSync(out, { recursive: true, force: true });
}
