// Seeded randomness and scratch directories for tests, peers and the
// hardening suites that damage, fuzz or race the database (corruption, fuzz,
// concurrency, golden). Every suite derives its streams from the run's seed,
// so a failure replays with `--seed N` (or NORTHSTAR_SEED=N under vitest).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';

/** mulberry32: a fast 32-bit PRNG; `salt` gives independent streams of one seed. */
export function rng(seed: number, salt = 0): () => number {
  let a = (seed ^ Math.imul(salt + 1, 0x9e3779b9)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n). */
export const randInt = (r: () => number, n: number): number => Math.floor(r() * n);

/** n pseudo-random bytes. */
export function randomBytes(r: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = randInt(r, 256);
  return b;
}

/** A fresh directory under the system temp dir; remove it with removeDir. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(nodePath.join(os.tmpdir(), `northstar-${prefix}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * The repository root (ts/testing/ and dist/testing/ are both two levels below it).
 * fileURLToPath, not URL.pathname: the pathname keeps percent-escapes (a space
 * is `%20`) and on Windows starts with `/C:/`, so it names no file there.
 */
export const repoRoot = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..', '..');
