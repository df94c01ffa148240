// Build step run by `npm install` (prepare) and `npm run build`.
//
// 1. Try to build the Rust addon with `napi build`. The addon is optional, so
//    if cargo is missing or the build fails this prints one line and goes on;
//    NorthstarDB then runs on the pure-TypeScript kernels. With
//    NORTHSTAR_REQUIRE_NATIVE=1 a failed addon build fails the whole build.
//    NORTHSTAR_NATIVE=0 skips the addon build.
// 2. Compile TypeScript into dist/ with tsc. A type error fails the build.
//    dist/cli/main.js (the `northstar` bin) is made executable.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const crateDir = join('crates', 'northstar-native');
const buildLog = join(root, 'target', 'northstar-native-build.log');

const reason = buildNative();
if (reason !== null) {
  console.log(`northstardb: native addon not built (${reason}); using the pure-TypeScript fallback`);
  if (process.env.NORTHSTAR_REQUIRE_NATIVE === '1') {
    console.error('northstardb: NORTHSTAR_REQUIRE_NATIVE=1, so this is an error');
    process.exit(1);
  }
}
compileTypeScript();

/** Builds the addon; returns null on success, else why it was not built. */
function buildNative() {
  if (process.env.NORTHSTAR_NATIVE === '0') {
    return 'NORTHSTAR_NATIVE=0';
  }
  const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
  if (cargo.error || cargo.status !== 0) {
    return 'cargo not found on PATH';
  }
  let napiCli;
  try {
    napiCli = binPath('@napi-rs/cli', 'napi');
  } catch {
    return '@napi-rs/cli is not installed';
  }
  const args = [
    napiCli,
    'build',
    '--platform',
    '--release',
    '--manifest-path', join(crateDir, 'Cargo.toml'),
    '--output-dir', crateDir,
    '--js', 'index.cjs',
    '--dts', 'index.d.cts',
  ];
  const build = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (build.error || build.status !== 0) {
    mkdirSync(dirname(buildLog), { recursive: true });
    writeFileSync(buildLog, `${build.stdout ?? ''}\n${build.stderr ?? ''}\n${build.error ?? ''}`);
    return `cargo build failed, see ${buildLog}`;
  }
  console.log(`northstardb: native addon built in ${crateDir}`);
  return null;
}

function compileTypeScript() {
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [binPath('typescript', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (tsc.error || tsc.status !== 0) {
    console.error('northstardb: TypeScript compilation failed');
    process.exit(tsc.status || 1);
  }
  // The `northstar` bin runs directly (tsc keeps its shebang, not the mode).
  const cli = join(root, 'dist', 'cli', 'main.js');
  if (existsSync(cli)) chmodSync(cli, 0o755);
}

/** Absolute path of the `bin` entry `name` of an installed package. */
function binPath(pkg, name) {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const { bin } = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const relative = typeof bin === 'string' ? bin : bin[name];
  return join(dirname(manifestPath), relative);
}
