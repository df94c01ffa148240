// ts/hard/cargofuzz.ts without running libFuzzer (that is `npm run hardening`):
// the seed corpus is committed for every target, the fuzz crate stays out of the
// workspace, and a machine without nightly or cargo-fuzz gets a reasoned skip.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { expect, it } from 'vitest';
import { CORPUS_DIR, cargoFuzzTargets, runCargoFuzz } from './cargofuzz.js';
import { repoRoot } from '../testing/rng.js';

it('the seed corpus holds small files for every cargo-fuzz target, and the fuzz crate is excluded from the workspace', () => {
  const targets = cargoFuzzTargets();
  expect(targets).toEqual(['page_verify', 'node', 'record']);
  for (const t of targets) {
    expect(fs.existsSync(nodePath.join(repoRoot, 'crates', 'northstar-native', 'fuzz', 'fuzz_targets', `${t}.rs`)), t).toBe(true);
    const files = fs.readdirSync(nodePath.join(CORPUS_DIR, t));
    expect(files.length, t).toBeGreaterThan(0);
    for (const name of files) expect(fs.statSync(nodePath.join(CORPUS_DIR, t, name)).size, `${t}/${name}`).toBeLessThan(20_000);
  }
  expect(fs.readFileSync(nodePath.join(repoRoot, 'Cargo.toml'), 'utf8')).toMatch(/exclude = \["crates\/northstar-native\/fuzz"\]/);
  expect(fs.readFileSync(nodePath.join(repoRoot, 'crates', 'northstar-native', 'fuzz', 'Cargo.toml'), 'utf8')).toMatch(/^\[workspace\]$/m);
});

it('without cargo (or nightly, or cargo-fuzz) the suite skips with the reason and runs nothing', async () => {
  const lines: string[] = [];
  const f = await runCargoFuzz({ long: false, seed: 1, log: (l) => lines.push(l), cargo: 'cargo-that-does-not-exist' });
  expect(f.skipped).toMatch(/no nightly toolchain/);
  expect(f.cargoFuzzRuns).toBe(0);
  expect(f.failures).toBe(0);
  expect(lines[0]).toMatch(/^skipped: /);
});
