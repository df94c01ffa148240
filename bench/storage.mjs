// Storage peer benchmark (issue #14, "Benchmarks"): one workload on NorthstarDB
// (native kernels and the pure-TypeScript fallback), lmdb-js, better-sqlite3
// (WAL, synchronous=FULL) and classic-level, each engine in its own child
// process and its own temp dir (removed after), through each engine's public
// API as its users write it; plus a bare write + fdatasync floor in the same
// run. Prints the table with the date, machine and package versions; writes
// JSON (--json) and an SVG chart (--svg). Needs `npm run build` first.
//
//   node bench/storage.mjs [--keys 1000000] [--rounds 3] [--engines native,fallback,lmdb,sqlite,level]
//                          [--no-peer] [--json out.json] [--svg out.svg]
//
// Workload: 16-byte keys, 128-byte values, every commit durable.
//  1. Bulk load in 10k-key transactions, sorted then shuffled keys, into a new
//     database each; min(3, rounds) rounds, median; each transaction timed from
//     its first put to its durable commit, its batch of keys made before. The
//     shuffled database is the one the rest of the run uses.
//  2. 1-put commits: 1,000 per round, each a put of a random existing key, timed
//     alone: p50 and p99 over all of them.
//  3. 100-put commits of random existing keys: 100 per round, commits/s, median.
//  4. Open + close of the populated database after a clean close: median of 21.
//  5. Hot random gets in one read snapshot (200k probes, after a warm-up pass)
//     and 1,000-row forward scans from 300 random starts, median of the rounds.
//  6. Disk used after all of it, with the database closed: every file the engine
//     keeps (allocated blocks), and the raw data (keys x 144 B) for scale.
//  Also: resident memory with every page hot (fresh process), device bytes per
//  commit and per committed byte (key + value) of the timed 1-put and 100-put
//  commits (/proc/self/io write_bytes - cancelled_write_bytes, background
//  threads included; absent where /proc/self/io is not), sync calls per commit
//  (fsync, fdatasync, msync, sync_file_range counted by `strace -f -c` attached
//  to the process for a separate pass of 200 1-put and 20 100-put commits, so
//  the timed ones run untraced; absent without strace), and for NorthstarDB
//  gets with a page cache a quarter of the file and crash recovery: a child
//  process checkpoints, makes 1,000 durable 1-put commits and kills itself
//  (SIGKILL), then open() is timed, which replays those commits (rounds times).
//  The floor: write + fdatasync of the size of NorthstarDB's 1-put commit record
//  (its log bytes per such commit) over preallocated space, as many times as
//  the 1-put commits, after the first engine and again after the last, p50 and
//  p99 over both (bench/sync_floor.c measures the floor's other cases).
//
// How each engine is used (defaults unless said):
//  - NorthstarDB: open(file, { sync: 'full' }); bulk loads with
//    `await db.write(fn)` (beginWriteAsync / put / commitAsync: the log's
//    fdatasync overlaps the page writes, spec/file_format_v1.md §8.1), the
//    other commits with beginWrite / put / commit (the lower latency for one
//    commit at a time); beginRead / get / scan({ gte, limit }). The extra row
//    "bulk load, sorted keys, commit()" is the sorted load in the second form.
//  - lmdb-js: open({ path, keyEncoding: 'binary', encoding: 'binary' });
//    transactionSync(puts) then `await db.flushed` (with its default
//    overlappingSync a commit returns before its fdatasync); a read is
//    get / getRange in useReadTransaction().
//  - better-sqlite3: journal_mode=WAL, synchronous=FULL; a table
//    kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID; db.transaction() over
//    INSERT OR REPLACE; reads are prepared statements inside BEGIN ... COMMIT,
//    scans `WHERE k >= ? ORDER BY k LIMIT ?` with raw rows.
//  - classic-level: buffer encodings; put / batch with { sync: true }; reads
//    getSync and iterator({ gte, limit }).all() on an explicit snapshot.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PEERS, engineEnv, key, median, option, packageVersion, peerProblem, percentile, rng } from './peer.mjs';
import { deviceCounter } from '../dist/bench/amplification.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => option(args, name, dflt);
const KEYS = Number(opt('keys', 1_000_000));
const ROUNDS = Number(opt('rounds', 3));
const BATCH = 10_000;
const COMMITS_1 = 1_000; // 1-put commits per round
const COMMITS_100 = 100; // 100-put commits per round
const OPENS = 21;
const PROBES = 200_000;
const SCANS = 300;
const VALUE_BYTES = 128;
const PUT_BYTES = 16 + VALUE_BYTES; // bytes a put commits: key + value
const SYNC_PASS_1 = 200; // 1-put commits of the traced pass that counts sync calls
const SYNC_PASS_100 = 20; // 100-put commits of that pass
const CRASH_COMMITS = 1000; // 1-put commits in the log at the crash (the default checkpoint interval)
const SYNC_CALLS = ['fsync', 'fdatasync', 'msync', 'sync_file_range', 'syncfs', 'sync'];
const here = fileURLToPath(import.meta.url);
const phase = process.env.NORTHSTAR_BENCH_PHASE;

const ENGINES = ['native', 'fallback', 'lmdb', 'sqlite', 'level'];

/** Runs a phase in a child process; its last stdout line is its JSON. `killed`: the child ends by SIGKILL, as the crash phase does. */
function runChild(env, { killed = false } = {}) {
  const r = spawnSync(process.execPath, ['--expose-gc', here, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  });
  const ok = killed ? r.signal === 'SIGKILL' : r.status === 0;
  if (!ok) throw new Error(`${env.NORTHSTAR_BENCH_ENGINE ?? ''} ${env.NORTHSTAR_BENCH_PHASE} failed (${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// ---------------------------------------------------------------- the rows

/** Rows of issue #14's table, then the extra ones. `better`: which way wins. */
const ROWS = [
  { k: 'bulkSorted', label: 'bulk load, sorted keys, 10k-key txns (keys/s)', unit: 'rate', better: 'high' },
  { k: 'bulkShuffled', label: 'bulk load, shuffled keys, 10k-key txns (keys/s)', unit: 'rate', better: 'high' },
  { k: 'commit1P50us', label: 'durable 1-put commit p50', unit: 'us', better: 'low', floor: 'p50us' },
  { k: 'commit1P99us', label: 'durable 1-put commit p99', unit: 'us', better: 'low', floor: 'p99us' },
  { k: 'commits100', label: 'durable 100-put commits (random keys) per s', unit: 'rate', better: 'high' },
  { k: 'openCloseMs', label: 'open + close of the populated database', unit: 'ms', better: 'low' },
  { k: 'diskBytes', label: 'disk used after the whole run (all files)', unit: 'bytes', better: 'low' },
  { k: 'hotGet', label: 'hot random get (gets/s)', unit: 'rate', better: 'high' },
  { k: 'scan1000', label: '1,000-row scan from a random start (scans/s)', unit: 'rate', better: 'high' },
];
const EXTRA_ROWS = [
  { k: 'bulkSortedCommit', label: 'bulk load, sorted keys, commit() (keys/s)', unit: 'rate', better: 'high' },
  { k: 'deviceBytesPer1Put', label: 'device bytes written per 1-put commit', unit: 'bytes', better: 'low' },
  { k: 'deviceBytesPer100Put', label: 'device bytes written per 100-put commit', unit: 'bytes', better: 'low' },
  { k: 'deviceAmp1Put', label: 'device bytes written per committed byte, 1-put commits', unit: 'ratio', better: 'low' },
  { k: 'deviceAmp100Put', label: 'device bytes written per committed byte, 100-put commits', unit: 'ratio', better: 'low' },
  { k: 'syncsPer1Put', label: 'sync calls per 1-put commit (strace)', unit: 'count', better: 'low' },
  { k: 'syncsPer100Put', label: 'sync calls per 100-put commit (strace)', unit: 'count', better: 'low' },
  { k: 'recoveryMs', label: `open after a crash, ${CRASH_COMMITS.toLocaleString('en-US')} 1-put commits since the checkpoint`, unit: 'ms', better: 'low' },
  { k: 'rssAfterHot', label: 'resident memory, every page hot', unit: 'bytes', better: 'low' },
  { k: 'coldGet', label: 'cold random get, cache = file/4 (gets/s)', unit: 'rate', better: 'high' },
];

function fmt(x, unit) {
  if (x === undefined || x === null) return '';
  if (unit === 'ratio') return `${x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1)}x`;
  if (unit === 'count') return x.toFixed(2);
  if (unit === 'us') return x >= 1000 ? `${(x / 1000).toFixed(x >= 10_000 ? 1 : 2)} ms` : `${x.toFixed(x >= 100 ? 0 : 1)} µs`;
  if (unit === 'ms') return x >= 10 ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} ms`;
  if (unit === 'bytes') return x >= 10 * 2 ** 20 ? `${(x / 1e6).toFixed(0)} MB` : x >= 2 ** 20 ? `${(x / 1e6).toFixed(1)} MB` : x >= 1e4 ? `${(x / 1e3).toFixed(0)} kB` : `${Math.round(x)} B`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e5) return `${(x / 1e3).toFixed(0)}k`;
  return Math.round(x).toLocaleString('en-US');
}

// ---------------------------------------------------------------- the parent

async function parent() {
  const asked = opt('engines', null)?.split(',') ?? (args.includes('--no-peer') ? ['native', 'fallback'] : ENGINES);
  for (const e of asked) if (!ENGINES.includes(e)) throw new Error(`unknown engine ${e} (${ENGINES.join(', ')})`);
  const machine = describeMachine();
  // The floor: a record of the size NorthstarDB's 1-put commit writes to its
  // log, measured after the first engine and again after the last, so that it
  // spans the run like the engines do.
  const floor = { recordBytes: null, runs: [] };
  const measureFloor = (after) => {
    floor.recordBytes ??= engines.native?.result?.recordBytes ?? engines.fallback?.result?.recordBytes ?? 582;
    const run = runChild({ NORTHSTAR_BENCH_PHASE: 'floor', NORTHSTAR_BENCH_RECORD: String(floor.recordBytes) });
    floor.runs.push({ after, p50us: percentile(run.lat, 0.5), p99us: percentile(run.lat, 0.99), lat: run.lat });
  };
  const engines = {};
  for (const e of asked) {
    const peer = PEERS[e];
    const version = peer ? packageVersion(peer.pkg) : ownVersion();
    engines[e] = { label: peer ? `${peer.label} ${version ?? ''}`.trim() : `NorthstarDB ${e}`, package: peer?.pkg ?? 'northstardb', version };
    const problem = peer ? peerProblem(e) : null;
    if (problem !== null) {
      engines[e].pending = problem;
      console.error(`${e}: pending (${problem})`);
      continue;
    }
    const t0 = Date.now();
    console.error(`${e}: running`);
    engines[e].result = runChild({ NORTHSTAR_BENCH_PHASE: 'main', NORTHSTAR_BENCH_ENGINE: e, ...engineEnv(e) });
    console.error(`${e}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    if (!peer && engines[e].result.implementation !== e) console.error(`warning: asked for ${e}, ran ${engines[e].result.implementation}`);
    if (floor.runs.length === 0) measureFloor(e);
  }
  measureFloor(asked.at(-1));
  const all = floor.runs.flatMap((r) => r.lat);
  for (const r of floor.runs) delete r.lat;
  Object.assign(floor, { commits: all.length, p50us: percentile(all, 0.5), p99us: percentile(all, 0.99) });

  const report = {
    date: new Date().toISOString(),
    machine,
    workload: { keys: KEYS, rounds: ROUNDS, keyBytes: 16, valueBytes: VALUE_BYTES, batch: BATCH, commits1PerRound: COMMITS_1, commits100PerRound: COMMITS_100, opens: OPENS, probes: PROBES, scans: SCANS, syncPass1: SYNC_PASS_1, syncPass100: SYNC_PASS_100, crashCommits: CRASH_COMMITS },
    rawDataBytes: KEYS * (16 + VALUE_BYTES),
    floor,
    engines,
  };
  printTable(report);
  const json = opt('json', null);
  if (json) fs.writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
  const svg = opt('svg', null);
  if (svg) fs.writeFileSync(svg, chart(report));
}

function ownVersion() {
  return JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
}

/** Date-independent facts of this machine, for the table and the JSON. */
function describeMachine() {
  const tmp = fs.realpathSync(os.tmpdir());
  let fsType = 'unknown';
  try {
    let best = '';
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (mount && (tmp === mount || tmp.startsWith(mount.endsWith('/') ? mount : `${mount}/`)) && mount.length >= best.length) {
        best = mount;
        fsType = type;
      }
    }
  } catch {
    // not Linux: the file system stays unknown
  }
  let commit = null;
  try {
    const root = fileURLToPath(new URL('..', import.meta.url));
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'ts', 'crates', 'bench', 'package.json'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dirty) commit += ' (with uncommitted changes)';
  } catch {
    // not a git checkout
  }
  return {
    cpu: os.cpus()[0]?.model?.trim() ?? 'unknown cpu',
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()}`,
    tmpdir: tmp,
    fileSystem: fsType,
    node: process.version,
    commit,
    loadAverage1m: os.loadavg()[0],
  };
}

function printTable(report) {
  const { machine: m, engines, floor } = report;
  const names = Object.keys(engines).filter((e) => engines[e].result);
  console.log(`\n${report.date.slice(0, 10)}: ${report.workload.keys.toLocaleString('en-US')} keys of 16 B, ${VALUE_BYTES}-byte values, ${report.workload.rounds} rounds, every commit durable`);
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${m.os}, ${m.fileSystem} (${m.tmpdir}), Node ${m.node}, load ${m.loadAverage1m.toFixed(2)} at start${m.commit ? `, NorthstarDB at ${m.commit}` : ''}`);
  console.log(`packages: ${Object.values(engines).map((e) => `${e.package} ${e.version ?? '(not installed)'}`).filter((v, i, a) => a.indexOf(v) === i).join(', ')}`);
  for (const e of Object.keys(engines)) if (engines[e].pending) console.log(`pending: ${engines[e].label}: ${engines[e].pending}`);
  const floorHead = ` bare write+fdatasync (${floor.recordBytes} B) |`;
  console.log(`\n| measure |${names.map((e) => ` ${engines[e].label} |`).join('')}${floorHead}`);
  console.log(`|---|${names.map(() => '---:|').join('')}---:|`);
  for (const row of [...ROWS, ...EXTRA_ROWS]) {
    if (names.every((e) => engines[e].result[row.k] === undefined)) continue;
    const best = bestOf(row, names.map((e) => engines[e].result[row.k]));
    const cells = names.map((e) => {
      const v = engines[e].result[row.k];
      if (v === undefined) return ' |';
      return ` ${fmt(v, row.unit)}${v === best && names.length > 1 ? ' *' : ''} |`;
    });
    let last = '';
    if (row.floor) last = ` ${fmt(floor[row.floor], 'us')}`;
    if (row.k === 'diskBytes') last = ` raw data ${fmt(report.rawDataBytes, 'bytes')}`;
    console.log(`| ${row.label} |${cells.join('')}${last} |`);
  }
  for (const e of names) if (engines[e].result.syncsUnavailable) console.log(`${engines[e].label}: sync calls not counted (${engines[e].result.syncsUnavailable})`);
  console.log('\n* best of the engines in this run');
}

function bestOf(row, values) {
  const xs = values.filter((v) => typeof v === 'number');
  return row.better === 'high' ? Math.max(...xs) : Math.min(...xs);
}

/** Each row's figures as bars, scaled to the best engine of the row (1 = best). */
function chart(report) {
  const { engines, machine: m, floor } = report;
  const names = Object.keys(engines).filter((e) => engines[e].result);
  const colors = { native: '#1f6feb', fallback: '#8ab4f8', lmdb: '#d97706', sqlite: '#15803d', level: '#9333ea' };
  const rows = ROWS.filter((row) => names.some((e) => engines[e].result[row.k] !== undefined));
  const barH = 14;
  const rowH = names.length * barH + 34;
  const left = 300;
  const barW = 420;
  const top = 86;
  const pending = Object.keys(engines).filter((e) => engines[e].pending);
  const height = top + rows.length * rowH + 20 + pending.length * 16;
  const width = left + barW + 150;
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="10" y="20" font-size="15" font-weight="bold">${esc(`Storage peers, ${report.workload.keys.toLocaleString('en-US')} keys (16 B keys, ${VALUE_BYTES} B values), durable commits`)}</text>`);
  out.push(`<text x="10" y="38">${esc(`${report.date.slice(0, 10)}; ${m.cpu}, ${m.cores} cores, ${m.os}, ${m.fileSystem}, Node ${m.node}`)}</text>`);
  out.push(`<text x="10" y="56">${esc('Bar: the engine against the best of the row (full bar = best; shorter is worse, whichever way the unit runs).')}</text>`);
  let x = 10;
  for (const e of names) {
    out.push(`<rect x="${x}" y="66" width="12" height="12" fill="${colors[e]}"/><text x="${x + 16}" y="76">${esc(engines[e].label)}</text>`);
    x += 24 + engines[e].label.length * 6.5;
  }
  rows.forEach((row, i) => {
    const y0 = top + i * rowH;
    const best = bestOf(row, names.map((e) => engines[e].result[row.k]));
    let title = row.label;
    if (row.floor) title += ` (bare write+fdatasync: ${fmt(floor[row.floor], 'us')})`;
    if (row.k === 'diskBytes') title += ` (raw data ${fmt(report.rawDataBytes, 'bytes')})`;
    out.push(`<text x="10" y="${y0 + 14}" font-weight="bold">${esc(title)}</text>`);
    names.forEach((e, j) => {
      const v = engines[e].result[row.k];
      const y = y0 + 20 + j * barH;
      out.push(`<text x="${left - 6}" y="${y + 10}" text-anchor="end" fill="#444">${esc(engines[e].label)}</text>`);
      if (typeof v !== 'number') return;
      const score = row.better === 'high' ? v / best : best / v;
      const w = Math.max(1, score * barW);
      out.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH - 3}" fill="${colors[e]}"/>`);
      out.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + 10}">${esc(`${fmt(v, row.unit)} (${score === 1 ? 'best' : `${score >= 0.1 ? score.toFixed(2) : score.toPrecision(2)}x`})`)}</text>`);
    });
  });
  pending.forEach((e, i) => {
    out.push(`<text x="10" y="${top + rows.length * rowH + 10 + i * 16}" fill="#a00">${esc(`pending: ${engines[e].label}: ${engines[e].pending}`)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------- the engines

/**
 * One interface over the engines: open(dir) a database kept in directory `dir`
 * (created empty); commit(entries) one durable transaction of puts (may return
 * a promise); reader() a snapshot with get and a bounded forward scan.
 */
async function engine(name) {
  if (name === 'lmdb') {
    const { open } = await import('lmdb');
    return {
      open(dir) {
        const db = open({ path: path.join(dir, 'data.mdb'), keyEncoding: 'binary', encoding: 'binary', compression: false });
        return {
          commit(entries) {
            db.transactionSync(() => {
              for (const [k, v] of entries) db.put(k, v);
            });
            return db.flushed;
          },
          reader() {
            const txn = db.useReadTransaction();
            return {
              get: (k) => db.get(k, { transaction: txn }),
              scan: (start, limit) => {
                let n = 0;
                for (const _ of db.getRange({ start, limit, transaction: txn })) n++;
                return n;
              },
              close: () => txn.done(),
            };
          },
          close: () => db.close(),
        };
      },
    };
  }
  if (name === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    return {
      open(dir) {
        const db = new Database(path.join(dir, 'data.sqlite'));
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.exec('CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID');
        const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
        const get = db.prepare('SELECT v FROM kv WHERE k = ?').pluck();
        const scan = db.prepare('SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?').raw();
        const commit = db.transaction((entries) => {
          for (const [k, v] of entries) put.run(k, v);
        });
        return {
          commit,
          reader() {
            db.exec('BEGIN');
            return {
              get: (k) => get.get(k),
              scan: (start, limit) => scan.all(start, Number.isFinite(limit) ? limit : -1).length,
              close: () => db.exec('COMMIT'),
            };
          },
          close: () => db.close(),
        };
      },
    };
  }
  if (name === 'level') {
    const { ClassicLevel } = await import('classic-level');
    return {
      async open(dir) {
        const db = new ClassicLevel(path.join(dir, 'level'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
        await db.open();
        return {
          commit(entries) {
            if (entries.length === 1) return db.put(entries[0][0], entries[0][1], { sync: true });
            return db.batch(
              entries.map(([k, v]) => ({ type: 'put', key: k, value: v })),
              { sync: true },
            );
          },
          reader() {
            const snapshot = db.snapshot();
            return {
              get: (k) => db.getSync(k, { snapshot }),
              scan: async (start, limit) => (await db.iterator({ gte: start, limit: Number.isFinite(limit) ? limit : -1, snapshot }).all()).length,
              close: () => snapshot.close(),
            };
          },
          close: () => db.close(),
        };
      },
    };
  }
  const { open, implementation } = await import('../dist/index.js');
  return {
    implementation,
    open(dir, cacheSize) {
      const db = open(path.join(dir, 'data.ndb'), { sync: 'full', ...(cacheSize ? { cacheSize } : {}) });
      return {
        commit(entries) {
          const w = db.beginWrite();
          for (const [k, v] of entries) w.put(k, v);
          w.commit();
        },
        load(entries) {
          return db.write((w) => {
            for (const [k, v] of entries) w.put(k, v);
          });
        },
        reader() {
          const r = db.beginRead();
          return {
            get: (k) => r.get(k),
            scan: (start, limit) => {
              let n = 0;
              for (const _ of r.scan({ gte: start, limit })) n++;
              return n;
            },
            close: () => r.close(),
          };
        },
        stats: () => db.stats(),
        close: () => db.close(),
      };
    },
  };
}

/**
 * Bytes this process has caused to be written to storage so far, or null: the
 * micro suite's counter (/proc/self/io write_bytes less cancelled_write_bytes,
 * ts/bench/amplification.ts).
 */
const deviceWriteBytes = deviceCounter().read;

/**
 * Sync system calls this process (every thread) makes while `fn` runs:
 * `strace -f -c` attached to it for that time only. { calls: { fdatasync: n, … } }
 * or { unavailable: why }.
 */
async function countSyncs(fn) {
  const out = path.join(os.tmpdir(), `northstar-bench-strace-${process.pid}.txt`);
  let tracer;
  try {
    tracer = spawn('strace', ['-f', '-c', '-U', 'name,calls', '-e', `trace=${SYNC_CALLS.join(',')}`, '-o', out, '-p', String(process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    return { unavailable: `strace did not start (${err.message})` };
  }
  let err = '';
  const attached = await new Promise((resolve) => {
    tracer.on('error', (e) => resolve(`strace did not start (${e.message})`));
    tracer.on('exit', (code) => resolve(`strace exited (${code}): ${err.trim().split('\n')[0] ?? ''}`));
    tracer.stderr.on('data', (d) => {
      err += d;
      if (/attached/.test(err)) resolve(null);
    });
  });
  if (attached !== null) return { unavailable: attached };
  try {
    await fn();
  } finally {
    const exited = new Promise((resolve) => tracer.on('exit', resolve));
    tracer.kill('SIGINT');
    await exited;
  }
  try {
    const calls = {};
    for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
      const m = /^(\w+)\s+(\d+)\s*$/.exec(line.trim());
      if (m && SYNC_CALLS.includes(m[1])) calls[m[1]] = Number(m[2]);
    }
    return { calls };
  } catch (e) {
    return { unavailable: `no strace summary (${e.message})` };
  } finally {
    fs.rmSync(out, { force: true });
  }
}

const totalCalls = (calls) => Object.values(calls).reduce((a, b) => a + b, 0);

/** Allocated and apparent bytes of the files under `dir`, and each file's allocated bytes. */
function diskUsage(dir) {
  let allocated = 0;
  let apparent = 0;
  const files = {};
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath ?? entry.path, entry.name);
    const st = fs.statSync(file);
    allocated += st.blocks * 512;
    apparent += st.size;
    files[path.relative(dir, file)] = st.blocks * 512;
  }
  return { allocated, apparent, files };
}

function valueFor(i) {
  const v = Buffer.alloc(VALUE_BYTES, 0x61);
  v.writeUInt32LE(i >>> 0, 0);
  return v;
}

async function mainPhase(name) {
  const eng = await engine(name);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `northstar-bench-${name}-`));
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  const out = { implementation: eng.implementation ?? name };
  const fresh = (sub) => {
    const d = path.join(root, sub);
    fs.rmSync(d, { recursive: true, force: true });
    fs.mkdirSync(d);
    return d;
  };
  try {
    // 1. Bulk loads.
    const load = async (dir, order, form = 'load') => {
      const db = await eng.open(dir);
      // Only the transactions are timed: making a batch's key Buffers (about
      // 0.23 µs a key) is the workload's cost, not the database's.
      let ns = 0;
      for (let s = 0; s < KEYS; s += BATCH) {
        const batch = [];
        for (let i = s; i < Math.min(KEYS, s + BATCH); i++) batch.push([key(order[i]), value]);
        const t0 = process.hrtime.bigint();
        await (db[form] ?? db.commit)(batch);
        ns += Number(process.hrtime.bigint() - t0);
      }
      await db.close();
      return KEYS / (ns / 1e9);
    };
    const sorted = Array.from({ length: KEYS }, (_, i) => i);
    const shuffled = sorted.slice();
    const r = rng(42);
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = r() % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    const sortedRates = [];
    const shuffledRates = [];
    const loadRounds = Math.max(1, Math.min(3, ROUNDS));
    for (let round = 0; round < loadRounds; round++) {
      sortedRates.push(await load(fresh('sorted'), sorted));
      fs.rmSync(path.join(root, 'sorted'), { recursive: true });
      shuffledRates.push(await load(fresh('shuffled'), shuffled));
    }
    if (eng.implementation) {
      // NorthstarDB's other form, once: the synchronous commit().
      out.bulkSortedCommit = await load(fresh('sorted'), sorted, 'commit');
      fs.rmSync(path.join(root, 'sorted'), { recursive: true });
    }
    out.bulkSorted = median(sortedRates);
    out.bulkShuffled = median(shuffledRates);
    out.diskBytesAfterLoad = diskUsage(path.join(root, 'shuffled')).allocated;
    const dir = path.join(root, 'shuffled');

    // 2. 1-put commits of random existing keys, each timed alone.
    let db = await eng.open(dir);
    for (let i = 0; i < 50; i++) await db.commit([[key(r() % KEYS), valueFor(i)]]);
    const lat = [];
    const logBefore = db.stats?.().logIo.bytesWritten;
    let dev = deviceWriteBytes();
    for (let i = 0; i < COMMITS_1 * ROUNDS; i++) {
      const entry = [[key(r() % KEYS), valueFor(i)]];
      const t0 = process.hrtime.bigint();
      await db.commit(entry);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    if (dev !== null) {
      out.deviceBytesPer1Put = (deviceWriteBytes() - dev) / lat.length;
      out.deviceAmp1Put = out.deviceBytesPer1Put / PUT_BYTES;
    }
    if (logBefore !== undefined) out.recordBytes = Math.round((db.stats().logIo.bytesWritten - logBefore) / lat.length);
    out.commit1P50us = percentile(lat, 0.5);
    out.commit1P99us = percentile(lat, 0.99);

    // 3. 100-put commits of random existing keys.
    const rates = [];
    dev = deviceWriteBytes();
    for (let round = 0; round < ROUNDS; round++) {
      const commits = Array.from({ length: COMMITS_100 }, (_, c) => Array.from({ length: 100 }, (_, i) => [key(r() % KEYS), valueFor(c * 100 + i)]));
      const t0 = process.hrtime.bigint();
      for (const entries of commits) await db.commit(entries);
      rates.push(COMMITS_100 / (Number(process.hrtime.bigint() - t0) / 1e9));
    }
    if (dev !== null) {
      out.deviceBytesPer100Put = (deviceWriteBytes() - dev) / (COMMITS_100 * ROUNDS);
      out.deviceAmp100Put = out.deviceBytesPer100Put / (100 * PUT_BYTES);
    }
    out.commits100 = median(rates);

    // Sync calls per commit: an untimed pass under strace.
    const pass1 = Array.from({ length: SYNC_PASS_1 }, (_, i) => [[key(r() % KEYS), valueFor(i)]]);
    const pass100 = Array.from({ length: SYNC_PASS_100 }, (_, c) => Array.from({ length: 100 }, (_, i) => [key(r() % KEYS), valueFor(c * 100 + i)]));
    const s1 = await countSyncs(async () => {
      for (const entries of pass1) await db.commit(entries);
    });
    const s100 = s1.calls ? await countSyncs(async () => {
      for (const entries of pass100) await db.commit(entries);
    }) : s1;
    if (s1.calls) {
      out.syncCalls1Put = s1.calls;
      out.syncsPer1Put = totalCalls(s1.calls) / SYNC_PASS_1;
    }
    if (s100.calls) {
      out.syncCalls100Put = s100.calls;
      out.syncsPer100Put = totalCalls(s100.calls) / SYNC_PASS_100;
    }
    if (s1.unavailable ?? s100.unavailable) out.syncsUnavailable = s1.unavailable ?? s100.unavailable;
    await db.close();

    // 4. Open + close of the populated database.
    const opens = [];
    for (let i = 0; i < OPENS; i++) {
      const t0 = process.hrtime.bigint();
      const d = await eng.open(dir);
      await d.close();
      opens.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    out.openCloseMs = median(opens);

    // 5. Hot random gets in one read snapshot, after a warm-up pass; 1,000-row scans.
    db = await eng.open(dir);
    const probes = Array.from({ length: PROBES }, () => key(r() % KEYS));
    const rt = db.reader();
    for (const k of probes) if (rt.get(k) === undefined) throw new Error('missing key');
    const getRates = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = process.hrtime.bigint();
      for (const k of probes) rt.get(k);
      getRates.push(probes.length / (Number(process.hrtime.bigint() - t0) / 1e9));
    }
    out.hotGet = median(getRates);
    const starts = Array.from({ length: SCANS }, () => key(r() % Math.max(1, KEYS - 1000)));
    const scanRates = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = process.hrtime.bigint();
      for (const s of starts) if ((await rt.scan(s, 1000)) !== Math.min(1000, KEYS)) throw new Error('short scan');
      scanRates.push(starts.length / (Number(process.hrtime.bigint() - t0) / 1e9));
    }
    out.scan1000 = median(scanRates);
    await rt.close();
    await db.close();

    // 6. Disk used, the database closed.
    const du = diskUsage(dir);
    out.diskBytes = du.allocated;
    out.diskApparentBytes = du.apparent;
    out.diskFiles = du.files;

    // Resident memory with every page hot, in a fresh process.
    Object.assign(out, runChild({ NORTHSTAR_BENCH_PHASE: 'rss', NORTHSTAR_BENCH_ENGINE: name, NORTHSTAR_BENCH_DIR: dir }));

    // Cold reads (NorthstarDB): a page cache a quarter of the file.
    if (eng.implementation) {
      const plain = await eng.open(dir);
      const fileBytes = plain.stats().fileSize;
      plain.close();
      const coldCache = Math.floor(fileBytes / 4);
      const cdb = eng.open(dir, coldCache);
      const ct = cdb.reader();
      const coldProbes = probes.slice(0, 50_000);
      for (const k of coldProbes) ct.get(k);
      const before = cdb.stats().cache;
      const coldRates = [];
      for (let round = 0; round < ROUNDS; round++) {
        const t0 = process.hrtime.bigint();
        for (const k of coldProbes) ct.get(k);
        coldRates.push(coldProbes.length / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
      const after = cdb.stats().cache;
      out.coldGet = median(coldRates);
      out.coldCacheBytes = coldCache;
      out.coldHitRate = (after.hits - before.hits) / (after.hits - before.hits + after.misses - before.misses);
      ct.close();
      cdb.close();

      // Crash recovery: a child makes CRASH_COMMITS durable commits after a
      // checkpoint and dies by SIGKILL; open() replays them (and checkpoints).
      const { open } = await import('../dist/index.js');
      const file = path.join(dir, 'data.ndb');
      const times = [];
      for (let round = 0; round < ROUNDS; round++) {
        const crash = runChild({ NORTHSTAR_BENCH_PHASE: 'crash', NORTHSTAR_BENCH_FILE: file }, { killed: true });
        const t0 = process.hrtime.bigint();
        const rdb = open(file);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        const txn = rdb.txnId;
        rdb.close();
        if (txn !== crash.txnId) throw new Error(`recovered to txn ${txn}, the crashed process had committed ${crash.txnId}`);
        out.recoveryLogBytes = crash.logBytesSince;
      }
      out.recoveryMs = median(times);
      out.recoveryCommits = CRASH_COMMITS;
      out.recoveryCommitsPerSec = CRASH_COMMITS / (out.recoveryMs / 1e3);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

/** Opens the database, reads every row through a full scan and random gets, and reports RSS. */
async function rssPhase(name, dir) {
  const eng = await engine(name);
  globalThis.gc?.();
  const rssBaseline = process.memoryUsage().rss;
  const db = await eng.open(dir);
  const rt = db.reader();
  const n = await rt.scan(key(0), Infinity);
  const r = rng(7);
  for (let i = 0; i < 200_000; i++) rt.get(key(r() % n));
  globalThis.gc?.();
  const rssAfterHot = process.memoryUsage().rss;
  await rt.close();
  await db.close();
  process.stdout.write(JSON.stringify({ rssBaseline, rssAfterHot }) + '\n');
}

/**
 * The floor under a durable commit: `record` bytes written with pwrite over
 * preallocated, synced space, then fdatasync, as many as the 1-put commits
 * (and the same warm-up); each latency in µs.
 */
function floorPhase(record) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-bench-floor-'));
  try {
    const n = COMMITS_1 * ROUNDS + 50;
    const file = path.join(dir, 'log');
    const fd = fs.openSync(file, 'w+');
    // Zeroed 4 KiB at a time, as NorthstarDB's log preallocates (LOG_PREALLOC_CHUNK):
    // Linux sizes page-cache folios by the write that fills them, and a record
    // written into a large folio syncs slower, which would flatter the ratio.
    const zeros = Buffer.alloc(4096);
    for (let at = 0; at < n * record + (256 << 10); at += 4096) fs.writeSync(fd, zeros, 0, 4096, at);
    fs.fsyncSync(fd);
    const rec = Buffer.alloc(record, 7);
    const lat = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      fs.writeSync(fd, rec, 0, record, i * record);
      fs.fdatasyncSync(fd);
      if (i >= 50) lat.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    fs.closeSync(fd);
    process.stdout.write(JSON.stringify({ lat }) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * NorthstarDB killed with commits in its log since the last checkpoint: opens
 * `file` (automatic checkpoints off), checkpoints, makes CRASH_COMMITS durable
 * 1-put commits of random existing keys, prints its last txn and the log bytes
 * since the checkpoint, and kills itself.
 */
async function crashPhase(file) {
  const { open } = await import('../dist/index.js');
  const db = open(file, { sync: 'full', checkpoint: { commits: 1e9, logBytes: 1e12 } });
  db.checkpoint();
  const r = rng(process.pid);
  for (let i = 0; i < CRASH_COMMITS; i++) {
    const w = db.beginWrite();
    w.put(key(r() % KEYS), valueFor(i));
    w.commit();
  }
  const { commitsSince, logBytesSince } = db.stats().checkpoint;
  fs.writeSync(1, JSON.stringify({ txnId: db.txnId, commitsSince, logBytesSince }) + '\n');
  process.kill(process.pid, 'SIGKILL');
}

// Last, so that every constant above is initialised before a phase runs.
if (phase === 'crash') await crashPhase(process.env.NORTHSTAR_BENCH_FILE);
else if (phase === 'rss') await rssPhase(process.env.NORTHSTAR_BENCH_ENGINE, process.env.NORTHSTAR_BENCH_DIR);
else if (phase === 'main') await mainPhase(process.env.NORTHSTAR_BENCH_ENGINE);
else if (phase === 'floor') floorPhase(Number(process.env.NORTHSTAR_BENCH_RECORD));
else await parent();
