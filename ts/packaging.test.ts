// What a user gets from `npm install northstardb`, proved as a user would:
// scripts/package.mjs packs the main package and this machine's platform
// package, both go into an empty project with cargo off PATH, and the project
// opens, writes, reads and closes a database from ESM and from CommonJS, runs
// `npx northstar --help` and `npx northstar verify`, and type-checks both
// forms. Then the same with the main package alone: the fallback works and
// says so once on stderr (docs/packaging.md).
//
// Packaging does not depend on the kernel implementation, so this runs in the
// `native` vitest project only. The platform-package half needs this
// machine's addon (npm run build with cargo); without it that half is skipped,
// or fails under NORTHSTAR_REQUIRE_NATIVE=1 as the other native tests do.

import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = nodePath.join(nodePath.dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(fs.readFileSync(nodePath.join(root, 'package.json'), 'utf8')) as {
  version: string;
  engines: { node: string };
  napi: { binaryName: string };
};
const inNativeProject = process.env.NORTHSTAR_NATIVE !== '0';
const addonBuilt = fs.readdirSync(nodePath.join(root, 'crates', 'northstar-native')).some((f) => f.endsWith('.node'));
const nativeRequired = process.env.NORTHSTAR_REQUIRE_NATIVE === '1';

/** PATH without any folder that holds cargo: a user's machine with no Rust toolchain. */
const pathWithoutCargo = (process.env.PATH ?? '')
  .split(nodePath.delimiter)
  .filter((dir) => !fs.existsSync(nodePath.join(dir, process.platform === 'win32' ? 'cargo.exe' : 'cargo')))
  .join(nodePath.delimiter);

/** The environment of a user's shell: no cargo, and none of the switches this suite sets. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Windows spells it Path; a copy of process.env is an ordinary object, so drop every spelling before setting one.
  for (const name of Object.keys(env)) if (name.toUpperCase() === 'PATH') delete env[name];
  Object.assign(env, { PATH: pathWithoutCargo }, extra);
  for (const name of ['NORTHSTAR_NATIVE', 'NORTHSTAR_QUIET', 'NORTHSTAR_REQUIRE_NATIVE', 'NODE_OPTIONS', 'VITEST', 'VITEST_WORKER_ID', 'VITEST_POOL_ID']) {
    if (!(name in extra)) delete env[name];
  }
  for (const name of Object.keys(env)) if (name.startsWith('npm_')) delete env[name];
  return env;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sh(command: string, args: string[], options: SpawnSyncOptions): Run {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, shell: process.platform === 'win32', ...options });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function ok(r: Run, what: string): Run {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}

interface Tarball {
  name: string;
  file: string;
  packed: number;
  unpacked: number;
  files: number;
  paths: string[];
}

/** Runs scripts/package.mjs into out; returns its tarballs by package name. */
function buildPackages(out: string): Map<string, Tarball> {
  // Without this machine's addon there is no platform package to make: the main package alone.
  const args = [nodePath.join(root, 'scripts', 'package.mjs'), '--out', out, ...(addonBuilt ? [] : ['--main-only'])];
  const r = ok(sh(process.execPath, args, { cwd: root }), 'scripts/package.mjs');
  const tarballs = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Tarball);
  return new Map(tarballs.map((t) => [t.name, t]));
}

/** A fresh project with the given tarballs installed (npm install, as a user runs it). */
function project(dir: string, tarballs: string[]): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(nodePath.join(dir, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true }));
  const r = ok(sh('npm', ['install', '--no-audit', '--no-fund', ...tarballs], { cwd: dir, env: userEnv() }), 'npm install');
  // npm 11 names every install script it would not run; the package must have none.
  expect(r.stdout + r.stderr).not.toMatch(/install-scripts|allowScripts/);
}

/** The same program, written as a user would in each module system. */
const PROGRAM_BODY = `
const path = process.argv[2];
const db = open(path);
const w = db.beginWrite();
w.put('greeting', 'hello');
w.commit();
const r = db.beginRead();
const value = new TextDecoder().decode(r.get('greeting'));
r.close();
db.close();
console.log(JSON.stringify({ implementation, value }));
`;
const ESM_PROGRAM = `import { open, implementation } from 'northstardb';\n${PROGRAM_BODY}`;
const CJS_PROGRAM = `const { open, implementation } = require('northstardb');\n${PROGRAM_BODY}`;
const ESM_TYPES = `import { open, openQueue, NorthstarError, implementation } from 'northstardb';
const db = open('x.ndb');
const q = openQueue(db, 'work');
const kind: 'native' | 'fallback' = implementation;
export const checks = [q, kind, NorthstarError];
`;
const CJS_TYPES = `import northstar = require('northstardb');
const db = northstar.open('x.ndb');
const kind: 'native' | 'fallback' = northstar.implementation;
export = [db, kind, northstar.NorthstarError];
`;

function writeUserFiles(dir: string): void {
  fs.writeFileSync(nodePath.join(dir, 'esm.mjs'), ESM_PROGRAM);
  fs.writeFileSync(nodePath.join(dir, 'cjs.cjs'), CJS_PROGRAM);
  fs.writeFileSync(nodePath.join(dir, 'types.mts'), ESM_TYPES);
  fs.writeFileSync(nodePath.join(dir, 'types.cts'), CJS_TYPES);
  fs.writeFileSync(
    nodePath.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: [], skipLibCheck: true }, files: ['types.mts', 'types.cts'] }),
  );
}

function runProgram(dir: string, file: string, dbName: string, extra: Record<string, string> = {}): { implementation: string; value: string; stderr: string } {
  const r = ok(sh(process.execPath, [file, nodePath.join(dir, dbName)], { cwd: dir, env: userEnv(extra) }), `node ${file}`);
  return { ...(JSON.parse(r.stdout.trim()) as { implementation: string; value: string }), stderr: r.stderr };
}

const tsc = nodePath.join(nodePath.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');

describe.runIf(inNativeProject)('npm install northstardb', () => {
  let work: string;
  let tarballs: Map<string, Tarball>;
  const platformPackage = (): Tarball | undefined => [...tarballs.values()].find((t) => t.name.startsWith('northstardb-'));

  beforeAll(() => {
    work = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-pack-'));
    tarballs = buildPackages(nodePath.join(work, 'out'));
  }, 120_000);
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('the main package ships what a user runs and nothing else', () => {
    const main = tarballs.get('northstardb');
    expect(main).toBeDefined();
    const list = main!.paths.map((p) => `package/${p}`);
    console.log(`northstardb-${manifest.version}.tgz: ${main!.files} files, ${(main!.packed / 1e3).toFixed(0)} kB packed, ${(main!.unpacked / 1e3).toFixed(0)} kB unpacked`);
    for (const needed of ['package/dist/index.js', 'package/dist/index.d.ts', 'package/dist/cli/main.js', 'package/crates/northstar-native/index.cjs', 'package/crates/northstar-native/index.d.cts', 'package/README.md', 'package/LICENSE']) {
      expect(list).toContain(needed);
    }
    const unwanted = list.filter((f) => /\.test\.|\.node$|\.rs$|\.map$|\/fuzz\/|\/golden\/|\/baselines\/|^package\/(ts|bench|hard|scripts|crates\/northstar-native\/src)\/|^package\/dist\/(bench|hard|testing)\//.test(f));
    expect(unwanted).toEqual([]);
    // The staged manifest a user's npm reads: no scripts to warn of, no dev dependencies, one optional package per built platform.
    const staged = JSON.parse(fs.readFileSync(nodePath.join(work, 'out', 'stage', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(staged.scripts).toBeUndefined();
    expect(staged.devDependencies).toBeUndefined();
    const optional = (staged.optionalDependencies ?? {}) as Record<string, string>;
    for (const t of tarballs.values()) if (t.name !== 'northstardb') expect(optional[t.name]).toBe(manifest.version);
  });

  it.runIf(addonBuilt || nativeRequired)('with the platform package, cargo off PATH: native kernels from ESM and CommonJS, the CLI, and types for both', () => {
    const platform = platformPackage();
    expect(platform, 'no platform package was made: is the addon built?').toBeDefined();
    expect(platform!.paths.filter((f) => f.endsWith('.node'))).toHaveLength(1);

    const dir = nodePath.join(work, 'with-binary');
    project(dir, [tarballs.get('northstardb')!.file, platform!.file]);
    writeUserFiles(dir);
    const esm = runProgram(dir, 'esm.mjs', 'esm.ndb');
    const cjs = runProgram(dir, 'cjs.cjs', 'cjs.ndb');
    expect(esm).toEqual({ implementation: 'native', value: 'hello', stderr: '' });
    expect(cjs).toEqual({ implementation: 'native', value: 'hello', stderr: '' });

    const help = ok(sh('npx', ['--no-install', 'northstar', '--help'], { cwd: dir, env: userEnv() }), 'npx northstar --help');
    expect(help.stdout).toContain('Usage: northstar');
    expect(help.stdout).not.toMatch(/^\s+bench\b/m); // a developer tool, not shipped
    const verify = ok(sh('npx', ['--no-install', 'northstar', 'verify', 'esm.ndb'], { cwd: dir, env: userEnv() }), 'npx northstar verify');
    expect(verify.stdout).toMatch(/\bok\b/i);
    expect(verify.stderr).toBe('');

    ok(sh(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, env: userEnv() }), 'tsc on an ESM and a CommonJS consumer');
  }, 120_000);

  it('with the main package alone: the fallback works, says so once on stderr, and NORTHSTAR_QUIET=1 hides it', () => {
    const dir = nodePath.join(work, 'main-only');
    project(dir, [tarballs.get('northstardb')!.file]);
    writeUserFiles(dir);
    const esm = runProgram(dir, 'esm.mjs', 'esm.ndb');
    expect(esm.implementation).toBe('fallback');
    expect(esm.value).toBe('hello');
    const notice = esm.stderr.split('\n').filter(Boolean);
    expect(notice).toHaveLength(1);
    expect(notice[0]).toMatch(/^northstardb: using the pure-TypeScript kernels.*northstardb-[a-z0-9-]+ is not installed.*NORTHSTAR_QUIET=1/);
    const cjs = runProgram(dir, 'cjs.cjs', 'cjs.ndb', { NORTHSTAR_QUIET: '1' });
    expect(cjs).toEqual({ implementation: 'fallback', value: 'hello', stderr: '' });
    const verify = ok(sh('npx', ['--no-install', 'northstar', 'verify', 'esm.ndb'], { cwd: dir, env: userEnv() }), 'npx northstar verify');
    expect(verify.stdout).toMatch(/\bok\b/i);
    expect(verify.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  }, 120_000);
});
