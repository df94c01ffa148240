// Hardening §6: golden files, the format-compatibility guard (issue 5).
//
// hard/format/golden/v<N>/ holds small databases and their logs written by the
// code of format version N, and manifest.json with what they contain: for each
// database its txn id, entry count, and the state hash (stateHashOf,
// ts/log/replay.ts) of the latest commit and of every retained snapshot. Every
// later version of the code must open them (on a copy: opening may recover and
// write), read back exactly those hashes, time-travel to every snapshot, replay
// the log to the same hash, and pass verify(). The files are never regenerated
// in place: a new format version adds a directory beside the old ones (the README
// in hard/format/golden/ says when and how: `node scripts/golden.mjs`).
//
// A version the code no longer reads (format 0 since format 1) must instead be
// refused whole with UnsupportedFormat, leaving the files untouched, and the
// migration the message names must work: the commit log's format did not
// change, so replaying it and putting the entries into a new database gives
// the manifest's latest state hash.
//
// The databases: empty (default page size), small (one commit), overflow (values
// of several overflow pages, replaced and deleted), history (30 commits with
// checkpoints between them) and replay (a crash image: the last commits are only
// in the log, so opening must replay them).

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { open, type Database } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import { FORMAT_VERSION } from '../format/constants.js';
import { RECORD_VERSION } from '../format/record.js';
import { FaultyFileSystem } from '../io/faulty.js';
import { replay, stateHashOf } from '../log/replay.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { removeDir, repoRoot, rng, randInt, tempDir } from '../testing/rng.js';

export const GOLDEN_ROOT = nodePath.join(repoRoot, 'hard', 'format', 'golden');

export interface GoldenDatabase {
  name: string;
  /** What the database exercises. */
  description: string;
  /** File names inside the version directory. */
  db: string;
  log: string;
  pageSize: number;
  /** The txn id and entry count open must find. */
  txnId: number;
  entries: number;
  /** stateHashOf of the latest commit and of every retained snapshot (txn id → hash). */
  latestHash: string;
  snapshots: Record<string, string>;
  /** sha256 of the committed files: the test checks they are the ones described. */
  sha256: { db: string; log: string };
}

export interface GoldenManifest {
  formatVersion: number;
  recordVersion: number;
  generatedBy: string;
  databases: GoldenDatabase[];
}

type Model = Map<string, Buffer>;
const hashOf = (m: Model): string => stateHashOf([...m].map(([k, v]) => [Buffer.from(k, 'hex'), v] as [Uint8Array, Uint8Array]));

interface Made {
  description: string;
  pageSize: number;
  files: FaultyFileSystem;
  path: string;
  /** Model after every commit, by txn id (0 = empty). */
  models: Model[];
}

/**
 * Applies puts (value) and deletes (null) as one commit to db, and records the
 * model under the txn id commit returns (a commit that changes nothing, e.g.
 * deletes of absent keys, commits nothing and returns the current id).
 */
function commit(db: Database, models: Model[], ops: Array<[string, Buffer | null]>): void {
  const m = new Map(models.at(-1)!);
  const w = db.beginWrite();
  for (const [k, v] of ops) {
    const key = Buffer.from(k);
    if (v === null) {
      w.del(key);
      m.delete(key.toString('hex'));
    } else {
      w.put(key, v);
      m.set(key.toString('hex'), v);
    }
  }
  const txnId = w.commit();
  models[txnId] = m;
}

/** Deterministic bytes of a value: n bytes from tag. */
function valueOf(n: number, tag: number): Buffer {
  const r = rng(tag, 99);
  const v = Buffer.alloc(n);
  for (let i = 0; i < n; i++) v[i] = randInt(r, 256);
  return v;
}

const MAKERS: Record<string, () => Made> = {
  empty: () => {
    const files = new FaultyFileSystem();
    const path = '/golden/empty.ndb';
    open(path, { fileSystem: files }).close();
    return { description: 'a new database, closed: two metas at txn 0 and a log holding only its header (default page size)', pageSize: 16384, files, path, models: [new Map()] };
  },
  small: () => {
    const files = new FaultyFileSystem();
    const path = '/golden/small.ndb';
    const db = open(path, { fileSystem: files, pageSize: 4096 });
    const models: Model[] = [new Map()];
    commit(db, models, Array.from({ length: 25 }, (_, i) => [`user:${String(i).padStart(3, '0')}`, Buffer.from(JSON.stringify({ id: i, name: `name ${i}` }))]));
    db.close();
    return { description: 'one commit of 25 small keys in a single leaf', pageSize: 4096, files, path, models };
  },
  overflow: () => {
    const files = new FaultyFileSystem();
    const path = '/golden/overflow.ndb';
    const db = open(path, { fileSystem: files, pageSize: 4096 });
    const models: Model[] = [new Map()];
    const inline = Array.from({ length: 200 }, (_, i): [string, Buffer] => [`row:${String(i).padStart(4, '0')}`, valueOf(20 + (i % 90), i)]);
    commit(db, models, [...inline, ['blob:a', valueOf(5000, 1)], ['blob:b', valueOf(20_000, 2)], ['blob:c', valueOf(70_000, 3)], ['blob:d', valueOf(1010, 4)]]);
    commit(db, models, [['blob:b', valueOf(9000, 5)], ['blob:c', null], ['blob:e', valueOf(4057, 6)], ['row:0007', null]]);
    db.close();
    return { description: 'values on overflow chains (1 to 18 pages) beside inline ones; a second commit replaces and deletes some', pageSize: 4096, files, path, models };
  },
  history: () => {
    const files = new FaultyFileSystem();
    const path = '/golden/history.ndb';
    const db = open(path, { fileSystem: files, pageSize: 4096, checkpoint: { commits: 10 } });
    const models: Model[] = [new Map()];
    const r = rng(6, 6);
    for (let t = 1; t <= 30; t++) {
      const ops: Array<[string, Buffer | null]> = [];
      for (let i = 0, n = 1 + randInt(r, 6); i < n; i++) {
        const k = `acct:${String(randInt(r, 40)).padStart(2, '0')}`;
        ops.push([k, r() < 0.25 ? null : valueOf(randInt(r, 300), t * 100 + i)]);
      }
      if (t % 7 === 0) ops.push([`big:${t}`, valueOf(6000, t)]);
      commit(db, models, ops);
    }
    db.close();
    return { description: '30 commits of puts and deletes over 40 keys, automatic checkpoints every 10: every snapshot retained for time travel, a freelist and a history chain', pageSize: 4096, files, path, models };
  },
  replay: () => {
    const files = new FaultyFileSystem();
    const path = '/golden/replay.ndb';
    const db = open(path, { fileSystem: files, pageSize: 4096 });
    const models: Model[] = [new Map()];
    for (let t = 1; t <= 9; t++) {
      commit(db, models, Array.from({ length: 12 }, (_, i): [string, Buffer | null] => [`k${(t * 5 + i) % 30}`, i === 11 ? null : valueOf(40 + i, t * 50 + i)]));
      if (t === 5) db.checkpoint();
    }
    // Crash: what a power cut leaves (every unsynced write dropped). Commits 6–9 are durable in the log only.
    const image = files.crash(() => 'drop');
    db.close();
    return { description: 'a crash image: checkpoint at txn 5, commits 6 to 9 only in the log, which open must replay', pageSize: 4096, files: image, path, models };
  },
};

/** What open must find in a database directory; throws a description of the first difference. */
function readBack(dbPath: string, expected: { txnId: number; entries: number; latestHash: string; snapshots: Record<string, string> }): { snapshots: number } {
  const db = open(dbPath);
  try {
    if (db.txnId !== expected.txnId) throw new Error(`txn id ${db.txnId}, expected ${expected.txnId}`);
    const r = db.beginRead();
    try {
      const latest = stateHashOf(r.scan());
      if (latest !== expected.latestHash) throw new Error(`latest state hash ${latest}, expected ${expected.latestHash}`);
      if (db.stats().entries !== expected.entries) throw new Error(`${db.stats().entries} entries, expected ${expected.entries}`);
    } finally {
      r.close();
    }
    let snapshots = 0;
    for (const [txn, hash] of Object.entries(expected.snapshots)) {
      const s = db.beginRead({ txnId: Number(txn) });
      try {
        const got = stateHashOf(s.scan());
        if (got !== hash) throw new Error(`snapshot ${txn}: state hash ${got}, expected ${hash}`);
        snapshots++;
      } finally {
        s.close();
      }
    }
    const report = db.verify();
    if (!report.ok) throw new Error(`verify: ${report.problems.map((p) => p.message).join('; ')}`);
    db.close();
    const replayed = replay(`${dbPath}.log`);
    if (replayed.txnId !== expected.txnId || replayed.stateHash !== expected.latestHash) {
      throw new Error(`replay of the log: txn ${replayed.txnId} hash ${replayed.stateHash}, expected txn ${expected.txnId} hash ${expected.latestHash}`);
    }
    return { snapshots };
  } finally {
    db.close();
  }
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * Writes the golden databases of the current format version into
 * hard/format/golden/v<FORMAT_VERSION>/ with their manifest. Refuses to touch
 * an existing directory unless `force`: golden files of a released format are
 * never rewritten.
 */
export function regenerate(options: { force?: boolean; root?: string } = {}): string {
  const dir = nodePath.join(options.root ?? GOLDEN_ROOT, `v${FORMAT_VERSION}`);
  if (fs.existsSync(dir) && !options.force) {
    throw new Error(`${dir} exists: golden files of format v${FORMAT_VERSION} are never rewritten (a new format version gets its own directory); --force only while v${FORMAT_VERSION} is unreleased`);
  }
  // Written beside the target and renamed at the end: a failed run leaves nothing behind.
  const staging = `${dir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  const scratch = tempDir('golden');
  const databases: GoldenDatabase[] = [];
  try {
    for (const [name, make] of Object.entries(MAKERS)) {
      const m = make();
      const dbBytes = m.files.bytes(m.path);
      const logBytes = m.files.bytes(`${m.path}.log`);
      const last = m.models.at(-1)!;
      const snapshots: Record<string, string> = {};
      m.models.forEach((model, txn) => (snapshots[String(txn)] = hashOf(model)));
      const entry: GoldenDatabase = {
        name,
        description: m.description,
        db: `${name}.ndb`,
        log: `${name}.ndb.log`,
        pageSize: m.pageSize,
        txnId: m.models.length - 1,
        entries: last.size,
        latestHash: hashOf(last),
        snapshots,
        sha256: { db: sha256(dbBytes), log: sha256(logBytes) },
      };
      // The model's hashes are what the code must read back from its own files.
      const check = nodePath.join(scratch, entry.db);
      fs.writeFileSync(check, dbBytes);
      fs.writeFileSync(`${check}.log`, logBytes);
      readBack(check, entry);
      fs.writeFileSync(nodePath.join(staging, entry.db), dbBytes);
      fs.writeFileSync(nodePath.join(staging, entry.log), logBytes);
      databases.push(entry);
    }
  } catch (err) {
    removeDir(staging);
    throw err;
  } finally {
    removeDir(scratch);
  }
  const pkg = JSON.parse(fs.readFileSync(nodePath.join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  const manifest: GoldenManifest = { formatVersion: FORMAT_VERSION, recordVersion: RECORD_VERSION, generatedBy: `${pkg.name} ${pkg.version}`, databases };
  fs.writeFileSync(nodePath.join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(staging, dir);
  return dir;
}

/** Every golden version directory (v0, v1, …) that has a manifest. */
export function goldenVersions(root = GOLDEN_ROOT): string[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((d) => /^v\d+$/.test(d) && fs.existsSync(nodePath.join(root, d, 'manifest.json')))
    .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
}

export interface GoldenResult {
  version: string;
  name: string;
  ok: boolean;
  snapshots: number;
  /** A retired format version: open refused it with UnsupportedFormat and the migration worked. */
  refused: boolean;
  problem?: string;
}

/**
 * A database of a retired format version: open must throw UnsupportedFormat
 * naming the migration, change neither file, and the migration must work
 * (replay the log, put its entries into a new database: the latest state hash).
 */
function checkRefused(dbPath: string, scratch: string, expected: GoldenDatabase): void {
  const before = [fs.readFileSync(dbPath), fs.readFileSync(`${dbPath}.log`)];
  let thrown: unknown;
  try {
    open(dbPath).close();
  } catch (err) {
    thrown = err;
  }
  if (!(thrown instanceof NorthstarError) || thrown.code !== 'UnsupportedFormat') {
    throw new Error(`open of a retired format must throw UnsupportedFormat, got ${thrown === undefined ? 'no error' : String(thrown)}`);
  }
  if (!/replay/.test(thrown.message)) throw new Error(`the UnsupportedFormat message does not say how to migrate: ${thrown.message}`);
  if (!before[0]!.equals(fs.readFileSync(dbPath)) || !before[1]!.equals(fs.readFileSync(`${dbPath}.log`))) throw new Error('the refused open changed the files');
  const replayed = replay(`${dbPath}.log`);
  if (replayed.txnId !== expected.txnId || replayed.stateHash !== expected.latestHash) {
    throw new Error(`replay of the log: txn ${replayed.txnId} hash ${replayed.stateHash}, expected txn ${expected.txnId} hash ${expected.latestHash}`);
  }
  const migrated = open(nodePath.join(scratch, `migrated-${expected.db}`), { pageSize: expected.pageSize });
  try {
    const w = migrated.beginWrite();
    for (const [k, v] of replayed.state.entries()) w.put(k, v);
    w.commit();
    const r = migrated.beginRead();
    const hash = stateHashOf(r.scan());
    r.close();
    if (hash !== expected.latestHash) throw new Error(`migrated database: state hash ${hash}, expected ${expected.latestHash}`);
    const report = migrated.verify();
    if (!report.ok) throw new Error(`migrated database: verify: ${report.problems.map((p) => p.message).join('; ')}`);
  } finally {
    migrated.close();
  }
}

/** Checks every golden database of every version on a copy; one result per database. */
export function checkGolden(root = GOLDEN_ROOT): GoldenResult[] {
  const results: GoldenResult[] = [];
  for (const version of goldenVersions(root)) {
    const dir = nodePath.join(root, version);
    const manifest = JSON.parse(fs.readFileSync(nodePath.join(dir, 'manifest.json'), 'utf8')) as GoldenManifest;
    for (const d of manifest.databases) {
      const scratch = tempDir('golden-check');
      try {
        const dbBytes = fs.readFileSync(nodePath.join(dir, d.db));
        const logBytes = fs.readFileSync(nodePath.join(dir, d.log));
        if (sha256(dbBytes) !== d.sha256.db || sha256(logBytes) !== d.sha256.log) throw new Error('the files are not the ones the manifest describes (sha256 differs)');
        const path = nodePath.join(scratch, d.db);
        fs.writeFileSync(path, dbBytes);
        fs.writeFileSync(`${path}.log`, logBytes);
        if (manifest.formatVersion < FORMAT_VERSION) {
          checkRefused(path, scratch, d);
          results.push({ version, name: d.name, ok: true, snapshots: 0, refused: true });
        } else {
          const { snapshots } = readBack(path, d);
          results.push({ version, name: d.name, ok: true, snapshots, refused: false });
        }
      } catch (err) {
        results.push({ version, name: d.name, ok: false, snapshots: 0, refused: false, problem: err instanceof Error ? err.message : String(err) });
      } finally {
        removeDir(scratch);
      }
    }
  }
  return results;
}

export async function runGolden(opts: SuiteOptions): Promise<Figures> {
  const results = checkGolden();
  for (const r of results) if (!r.ok) opts.log(`FAIL ${r.version}/${r.name}: ${r.problem}`);
  return {
    goldenVersions: goldenVersions().length,
    goldenDatabases: results.length,
    /** Databases of retired format versions, refused with UnsupportedFormat and migrated through replay. */
    retiredRefused: results.filter((r) => r.refused).length,
    snapshotsChecked: results.reduce((n, r) => n + r.snapshots, 0),
    hashMismatches: results.filter((r) => !r.ok).length,
    failures: results.filter((r) => !r.ok).length + (results.length === 0 ? 1 : 0),
  };
}

export const goldenSuite: HardeningSuite = { name: 'golden', run: runGolden };
