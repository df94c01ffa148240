// Hardening §5, native side: the coverage-guided cargo-fuzz (libFuzzer)
// targets of crates/northstar-native/fuzz, each run for a bounded time from
// the committed seed corpus hard/fuzz/corpus/<target>/ (read only: new inputs
// libFuzzer finds go to a scratch directory, so a run never dirties the tree).
// A crash leaves its input in crates/northstar-native/fuzz/artifacts/<target>/.
//
// Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). When
// either is missing the suite does not pretend: it reports `skipped` with the
// reason and runs nothing. The first run builds the targets (a few minutes).
// NORTHSTAR_CARGO_FUZZ_SECONDS overrides the time per target.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { removeDir, repoRoot, tempDir } from '../testing/rng.js';

export const FUZZ_DIR = nodePath.join(repoRoot, 'crates', 'northstar-native', 'fuzz');
export const CORPUS_DIR = nodePath.join(repoRoot, 'hard', 'fuzz', 'corpus');

/** The [[bin]] targets of the fuzz crate's manifest. */
export function cargoFuzzTargets(): string[] {
  const manifest = fs.readFileSync(nodePath.join(FUZZ_DIR, 'Cargo.toml'), 'utf8');
  return [...manifest.matchAll(/\[\[bin\]\]\s*\nname = "([a-z_]+)"/g)].map((m) => m[1]!);
}

export interface CargoFuzzOptions extends SuiteOptions {
  /** Seconds per target (default 60 long, 5 short; env NORTHSTAR_CARGO_FUZZ_SECONDS wins). */
  seconds?: number;
  /** The cargo executable (tests point it at a missing one to check the skip). */
  cargo?: string;
}

/** Why cargo-fuzz cannot run here, or null when it can. */
export function cargoFuzzUnavailable(cargo = 'cargo'): string | null {
  const nightly = spawnSync(cargo, ['+nightly', '--version'], { encoding: 'utf8' });
  if (nightly.error || nightly.status !== 0) return `no nightly toolchain (${cargo} +nightly --version failed: ${(nightly.error?.message ?? nightly.stderr ?? '').trim().split('\n')[0]})`;
  const fuzz = spawnSync(cargo, ['+nightly', 'fuzz', '--version'], { encoding: 'utf8' });
  if (fuzz.error || fuzz.status !== 0) return 'cargo-fuzz is not installed (cargo install cargo-fuzz)';
  return null;
}

export async function runCargoFuzz(opts: CargoFuzzOptions): Promise<Figures> {
  const cargo = opts.cargo ?? 'cargo';
  const env = Number(process.env.NORTHSTAR_CARGO_FUZZ_SECONDS);
  const seconds = Number.isFinite(env) && env > 0 ? env : (opts.seconds ?? (opts.long ? 60 : 5));
  const targets = cargoFuzzTargets();
  const why = cargoFuzzUnavailable(cargo);
  if (why !== null) {
    opts.log(`skipped: ${why}`);
    return { skipped: why, cargoFuzzTargets: targets.length, cargoFuzzRuns: 0, cargoFuzzCrashes: 0, failures: 0 };
  }
  const f = { cargoFuzzTargets: targets.length, cargoFuzzSecondsPerTarget: seconds, cargoFuzzRuns: 0, cargoFuzzCrashes: 0, cargoFuzzBuildFailures: 0, failures: 0 };
  const figures: Figures = {};
  for (const target of targets) {
    const scratch = tempDir(`cargo-fuzz-${target}`);
    try {
      const args = [
        '+nightly', 'fuzz', 'run', target, scratch, nodePath.join(CORPUS_DIR, target),
        '--', `-max_total_time=${seconds}`, '-max_len=40000', '-rss_limit_mb=2048', `-seed=${(opts.seed >>> 0) || 1}`, '-print_final_stats=1',
      ];
      opts.log(`${target}: cargo ${args.join(' ')}`);
      const r = spawnSync(cargo, args, { cwd: FUZZ_DIR, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: (seconds + 900) * 1000 });
      const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
      const runs = Number(/stat::number_of_executed_units:\s*(\d+)/.exec(out)?.[1] ?? /Done (\d+) runs/.exec(out)?.[1] ?? 0);
      f.cargoFuzzRuns += runs;
      figures[`${target}Runs`] = runs;
      if (r.status === 0) continue;
      const crashed = /libFuzzer: (deadly signal|fuzz target exited|timeout|out-of-memory)|panicked at|ERROR: AddressSanitizer/.test(out);
      if (crashed) {
        f.cargoFuzzCrashes++;
        const artifact = /Test unit written to (\S+)/.exec(out)?.[1] ?? 'see crates/northstar-native/fuzz/artifacts';
        opts.log(`FAIL ${target}: ${out.split('\n').find((l) => /panicked at|SUMMARY|ERROR/.test(l)) ?? 'crash'}; input ${artifact}`);
      } else {
        f.cargoFuzzBuildFailures++;
        opts.log(`FAIL ${target}: cargo fuzz exited ${r.status ?? r.signal}: ${out.trim().split('\n').slice(-5).join(' | ')}`);
      }
      f.failures++;
    } finally {
      removeDir(scratch);
    }
  }
  return { ...f, ...figures };
}

export const cargoFuzzSuite: HardeningSuite = { name: 'cargo-fuzz', run: runCargoFuzz };
