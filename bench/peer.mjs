// What the peer scripts (bench/storage.mjs, bench/writer_peer.mjs) share:
// their command line, the engines they compare (lmdb-js when installed), and
// the keys and random sequences of their workloads. Like the scripts, needs
// `npm run build` first.

/** xorshift32 (ts/bench/suites/fixtures.ts): a seeded, reproducible sequence of unsigned 32-bit integers. */
export { rng } from '../dist/bench/suites/fixtures.js';

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

/** The middle value (upper middle of an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Key `i` of the workloads: 16 bytes, decimal, zero-padded. */
export function key(i) {
  return Buffer.from(String(i).padStart(16, '0'));
}
