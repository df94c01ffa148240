// Storage-kernel speed check (issue: storage kernel v0, §8). Runs one workload
// on the native kernels, on the pure-TypeScript fallback and, when the `lmdb`
// package is installed, on lmdb-js as the peer; each in its own child process
// (NorthstarDB fixes its implementation at import). Prints medians side by
// side with ratios. Needs `npm run build` first.
//
//   node bench/storage.mjs [--keys 1000000] [--rounds 5] [--json out.json] [--no-peer]
//
// Workload: 16-byte keys, 128-byte values; bulk load in 10k-key transactions
// with durable commits (sorted and shuffled key order; each transaction timed
// from its first put to its commit, its batch of keys made before); hot random point gets
// in one read transaction; 1,000-row range scans from random starts; resident
// memory with every page hot (fresh process); the same gets with a page cache
// a quarter of the file (cold reads; NorthstarDB only: lmdb-js maps the file).
// NorthstarDB runs with history: { txns: 0 } (no time-travel window), like
// lmdb-js and like the harness's btree suite: with the default 1,000 retained
// commits a shuffled load keeps every replaced page version (spec §6.1).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineEnv, enginesToCompare, key, median, option, rng } from './peer.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => option(args, name, dflt);
const KEYS = Number(opt('keys', 1_000_000));
const ROUNDS = Number(opt('rounds', 5));
const here = fileURLToPath(import.meta.url);
const phase = process.env.NORTHSTAR_BENCH_PHASE;

if (phase === 'rss') await rssPhase(process.env.NORTHSTAR_BENCH_ENGINE, process.env.NORTHSTAR_BENCH_FILE);
else if (phase === 'main') await mainPhase(process.env.NORTHSTAR_BENCH_ENGINE);
else await parent();

function runChild(env) {
  const r = spawnSync(process.execPath, ['--expose-gc', here, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`${env.NORTHSTAR_BENCH_ENGINE} ${env.NORTHSTAR_BENCH_PHASE} failed (${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function parent() {
  const engines = await enginesToCompare(args);
  const results = {};
  for (const e of engines) {
    results[e] = runChild({ NORTHSTAR_BENCH_PHASE: 'main', NORTHSTAR_BENCH_ENGINE: e, ...engineEnv(e) });
    if (e !== 'lmdb' && results[e].implementation !== e) console.error(`warning: asked for ${e}, ran ${results[e].implementation}`);
  }
  const rows = [
    ['bulk load sorted, 10k-key txns (keys/s)', 'bulkSorted'],
    ['bulk load shuffled, 10k-key txns (keys/s)', 'bulkShuffled'],
    ['hot random point get (gets/s)', 'hotGet'],
    ['1,000-row range scan (scans/s)', 'scan1000'],
    ['cold random get, cache = file/4 (gets/s)', 'coldGet'],
  ];
  const peer = results.lmdb !== undefined;
  console.log(`\n${KEYS.toLocaleString()} keys x 16 B + 128 B values, ${ROUNDS} rounds, medians (${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores)\n`);
  console.log(`| measure | native | fallback | native/fallback |${peer ? ' lmdb-js | native/lmdb-js |' : ''}`);
  console.log(`|---|---:|---:|---:|${peer ? '---:|---:|' : ''}`);
  for (const [label, k] of rows) {
    const n = results.native[k];
    const f = results.fallback[k];
    let line = `| ${label} | ${fmt(n)} | ${fmt(f)} | ${(n / f).toFixed(2)}x |`;
    if (peer) {
      const l = results.lmdb[k];
      line += l === undefined ? ' n/a | |' : ` ${fmt(l)} | ${(n / l).toFixed(2)}x |`;
    }
    console.log(line);
  }
  for (const e of engines) {
    const r = results[e];
    let line =
      `${e}: file ${mib(r.fileBytes)} MiB (sorted load ${mib(r.fileBytesSorted)} MiB); ` +
      `RSS with every page hot ${mib(r.rssAfterHot)} MiB = ${(r.rssAfterHot / r.fileBytes).toFixed(2)}x file (process before open ${mib(r.rssBaseline)} MiB)`;
    if (r.coldCacheBytes) line += `; cold run: cache ${mib(r.coldCacheBytes)} MiB, hit rate ${(r.coldHitRate * 100).toFixed(1)}%`;
    console.log(line);
  }
  const out = opt('json', null);
  if (out) fs.writeFileSync(out, JSON.stringify({ keys: KEYS, rounds: ROUNDS, results }, null, 2));
}

function mib(x) {
  return (x / 2 ** 20).toFixed(1);
}

function fmt(x) {
  return Math.round(x).toLocaleString('en-US');
}

/**
 * One interface over the engines compared: durable batch commits, a read
 * snapshot with get and a bounded forward scan, file size and cache stats.
 */
async function engine(name) {
  if (name === 'lmdb') {
    const { open } = await import('lmdb');
    return {
      open(file) {
        const db = open({ path: file, keyEncoding: 'binary', encoding: 'binary', compression: false });
        return {
          load(keys, value) {
            db.transactionSync(() => {
              for (const k of keys) db.put(k, value);
            });
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
          fileSize: () => fs.statSync(file).size,
          close: () => db.close(),
        };
      },
    };
  }
  const { open, implementation } = await import('../dist/index.js');
  return {
    implementation,
    open(file, cacheSize) {
      const db = open(file, { sync: 'full', history: { txns: 0 }, ...(cacheSize ? { cacheSize } : {}) });
      return {
        load(keys, value) {
          const w = db.beginWrite();
          for (const k of keys) w.put(k, value);
          w.commit();
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
        fileSize: () => db.stats().fileSize,
        cache: () => db.stats().cache,
        close: () => db.close(),
      };
    },
  };
}

async function mainPhase(name) {
  const eng = await engine(name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-bench-'));
  const value = Buffer.alloc(128, 0x61);
  const out = { implementation: eng.implementation ?? name };
  try {
    const load = (file, order) => {
      const db = eng.open(file);
      // Only the transactions are timed: making a batch's key Buffers (about
      // 0.23 µs a key) is the workload's cost, not the database's.
      let ns = 0;
      for (let s = 0; s < KEYS; s += 10_000) {
        const batch = [];
        for (let i = s; i < Math.min(KEYS, s + 10_000); i++) batch.push(key(order[i]));
        const t0 = process.hrtime.bigint();
        db.load(batch, value);
        ns += Number(process.hrtime.bigint() - t0);
      }
      return { db, rate: KEYS / (ns / 1e9) };
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
    let db;
    const loadRounds = Math.max(1, Math.min(3, ROUNDS));
    for (let round = 0; round < loadRounds; round++) {
      for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { recursive: true });
      let x = load(path.join(dir, 'sorted.db'), sorted);
      sortedRates.push(x.rate);
      out.fileBytesSorted = x.db.fileSize();
      x.db.close();
      x = load(path.join(dir, 'shuffled.db'), shuffled);
      shuffledRates.push(x.rate);
      if (round + 1 < loadRounds) x.db.close();
      else db = x.db;
    }
    out.bulkSorted = median(sortedRates);
    out.bulkShuffled = median(shuffledRates);
    out.fileBytes = db.fileSize();

    // Hot random point gets in one read transaction, after a warm-up pass.
    const probes = Array.from({ length: 200_000 }, () => key(r() % KEYS));
    const rt = db.reader();
    for (const k of probes) if (rt.get(k) === undefined) throw new Error('missing key');
    const getRates = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = process.hrtime.bigint();
      for (const k of probes) rt.get(k);
      getRates.push(probes.length / (Number(process.hrtime.bigint() - t0) / 1e9));
    }
    out.hotGet = median(getRates);

    // 1,000-row range scans from random starts.
    const starts = Array.from({ length: 300 }, () => key(r() % Math.max(1, KEYS - 1000)));
    const scanRates = [];
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = process.hrtime.bigint();
      for (const s of starts) if (rt.scan(s, 1000) !== Math.min(1000, KEYS)) throw new Error('short scan');
      scanRates.push(starts.length / (Number(process.hrtime.bigint() - t0) / 1e9));
    }
    out.scan1000 = median(scanRates);
    rt.close();
    db.close();

    // Resident memory with every page hot, in a fresh process.
    Object.assign(out, runChild({ NORTHSTAR_BENCH_PHASE: 'rss', NORTHSTAR_BENCH_ENGINE: name, NORTHSTAR_BENCH_FILE: path.join(dir, 'shuffled.db') }));

    // Cold reads: a page cache a quarter of the file.
    if (name !== 'lmdb') {
      const coldCache = Math.floor(out.fileBytes / 4);
      const cdb = eng.open(path.join(dir, 'shuffled.db'), coldCache);
      const ct = cdb.reader();
      const coldProbes = probes.slice(0, 50_000);
      for (const k of coldProbes) ct.get(k);
      const before = cdb.cache();
      const coldRates = [];
      for (let round = 0; round < ROUNDS; round++) {
        const t0 = process.hrtime.bigint();
        for (const k of coldProbes) ct.get(k);
        coldRates.push(coldProbes.length / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
      const after = cdb.cache();
      out.coldGet = median(coldRates);
      out.coldCacheBytes = coldCache;
      out.coldHitRate = (after.hits - before.hits) / (after.hits - before.hits + after.misses - before.misses);
      ct.close();
      cdb.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

/** Opens the file, reads every page through a full scan and random gets, and reports RSS. */
async function rssPhase(name, file) {
  const eng = await engine(name);
  globalThis.gc?.();
  const rssBaseline = process.memoryUsage().rss;
  const db = eng.open(file);
  const rt = db.reader();
  const n = rt.scan(key(0), Infinity);
  const r = rng(7);
  for (let i = 0; i < 200_000; i++) rt.get(key(r() % n));
  globalThis.gc?.();
  const rssAfterHot = process.memoryUsage().rss;
  rt.close();
  db.close();
  process.stdout.write(JSON.stringify({ rssBaseline, rssAfterHot }) + '\n');
}
