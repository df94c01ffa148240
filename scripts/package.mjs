// Builds the npm packages a user installs: the main package `northstardb` and
// one package per platform, `northstardb-<platform>-<arch>[-<abi>]`, holding
// the prebuilt addon (docs/packaging.md).
//
//   node scripts/package.mjs [--artifacts DIR] [--out DIR] [--all]
//
// --artifacts  folder holding built addons named northstar-native.<abi>.node
//              (searched recursively; default crates/northstar-native, where
//              `npm run build` leaves this machine's build)
// --out        where the tarballs go (default target/package); the staging
//              folder out/stage is made afresh on every run
// --all        every target in package.json "napi.targets" must have its
//              addon (the release); without it, the platform packages are the
//              targets whose addon is in --artifacts (a local proof)
// --main-only  no platform package: the main package alone, without
//              optionalDependencies (a machine without the addon proving the
//              fallback)
//
// The steps, in order:
// 1. Copy the files `npm pack` would ship into out/stage (package.json
//    "files" chooses them: compiled JS and .d.ts, the generated loader, specs,
//    user docs, README, LICENSE; never tests, benchmarks, Rust sources or a
//    .node file). dist/ must be built (npm run build).
// 2. In the staged copy only, drop what a user's install must not see:
//    "scripts" (npm 11 warns of a `prepare` it will not run) and
//    "devDependencies" (`npm pkg delete`).
// 3. @napi-rs/cli does the per-platform work on the staged copy:
//    `napi create-npm-dirs` (stage/npm/<abi>/package.json with os, cpu and
//    libc set), `napi artifacts` (each addon into its package) and
//    `napi pre-publish --skip-optional-publish` (the main package lists the
//    platform packages as optionalDependencies at its own version; publishing
//    is left to the caller).
// 4. `npm pack` each platform package and the main package into out/.
//
// Prints one JSON line per tarball: { name, file, packed, unpacked, files,
// paths } (paths: every file in it, as npm lists them).
// Nothing outside out/ is written. The release workflow
// (.github/workflows/release.yml) publishes the tarballs this makes.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** napi-rs's package suffix of each Rust target triple package.json "napi.targets" may list. */
const ABI_OF_TRIPLE = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'x86_64-unknown-linux-musl': 'linux-x64-musl',
  'aarch64-unknown-linux-musl': 'linux-arm64-musl',
  'x86_64-apple-darwin': 'darwin-x64',
  'aarch64-apple-darwin': 'darwin-arm64',
  'x86_64-pc-windows-msvc': 'win32-x64-msvc',
  'aarch64-pc-windows-msvc': 'win32-arm64-msvc',
};

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const { values: opts } = parseArgs({
  options: {
    artifacts: { type: 'string', default: join(root, 'crates', 'northstar-native') },
    out: { type: 'string', default: join(root, 'target', 'package') },
    all: { type: 'boolean', default: false },
    'main-only': { type: 'boolean', default: false },
  },
});
const out = resolve(opts.out);
const artifacts = resolve(opts.artifacts);
const stage = join(out, 'stage');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const binaryName = manifest.napi.binaryName;

if (!existsSync(join(root, 'dist', 'index.js'))) fail('dist/ is not built: run npm run build first');

// 1. The main package's files as `npm pack` chooses them, copied into the stage.
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
for (const { path } of JSON.parse(npm(['pack', '--dry-run', '--ignore-scripts', '--json'], root))[0].files) {
  mkdirSync(dirname(join(stage, path)), { recursive: true });
  copyFileSync(join(root, path), join(stage, path));
}

// 2. What a user's install must not see.
npm(['pkg', 'delete', 'scripts', 'devDependencies'], stage);

// 3. Platform packages, with @napi-rs/cli. Locally, only the targets built here.
if (opts['main-only']) {
  report(pack(stage, out));
  process.exit(0);
}
const available = new Set(findAddons(artifacts).map((file) => file.slice(binaryName.length + 1, -'.node'.length)));
const targets = manifest.napi.targets.filter((triple) => opts.all || available.has(abiOf(triple)));
const missing = manifest.napi.targets.filter((triple) => !available.has(abiOf(triple)));
if (opts.all && missing.length > 0) fail(`no addon in ${artifacts} for ${missing.join(', ')}`);
if (targets.length === 0) fail(`no addon named ${binaryName}.<abi>.node in ${artifacts}: build one with npm run build`);
if (!opts.all) {
  // The staged manifest only: the main package then depends on exactly the platform packages made here.
  const staged = JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8'));
  staged.napi.targets = targets;
  writeFileSync(join(stage, 'package.json'), JSON.stringify(staged, null, 2) + '\n');
}
napi(['create-npm-dirs']);
napi(['artifacts', '--output-dir', artifacts]);
napi(['pre-publish', '--skip-optional-publish', '--no-gh-release', '--tag-style', 'npm']);
// `napi artifacts` also leaves a copy of an addon at the package root, for
// loaders that sit there; ours is in crates/northstar-native/ and "files"
// would leave the copy out anyway. Removed so the stage is what ships.
for (const file of readdirSync(stage)) if (file.endsWith('.node')) rmSync(join(stage, file));

// 4. Tarballs.
const made = [];
for (const triple of targets) made.push(pack(join(stage, 'npm', abiOf(triple)), out));
made.push(pack(stage, out));
for (const p of made) report(p);

/** The JSON line of one tarball (npm pack's description of it). */
function report(p) {
  console.log(JSON.stringify({ name: p.name, file: join(out, p.filename), packed: p.size, unpacked: p.unpackedSize, files: p.entryCount, paths: p.files.map((f) => f.path) }));
}

/** The `<platform>-<arch>[-<abi>]` suffix napi-rs gives a Rust target triple (the ones package.json may list). */
function abiOf(triple) {
  const abi = ABI_OF_TRIPLE[triple];
  if (abi === undefined) fail(`unknown target ${triple}: add it to ABI_OF_TRIPLE in scripts/package.mjs`);
  return abi;
}

/** `npm pack` of dir into dest, scripts off; returns npm's JSON description of the tarball. */
function pack(dir, dest) {
  const result = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dest], dir);
  return JSON.parse(result)[0];
}

function napi(args) {
  const manifestPath = require.resolve('@napi-rs/cli/package.json');
  const bin = JSON.parse(readFileSync(manifestPath, 'utf8')).bin.napi;
  return run(process.execPath, [join(dirname(manifestPath), bin), ...args, '--cwd', stage], stage);
}

function npm(args, cwd) {
  const npmCli = process.env.npm_execpath && existsSync(process.env.npm_execpath) ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
  return run(npmCli[0], [...npmCli[1], ...args], cwd, process.platform === 'win32' && npmCli[0] === 'npm');
}

function run(command, args, cwd, shell = false) {
  // (No tar or other tool whose flavour differs by OS: only node, npm and napi.)
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', shell, maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) fail(`${command} ${args.join(' ')} failed in ${cwd}:\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ?? ''}`);
  return r.stdout;
}

/** Addon files named <binaryName>.<abi>.node under dir, at any depth (CI downloads artifacts into subfolders). */
function findAddons(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map((path) => String(path).split(/[\\/]/).pop())
    .filter((name) => name.startsWith(`${binaryName}.`) && name.endsWith('.node'));
}

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}
