// The compiled engine the hardening suites run in child processes and worker
// threads (crash, crashmulti, concurrencymulti): those cannot load TypeScript,
// so they import JavaScript from a scratch directory.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Puts the engine in `scratch`/dist and returns that directory: a copy of this
 * file's own dist/ when it runs compiled (npm run hardening; a copy, so a
 * rebuild of dist/ during the run cannot hand a child half-old modules), else
 * (vitest, from ts/) the sources compiled by tsc (no type check needed: the
 * suites themselves are typed). crates/ and node_modules/ are linked beside it:
 * dist/native/loader.js finds the addon two levels up, as in the package.
 */
export function compiledEngine(scratch: string): string {
  const self = fileURLToPath(import.meta.url);
  const dist = nodePath.join(scratch, 'dist');
  if (self.endsWith('.js')) fs.cpSync(nodePath.dirname(nodePath.dirname(self)), dist, { recursive: true });
  else {
    const tsc = spawnSync(
      process.execPath,
      [nodePath.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', nodePath.join(ROOT, 'tsconfig.json'), '--outDir', dist, '--declaration', 'false', '--sourceMap', 'false'],
      { encoding: 'utf8' },
    );
    if (!fs.existsSync(nodePath.join(dist, 'index.js'))) throw new Error(`tsc produced no index.js: ${tsc.stdout}${tsc.stderr}`);
  }
  fs.symlinkSync(nodePath.join(ROOT, 'crates'), nodePath.join(scratch, 'crates'));
  fs.symlinkSync(nodePath.join(ROOT, 'node_modules'), nodePath.join(scratch, 'node_modules'));
  fs.copyFileSync(nodePath.join(ROOT, 'package.json'), nodePath.join(scratch, 'package.json')); // type: module, and the version the native loader checks the addon against
  return dist;
}
