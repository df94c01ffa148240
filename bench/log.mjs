// Commit-log speed check (issue: commit log, §7). Runs on the native kernels
// and on the fallback, each in a child process, and prints medians side by
// side. Needs `npm run build` first.
//
//   node bench/log.mjs [--records 1000000]
//
// Measures: durable single-put commit latency against a bare write+fdatasync
// of the same file system in the same run; throughput at 1, 10 and 100 ops per
// durable commit; fdatasyncs for 1,000 concurrent commitAsync calls; replay of
// N single-put records into memory; reopen after a clean close; recovery speed
// after SIGKILL (ops/s).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const RECORDS = Number(opt('records', 1_000_000));
const here = fileURLToPath(import.meta.url);
const phase = process.env.NORTHSTAR_BENCH_PHASE;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const key = (i) => Buffer.from(String(i).padStart(16, '0'));
const value = Buffer.alloc(100, 0x61);

if (phase === 'main') await main();
else if (phase === 'crash') await crashChild(process.env.NORTHSTAR_BENCH_FILE);
else parent();

function parent() {
  const results = {};
  for (const impl of ['native', 'fallback']) {
    const r = spawnSync(process.execPath, [here, ...args], {
      env: { ...process.env, NORTHSTAR_BENCH_PHASE: 'main', NORTHSTAR_NATIVE: impl === 'native' ? '1' : '0' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`${impl} run failed`);
    results[impl] = JSON.parse(r.stdout.trim().split('\n').pop());
  }
  const rows = [
    ['durable 1-put commit p50 (us)', 'commitP50us'],
    ['bare write+fdatasync p50 (us)', 'bareP50us'],
    ['commit p50 / bare fdatasync', 'commitVsBare'],
    ['1 op/commit (ops/s)', 'ops1'],
    ['10 ops/commit (ops/s)', 'ops10'],
    ['100 ops/commit (ops/s)', 'ops100'],
    ['fdatasyncs for 1,000 concurrent commitAsync', 'asyncSyncs'],
    [`replay ${RECORDS.toLocaleString()} records (s)`, 'replaySecs'],
    ['reopen after clean close p50 (ms)', 'reopenMs'],
    ['recovery after SIGKILL (ops/s)', 'recoveryOps'],
  ];
  console.log(`\n| measure | native | fallback |`);
  console.log('|---|---:|---:|');
  for (const [label, k] of rows) {
    const f = (x) => (typeof x === 'number' ? (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(3)) : String(x));
    console.log(`| ${label} | ${f(results.native[k])} | ${f(results.fallback[k])} |`);
  }
  const out = opt('json', null);
  if (out) fs.writeFileSync(out, JSON.stringify(results, null, 2));
}

async function main() {
  const { open, replay, implementation } = await import('../dist/index.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'northstar-logbench-'));
  const out = { implementation };
  try {
    // Durable single-put commits against a bare write+fdatasync, interleaved.
    const db = open(path.join(dir, 'lat.ndb'), { sync: 'full', history: { txns: 0 } });
    const fd = fs.openSync(path.join(dir, 'bare'), 'w');
    const rec = Buffer.alloc(160, 1);
    const lat = [];
    const bare = [];
    for (let i = 0; i < 300; i++) {
      let t = process.hrtime.bigint();
      fs.writeSync(fd, rec, 0, rec.length, i * rec.length);
      fs.fdatasyncSync(fd);
      bare.push(Number(process.hrtime.bigint() - t));
      t = process.hrtime.bigint();
      const w = db.beginWrite();
      w.put(key(i), value);
      w.commit();
      lat.push(Number(process.hrtime.bigint() - t));
    }
    fs.closeSync(fd);
    out.commitP50us = median(lat) / 1e3;
    out.bareP50us = median(bare) / 1e3;
    out.commitVsBare = median(lat) / median(bare);
    // Batching.
    for (const n of [1, 10, 100]) {
      const commits = n === 1 ? 300 : n === 10 ? 200 : 100;
      const t = process.hrtime.bigint();
      for (let c = 0; c < commits; c++) {
        const w = db.beginWrite();
        for (let i = 0; i < n; i++) w.put(key(1e6 + c * n + i), value);
        w.commit();
      }
      out[`ops${n}`] = (commits * n) / (Number(process.hrtime.bigint() - t) / 1e9);
    }
    // Group commit.
    const before = db.stats().logIo.fdatasyncs;
    const pending = [];
    for (let i = 0; i < 1000; i++) {
      const w = db.beginWrite();
      w.put(key(2e6 + i), value);
      pending.push(w.commitAsync());
    }
    await Promise.all(pending);
    out.asyncSyncs = db.stats().logIo.fdatasyncs - before;
    db.close();

    // Replay of RECORDS single-put records.
    const rp = path.join(dir, 'replay.ndb');
    const rdb = open(rp, { sync: 'none', history: { txns: 0 }, checkpoint: { commits: 1e9, logBytes: 1e12 } });
    for (let i = 0; i < RECORDS; i++) {
      const w = rdb.beginWrite();
      w.put(key(i), value);
      w.commit();
    }
    rdb.close();
    const times = [];
    for (let r = 0; r < 3; r++) {
      const t = process.hrtime.bigint();
      const res = replay(rp);
      times.push(Number(process.hrtime.bigint() - t) / 1e9);
      if (res.commits !== RECORDS) throw new Error('replay count');
    }
    out.replaySecs = median(times);

    // Reopen after a clean close.
    const reopen = [];
    for (let r = 0; r < 21; r++) {
      const t = process.hrtime.bigint();
      open(rp).close();
      reopen.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    out.reopenMs = median(reopen);

    // Recovery after SIGKILL: a child commits 100 x 5,000 puts without checkpoints.
    const cp = path.join(dir, 'crash.ndb');
    spawnSync(process.execPath, [here], { env: { ...process.env, NORTHSTAR_BENCH_PHASE: 'crash', NORTHSTAR_BENCH_FILE: cp } });
    const t = process.hrtime.bigint();
    const cdb = open(cp);
    const secs = Number(process.hrtime.bigint() - t) / 1e9;
    if (cdb.txnId !== 100) throw new Error(`recovered to ${cdb.txnId}`);
    out.recoveryOps = 500_000 / secs;
    cdb.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

async function crashChild(file) {
  const { open } = await import('../dist/index.js');
  const db = open(file, { sync: 'full', checkpoint: { commits: 1e9, logBytes: 1e12 } });
  for (let c = 0; c < 100; c++) {
    const w = db.beginWrite();
    for (let i = 0; i < 5000; i++) w.put(key(c * 5000 + i), value);
    w.commit();
  }
  process.kill(process.pid, 'SIGKILL');
}
