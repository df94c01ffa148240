// Build step run by `npm install` (prepare) and `npm run build`.
//
// 1. Try to build the Rust addon with `napi build`. The addon is optional, so
//    if cargo is missing or the build fails this prints one line and goes on;
//    NorthstarDB then runs on the pure-TypeScript kernels. With
//    NORTHSTAR_REQUIRE_NATIVE=1 a failed addon build fails the whole build.
//    NORTHSTAR_NATIVE=0 skips the addon build.
// 2. Compile TypeScript into dist/ with tsc. A type error fails the build.
//    dist/cli/main.js (the `northstar` bin) is made executable.
// 3. Build better-sqlite3, a peer of bench/storage.mjs (dev dependency), when
//    it is installed and its addon does not load: npm runs no install script
//    of a dependency here, and its own script downloads a prebuilt binary.
//    Optional like the addon: a failure prints one line and the build goes on
//    (the benchmark then lists better-sqlite3 as pending, with that reason).
//    NORTHSTAR_PEERS=0 skips it.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const crateDir = join('crates', 'northstar-native');
const buildLog = join(root, 'target', 'northstar-native-build.log');
const sqliteLog = join(root, 'target', 'better-sqlite3-build.log');

const reason = buildNative();
if (reason !== null) {
  console.log(`northstardb: native addon not built (${reason}); using the pure-TypeScript fallback`);
  if (process.env.NORTHSTAR_REQUIRE_NATIVE === '1') {
    console.error('northstardb: NORTHSTAR_REQUIRE_NATIVE=1, so this is an error');
    process.exit(1);
  }
}
compileTypeScript();
const peerReason = buildSqlitePeer();
if (peerReason !== null) console.log(`northstardb: better-sqlite3 (benchmark peer) not built (${peerReason})`);

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

/** Builds better-sqlite3's addon with node-gyp; returns null when it loads (already or after the build), else why not. */
function buildSqlitePeer() {
  if (process.env.NORTHSTAR_PEERS === '0') return 'NORTHSTAR_PEERS=0';
  let pkgDir;
  try {
    pkgDir = dirname(require.resolve('better-sqlite3/package.json'));
  } catch {
    return null; // not installed (npm ci --omit=dev): nothing to build
  }
  const loads = () => spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { cwd: root }).status === 0;
  if (loads()) return null;
  const gyp = nodeGyp();
  if (gyp === null) return 'node-gyp not found (npm ships it)';
  // Headers of this very Node, where a distribution installs them (/usr/include/node);
  // without them node-gyp would download headers, which may be impossible.
  const prefix = dirname(dirname(process.execPath));
  const version = join(prefix, 'include', 'node', 'node_version.h');
  const args = [gyp, 'rebuild', '--release', `--jobs=${os.availableParallelism()}`];
  if (!process.env.npm_config_nodedir && existsSync(version) && headersVersion(version) === process.versions.node) args.push(`--nodedir=${prefix}`);
  console.log('northstardb: building better-sqlite3 for bench/storage.mjs (about a minute)');
  const build = spawnSync(process.execPath, args, { cwd: pkgDir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (build.error || build.status !== 0 || !loads()) {
    mkdirSync(dirname(sqliteLog), { recursive: true });
    writeFileSync(sqliteLog, `${build.stdout ?? ''}\n${build.stderr ?? ''}\n${build.error ?? ''}`);
    return `node-gyp failed, see ${sqliteLog}`;
  }
  console.log('northstardb: better-sqlite3 built');
  return null;
}

/** node-gyp's entry point: the one npm names to scripts, else the one bundled with npm beside this node. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

/** "major.minor.patch" of a node_version.h. */
function headersVersion(file) {
  const text = readFileSync(file, 'utf8');
  const part = (name) => text.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1];
  return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
}

/** Absolute path of the `bin` entry `name` of an installed package. */
function binPath(pkg, name) {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const { bin } = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const relative = typeof bin === 'string' ? bin : bin[name];
  return join(dirname(manifestPath), relative);
}
