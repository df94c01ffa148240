// Writer under read pressure, NorthstarDB beside lmdb-js (issue #6 §4,
// `writer_commits_with_readers_128`): is the 2x target a property of the
// database, or of the machine? Runs one workload on the native kernels, the
// fallback and, when the `lmdb` package is installed, lmdb-js; each engine in
// its own child process, phases alternating, medians over rounds. Needs
// `npm run build` first.
//
//   node bench/writer_peer.mjs [--rounds 5] [--keys 100000] [--phase-ms 1500] [--threads 2] [--json out.json]
//
// Workload, as the harness's benchmark (ts/bench/suites/concurrency.ts):
// 100k keys of 16 bytes, 128-byte values; the writer (main thread) commits 4
// updates of random keys per transaction, durably (NorthstarDB sync 'full';
// lmdb-js transactionSync with its default sync on commit); 128 readers over
// `threads` worker threads, each a read transaction of 16 random point gets,
// interleaved one get at a time. Per round: writer alone, readers alone,
// then both, each for phase-ms; p99 of each op's latency, and the ratios the
// issue's targets name.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';
import { engineEnv, enginesToCompare, key, median, option, rng } from './peer.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => option(args, name, dflt);
const KEYS = Number(opt('keys', 100_000));
const ROUNDS = Number(opt('rounds', 5));
const PHASE_MS = Number(opt('phase-ms', 1500));
const THREADS = Number(opt('threads', 2));
const READERS = 128;
const GETS = 16;
const PUTS = 4;
const VALUE = Buffer.alloc(128, 0x61);
/** Samples kept per phase (ops past them are counted, not sampled). */
const READER_SAMPLES = 1 << 22;
const WRITER_SAMPLES = 1 << 17;
const here = fileURLToPath(import.meta.url);
const dist = new URL('../dist/index.js', import.meta.url).href;

/** A database handle with the three operations the workload needs. */
async function openEngine(engine, file) {
  if (engine === 'lmdb') {
    const { open } = await import('lmdb');
    const db = open({ path: file, encoding: 'binary', keyEncoding: 'binary', noMemInit: true });
    return {
      load(from, to) {
        db.transactionSync(() => {
          for (let i = from; i < to; i++) db.putSync(key(i), VALUE);
        });
      },
      commit(keys) {
        db.transactionSync(() => {
          for (const k of keys) db.putSync(k, VALUE);
        });
      },
      // lmdb-js reads see the latest commit; a read transaction is a snapshot held by useReadTransaction.
      beginRead() {
        const txn = db.useReadTransaction();
        return { get: (k) => db.getBinary(k, { transaction: txn }), close: () => txn.done() };
      },
      close: () => db.close(),
    };
  }
  const { open } = await import(dist);
  const db = open(file, { sync: 'full' });
  return {
    load(from, to) {
      const w = db.beginWrite();
      for (let i = from; i < to; i++) w.put(key(i), VALUE);
      w.commit();
    },
    commit(keys) {
      const w = db.beginWrite();
      for (const k of keys) w.put(k, VALUE);
      w.commit();
    },
    beginRead: () => db.beginRead(),
    close: () => db.close(),
  };
}

/**
 * Room for `n` samples, its memory touched now: a growing array (or a fresh
 * typed array's first writes) page-faults inside the ops being timed, as the
 * harness found (ts/bench/suites/concurrency_worker.ts, prefaulted).
 */
function sampleArray(n) {
  return new Float64Array(n).fill(1);
}

function p99(samples) {
  const s = Float64Array.from(samples).sort();
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
}

// ---- reader thread -----------------------------------------------------------
if (!isMainThread) {
  // A worker's process.argv does not hold the parent's options: the key count comes with workerData.
  const { engine, file, readers, seed, stop, keys: keyCount } = workerData;
  const flag = new Int32Array(stop);
  const db = await openEngine(engine, file);
  const r = rng(seed);
  const keys = Array.from({ length: 1 << 16 }, () => key(r() % keyCount));
  parentPort.postMessage('ready');
  parentPort.on('message', () => {
    const txns = new Array(readers).fill(null);
    const left = Array.from({ length: readers }, (_, j) => 1 + (j % GETS));
    const samples = sampleArray(READER_SAMPLES);
    let j = 0;
    let n = 0;
    let prev = performance.now();
    while (Atomics.load(flag, 0) === 0) {
      const q = j;
      if (++j === readers) j = 0;
      let t = txns[q];
      if (t === null) t = txns[q] = db.beginRead();
      const v = t.get(keys[n++ & 0xffff]);
      if (--left[q] === 0) {
        left[q] = GETS;
        txns[q] = null;
        t.close();
      }
      if (v === undefined) throw new Error('missing key');
      const now = performance.now();
      if (n <= samples.length) samples[n - 1] = (now - prev) * 1e3;
      prev = now;
    }
    for (const t of txns) t?.close();
    parentPort.postMessage({ p99: p99(samples.subarray(0, Math.min(n, samples.length))), ops: n });
  });
}

// ---- one engine, in its own process -------------------------------------------
async function engineMain(engine) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `northstar-writer-peer-${engine}-`));
  const file = path.join(dir, engine === 'lmdb' ? 'lmdb' : 'db');
  try {
    const db = await openEngine(engine, file);
    for (let i = 0; i < KEYS; i += 10_000) db.load(i, Math.min(KEYS, i + 10_000));
    const r = rng(7);
    const writeKeys = Array.from({ length: 1 << 16 }, () => key(r() % KEYS));
    let c = 0;
    const writeFor = (ms) => {
      const samples = sampleArray(WRITER_SAMPLES);
      let done = 0;
      const end = performance.now() + ms;
      while (performance.now() < end) {
        const batch = [];
        for (let i = 0; i < PUTS; i++) batch.push(writeKeys[c++ & 0xffff]);
        const t0 = performance.now();
        db.commit(batch);
        if (done < samples.length) samples[done] = (performance.now() - t0) * 1e3;
        done++;
      }
      return { p99: p99(samples.subarray(0, Math.min(done, samples.length))), commits: done };
    };
    const stop = new SharedArrayBuffer(4);
    const flag = new Int32Array(stop);
    const per = Math.floor(READERS / THREADS);
    const workers = Array.from({ length: THREADS }, (_, i) => new Worker(here, { workerData: { engine, file, readers: per + (i < READERS % THREADS ? 1 : 0), seed: 1000 + i, stop, keys: KEYS } }));
    await Promise.all(workers.map((w) => new Promise((res) => w.once('message', res))));
    const rounds = [];
    const readPhase = async (withWriter) => {
      Atomics.store(flag, 0, 0);
      const done = workers.map((w) => new Promise((res) => w.once('message', res)));
      for (const w of workers) w.postMessage('go');
      let writer = null;
      if (withWriter) writer = writeFor(PHASE_MS);
      else await new Promise((res) => setTimeout(res, PHASE_MS));
      Atomics.store(flag, 0, 1);
      const reps = await Promise.all(done);
      return { writer, readerP99: median(reps.map((x) => x.p99)), readerOps: reps.reduce((a, x) => a + x.ops, 0) };
    };
    for (let round = 0; round < ROUNDS; round++) {
      const alone = writeFor(PHASE_MS);
      const readersOnly = await readPhase(false);
      const both = await readPhase(true);
      rounds.push({
        writerAloneP99: alone.p99,
        writerAloneCommits: alone.commits,
        writerLoadedP99: both.writer.p99,
        writerLoadedCommits: both.writer.commits,
        readerAloneP99: readersOnly.readerP99,
        readerLoadedP99: both.readerP99,
        writerRatio: both.writer.p99 / alone.p99,
        readerRatio: both.readerP99 / readersOnly.readerP99,
      });
    }
    // Workers end after their phase; the last phase leaves them waiting for 'go'.
    for (const w of workers) await w.terminate();
    db.close();
    const out = {};
    for (const k of Object.keys(rounds[0])) out[k] = median(rounds.map((x) => x[k]));
    out.rounds = rounds.length;
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function parent() {
  const engines = await enginesToCompare(args);
  const results = {};
  for (const e of engines) {
    const r = spawnSync(process.execPath, [here, ...args], {
      env: { ...process.env, NORTHSTAR_PEER_ENGINE: e, ...engineEnv(e) },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`${e} failed (${r.status})`);
    results[e] = JSON.parse(r.stdout.trim().split('\n').pop());
  }
  const us = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(2)} µs`);
  console.log(`writer under read pressure: ${KEYS} keys, ${READERS} readers on ${THREADS} threads, ${ROUNDS} rounds of ${PHASE_MS} ms phases, ${os.availableParallelism()} CPUs; medians over rounds`);
  console.log(`| measure | ${engines.join(' | ')} |`);
  console.log(`|---|${engines.map(() => '---:').join('|')}|`);
  const row = (name, f) => console.log(`| ${name} | ${engines.map((e) => f(results[e])).join(' | ')} |`);
  row('writer p99 alone', (x) => us(x.writerAloneP99));
  row('writer p99 with readers', (x) => us(x.writerLoadedP99));
  row('writer p99 ratio (target <= 2x)', (x) => `${x.writerRatio.toFixed(2)}x`);
  row('commits/s alone', (x) => Math.round(x.writerAloneCommits / (PHASE_MS / 1000)).toLocaleString('en-US'));
  row('commits/s with readers', (x) => Math.round(x.writerLoadedCommits / (PHASE_MS / 1000)).toLocaleString('en-US'));
  row('reader p99 alone', (x) => us(x.readerAloneP99));
  row('reader p99 with writer', (x) => us(x.readerLoadedP99));
  row('reader p99 ratio (target < 2x)', (x) => `${x.readerRatio.toFixed(2)}x`);
  const json = opt('json', null);
  if (json !== null) fs.writeFileSync(json, JSON.stringify({ keys: KEYS, rounds: ROUNDS, phaseMs: PHASE_MS, threads: THREADS, results }, null, 2));
}

if (isMainThread) {
  const engine = process.env.NORTHSTAR_PEER_ENGINE;
  if (engine !== undefined) await engineMain(engine);
  else await parent();
}
