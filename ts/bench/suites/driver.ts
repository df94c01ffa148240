// The child-process drivers of the macro suites that need an event loop or
// several processes (the runner itself is synchronous): each is a compiled
// script in dist/bench/ that takes its options as one JSON argument and prints
// its result as the last line of stdout.

import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

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
