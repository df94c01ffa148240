// Tests that run compiled code (the dist/cli/main.js binary, worker threads of
// the benchmark suites) build dist/ first when it is older than the source.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const mainJs = path.join(root, 'dist', 'cli', 'main.js');

/** Newest modification time of the compiled source (not tests). */
function newestSource(at = path.join(root, 'ts')): number {
  let newest = fs.statSync(path.join(root, 'tsconfig.json')).mtimeMs;
  for (const e of fs.readdirSync(at, { withFileTypes: true })) {
    const p = path.join(at, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Compiles dist/ with tsc (in place, so a concurrent reader never finds it
 * missing) when it is older than the source. Both vitest projects, and several
 * test files, may get here at once: a lock directory lets one compile while
 * the others wait.
 */
export async function ensureBuilt(): Promise<void> {
  const fresh = (): boolean => fs.existsSync(mainJs) && fs.statSync(mainJs).mtimeMs >= newestSource();
  if (fresh()) return;
  const lock = path.join(root, 'target', 'cli-test-build.lock');
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      if (Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0) > 120_000) fs.rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (fresh()) return;
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tsc failed, so dist/ cannot be tested:\n${r.stdout}${r.stderr}`);
    fs.chmodSync(mainJs, 0o755);
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}
