// `npm run hardening`: builds dist/ (and the addon) when a TypeScript or Rust
// source is newer than dist/hard/main.js, then runs the hardening suites
// (ts/hard/main.ts) in long mode, passing the arguments on (--json FILE, ...).

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'dist', 'hard', 'main.js');

/** Newest modification time of the files under dir whose names pass keep. */
function newest(dir, keep) {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, keep));
    else if (keep(e.name)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

const sources = Math.max(
  newest(join(root, 'ts'), (n) => n.endsWith('.ts') && !n.endsWith('.test.ts')),
  newest(join(root, 'crates', 'northstar-native', 'src'), (n) => n.endsWith('.rs')),
);
if (!existsSync(main) || statSync(main).mtimeMs < sources) {
  process.stdout.write('hardening: dist/ is older than the sources; building\n');
  const b = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
const r = spawnSync(process.execPath, [main, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
