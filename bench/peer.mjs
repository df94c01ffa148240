// What the peer scripts (bench/storage.mjs, bench/writer_peer.mjs) share:
// their command line, the engines they compare (lmdb-js when installed; for
// bench/storage.mjs also better-sqlite3 and classic-level), and the keys and
// random sequences of their workloads. Like the scripts, needs `npm run build` first.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** xorshift32 (ts/bench/suites/fixtures.ts): a seeded, reproducible sequence of unsigned 32-bit integers. */
export { rng } from '../dist/bench/suites/fixtures.js';
import { percentile as harnessPercentile } from '../dist/bench/stats.js';

/** The value of `--name` in `args`, or `dflt`. */
export function option(args, name, dflt) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
}

/** native and fallback, then lmdb-js unless `--no-peer` or not installed (said on stdout). */
export async function enginesToCompare(args) {
  const engines = ['native', 'fallback'];
  if (args.includes('--no-peer')) return engines;
  try {
    await import('lmdb');
    engines.push('lmdb');
  } catch {
    console.log('lmdb-js not installed: peer column skipped');
  }
  return engines;
}

/** The environment of an engine's child process: NORTHSTAR_NATIVE picks NorthstarDB's kernels. */
export function engineEnv(engine) {
  return { NORTHSTAR_NATIVE: engine === 'fallback' ? '0' : '1' };
}

/**
 * The peers of bench/storage.mjs: engine name, npm package, and how to tell
 * that the package works here (a native addon that does not load is no peer).
 */
export const PEERS = {
  lmdb: { pkg: 'lmdb', label: 'lmdb-js', probe: "require('lmdb')" },
  sqlite: { pkg: 'better-sqlite3', label: 'better-sqlite3', probe: "new (require('better-sqlite3'))(':memory:').close()" },
  level: { pkg: 'classic-level', label: 'classic-level', probe: "require('classic-level')" },
};

/** The installed version of npm package `pkg`, or null. */
export function packageVersion(pkg) {
  try {
    return JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version;
  } catch {
    return null;
  }
}

/** null when peer `name` (a key of PEERS) loads in a fresh process, else why not (one line). */
export function peerProblem(name) {
  const { pkg, probe } = PEERS[name];
  if (packageVersion(pkg) === null) return `${pkg} is not installed (npm install)`;
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' });
  if (r.status === 0) return null;
  const line = (r.stderr || r.error?.message || '').split('\n').find((l) => /Error|Could not|cannot/i.test(l)) ?? `exit ${r.status}`;
  const hint = name === 'sqlite' ? ' (its addon is built by `npm run build`: see target/better-sqlite3-build.log)' : '';
  return `${pkg} does not load: ${line.trim()}${hint}`;
}

/** The value at quantile `q` (0..1) of `xs`: the harness's percentile (ts/bench/stats.ts), interpolated. */
export function percentile(xs, q) {
  return harnessPercentile(xs, q * 100);
}

/** The middle value (upper middle of an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Key `i` of the workloads: 16 bytes, decimal, zero-padded. */
export function key(i) {
  return Buffer.from(String(i).padStart(16, '0'));
}
