// `npm run hardening [-- --json FILE] [--seed N] [--short] [--suite NAME ...]`:
// runs every registered hardening suite (ts/hard/registry.ts), prints each
// suite's figures, writes them all as JSON with --json, and exits non-zero if
// any suite reports failures (an invariant violated) or throws.

import * as fs from 'node:fs';
import { implementation } from '../native/kernels.js';
import { suites, type Figures } from './registry.js';

interface Args {
  json: string | null;
  seed: number;
  long: boolean;
  only: string[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { json: null, seed: Date.now() % 2 ** 31, long: true, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--json') args.json = value();
    else if (a === '--seed') args.seed = Number(value());
    else if (a === '--short') args.long = false;
    else if (a === '--suite') args.only.push(value());
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run hardening -- [--json FILE] [--seed N] [--short] [--suite NAME]...\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isSafeInteger(args.seed)) throw new Error('--seed must be an integer');
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const chosen = args.only.length === 0 ? suites : suites.filter((s) => args.only.includes(s.name));
  const unknown = args.only.filter((n) => !suites.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown suite ${unknown.join(', ')}; suites: ${suites.map((s) => s.name).join(', ')}`);
  process.stdout.write(`hardening: ${chosen.length} suites, ${args.long ? 'long' : 'short'}, seed ${args.seed}, ${implementation} kernels\n`);
  const report: {
    seed: number;
    long: boolean;
    implementation: string;
    node: string;
    startedAt: string;
    durationMs: number;
    ok: boolean;
    suites: Record<string, { ok: boolean; durationMs: number; figures: Figures; error?: string }>;
  } = { seed: args.seed, long: args.long, implementation, node: process.version, startedAt: new Date().toISOString(), durationMs: 0, ok: true, suites: {} };
  const t0 = performance.now();
  for (const suite of chosen) {
    const s0 = performance.now();
    process.stdout.write(`\n== ${suite.name}\n`);
    let figures: Figures = {};
    let error: string | undefined;
    try {
      figures = await suite.run({ long: args.long, seed: args.seed, log: (line) => process.stdout.write(`  ${suite.name}: ${line}\n`) });
    } catch (err) {
      error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      figures = { ...figures, failures: 1 };
    }
    const ok = error === undefined && (figures.failures === undefined || figures.failures === 0);
    const durationMs = Math.round(performance.now() - s0);
    report.suites[suite.name] = error === undefined ? { ok, durationMs, figures } : { ok, durationMs, figures, error };
    if (!ok) report.ok = false;
    for (const [k, v] of Object.entries(figures)) process.stdout.write(`  ${k.padEnd(36)} ${v}\n`);
    if (error !== undefined) process.stdout.write(`  error: ${error}\n`);
    process.stdout.write(`  ${ok ? 'OK' : 'FAILED'} in ${(durationMs / 1000).toFixed(1)} s\n`);
  }
  report.durationMs = Math.round(performance.now() - t0);
  process.stdout.write(`\nhardening: ${report.ok ? 'all suites passed' : 'FAILED: ' + Object.entries(report.suites).filter(([, r]) => !r.ok).map(([n]) => n).join(', ')} (${(report.durationMs / 1000).toFixed(1)} s, seed ${args.seed})\n`);
  if (args.json !== null) {
    fs.writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n');
    process.stdout.write(`hardening: figures written to ${args.json}\n`);
  }
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`hardening: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
