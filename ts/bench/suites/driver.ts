// The child-process drivers of the macro suites that need an event loop or
// several processes (the runner itself is synchronous): each is a compiled
// script in dist/bench/ that takes its options as one JSON argument and prints
// its result as the last line of stdout.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { zeroIo, type BenchCase, type IoCounters, type SelfMeasured } from '../registry.js';

/** The compiled driver `name`.js: beside the suites in dist/, or in dist/ of the checkout when this runs from ts/ (vitest). */
export function driverScript(name: string): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return path.join(path.dirname(here), '..', `${name}.js`);
  return path.join(path.dirname(here), '..', '..', '..', 'dist', 'bench', `${name}.js`);
}

/** Runs driver `name` on implementation `impl` with `options`; returns the JSON of its last output line. */
export function runDriver(name: string, options: object, impl: string, timeoutMs = 600_000): unknown {
  const r = spawnSync(process.execPath, [driverScript(name), JSON.stringify(options)], {
    encoding: 'utf8',
    env: { ...process.env, NORTHSTAR_NATIVE: impl === 'fallback' ? '0' : (process.env.NORTHSTAR_NATIVE ?? '') },
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${name} driver exited with ${r.status ?? r.signal}: ${r.stderr.trim().slice(-500)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** What one repeat run in a child reports: its allocations are not measured (reported as 0), nor its I/O or errors unless given. */
export type ChildMeasured = Omit<SelfMeasured, 'jsBytes' | 'externalBytes' | 'gcCount' | 'io' | 'errors'> & { io?: IoCounters; errors?: number };

/**
 * The BenchCase of a benchmark whose repeats each run driver `name` in a
 * child process: `repeat(n)` (n = 0, 1, …) runs one and says what it measured.
 */
export function childCase(name: string, ops: number, threads: number, repeat: (n: number) => ChildMeasured): BenchCase {
  if (!fs.existsSync(driverScript(name))) throw new Error(`${driverScript(name)} is missing: run npm run build first`);
  let n = 0;
  return {
    ops,
    threads,
    warmupOps: 0,
    warmup() {},
    run: (): SelfMeasured => ({ errors: 0, io: zeroIo(), ...repeat(n++), jsBytes: 0, externalBytes: 0, gcCount: 0 }),
  };
}

/** Removes database `file` and every file beside it named after it (log, lock file, cartridge). */
export function removeDatabase(file: string): void {
  const dir = path.dirname(file);
  const base = path.basename(file);
  for (const f of fs.readdirSync(dir)) if (f === base || f.startsWith(`${base}.`)) fs.rmSync(path.join(dir, f), { force: true });
}
