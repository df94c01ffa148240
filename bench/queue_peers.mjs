// The task-queue workload on NorthstarDB and on the queues users pick today
// (issue #15 §5), one run, one table, one JSON result and one SVG chart:
//
//   - NorthstarDB (native and fallback kernels): openQueue, claim + complete,
//     sync 'full' (ts/bench/queue_load.ts, as macro/task_queue_claims); and
//     native again with claims of up to 64 tasks (\`max: 64\`), each completed
//     on its own, the batched mode issue #15 sets against graphile-worker's;
//   - BullMQ with a local redis-server (appendonly yes, appendfsync always);
//   - graphile-worker with a local PostgreSQL (fsync and synchronous_commit
//     on), and again with its local queue refilled 500 jobs at a time;
//   - a better-sqlite3 queue of the usual design: WAL, synchronous=FULL, one
//     index on (state, type, priority, run_at); claim = BEGIN IMMEDIATE,
//     SELECT the first ready row, UPDATE it; complete = UPDATE.
//
// Each case: `--tasks` no-op tasks enqueued first, then W workers claim and
// complete them until none is left; tasks/s from the first claim to the last
// completion. Columns: 1 worker, 16 workers, 64 workers (with the claim p99
// where the queue lets us time a claim), 4 processes x 16 workers. Every
// server is started here on a loopback port in a temporary directory and
// stopped by pid; a peer whose server or package is missing is listed as
// pending, with how to install it.
//
//   node bench/queue_peers.mjs [--tasks 20000] [--peers northstar,northstar-batched,fallback,bullmq,graphile,graphile-batched,sqlite] [--json out.json] [--svg out.svg]
//
// Needs `npm run build` first.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { option, packageVersion, percentile } from './peer.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const TASKS = Number(option(args, 'tasks', 20_000));
const PEERS = option(args, 'peers', 'northstar,northstar-batched,fallback,bullmq,graphile,graphile-batched,sqlite').split(',');
/** Tasks a claim of the batched NorthstarDB peer asks for at most. */
const BATCH_CLAIM = 64;
const isNorthstar = (peer) => peer === 'northstar' || peer === 'northstar-batched' || peer === 'fallback';
const CASES = [
  { key: 'w1', label: '1 worker', workers: 1, procs: 1 },
  { key: 'w16', label: '16 workers', workers: 16, procs: 1 },
  { key: 'w64', label: '64 workers', workers: 64, procs: 1 },
  { key: 'p4x16', label: '4 processes x 16', workers: 16, procs: 4 },
];


// ---- the parent ------------------------------------------------------------------------

async function main() {
  const report = { date: new Date().toISOString(), machine: machine(), tasks: TASKS, engines: {} };
  const floor = syncFloor();
  report.syncFloorP50us = floor;
  for (const peer of PEERS) {
    const e = (report.engines[peer] = { label: LABELS[peer], rows: {} });
    const problem = peerProblem(peer);
    if (problem !== null) {
      e.pending = problem;
      console.error(`${peer}: pending (${problem})`);
      continue;
    }
    const server = await startServer(peer);
    try {
      for (const c of CASES) {
        if ((peer === 'graphile-batched' || peer === 'northstar-batched') && c.workers === 1) continue;
        console.error(`${peer}: ${c.label}`);
        e.rows[c.key] = await runCase(peer, c, server);
        const r = e.rows[c.key];
        console.error(`  ${Math.round(r.tasksPerSec).toLocaleString('en-US')} tasks/s${r.claimP99ms != null ? `, claim p99 ${r.claimP99ms.toFixed(2)} ms` : ''}, duplicates ${r.duplicates}, lost ${r.lost}`);
      }
    } finally {
      await server?.stop();
    }
  }
  printTable(report);
  const json = option(args, 'json', null);
  if (json) fs.writeFileSync(json, JSON.stringify(report, null, 2));
  const svg = option(args, 'svg', null);
  if (svg) fs.writeFileSync(svg, chart(report));
}

const LABELS = {
  northstar: 'NorthstarDB native',
  'northstar-batched': `NorthstarDB native, claims of up to ${BATCH_CLAIM}`,
  fallback: 'NorthstarDB fallback',
  bullmq: `BullMQ ${packageVersion('bullmq') ?? ''} + redis (appendfsync always)`,
  graphile: `graphile-worker ${packageVersion('graphile-worker') ?? ''} + PostgreSQL`,
  'graphile-batched': 'graphile-worker, local queue of 500',
  sqlite: `better-sqlite3 ${packageVersion('better-sqlite3') ?? ''} queue (WAL, FULL, one index)`,
};

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function peerProblem(peer) {
  if (isNorthstar(peer)) return fs.existsSync(path.join(here, '..', 'dist', 'bench', 'queue_load.js')) ? null : 'dist/ missing: npm run build';
  if (peer === 'bullmq') {
    if (packageVersion('bullmq') === null) return 'bullmq is not installed (npm install)';
    return which('redis-server') ? null : 'redis-server not found (apt-get install redis-server)';
  }
  if (peer === 'graphile' || peer === 'graphile-batched') {
    if (packageVersion('graphile-worker') === null) return 'graphile-worker is not installed (npm install)';
    return which('initdb') || which('pg_ctl') ? null : 'PostgreSQL not found (apt-get install postgresql)';
  }
  if (peer === 'sqlite') return spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"]).status === 0 ? null : 'better-sqlite3 does not load (npm run build builds it)';
  return `unknown peer ${peer}`;
}

/** Starts the peer's server on a loopback port in a temporary directory; stop() kills it by pid and removes the directory. */
async function startServer(peer) {
  if (peer === 'bullmq') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'queue-peers-redis-'));
    const port = 26379 + servers++;
    const p = spawn(which('redis-server'), ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
    running.set(p.pid, dir);
    await waitFor(() => spawnSync(which('redis-cli') ?? 'redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG', 'redis-server');
    return { url: { host: '127.0.0.1', port }, stop: () => stopServer(p, dir) };
  }
  if (peer === 'graphile' || peer === 'graphile-batched') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'queue-peers-pg-'));
    fs.chmodSync(dir, 0o777);
    const port = 25432 + servers++;
    const asPg = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
    const bin = (name) => which(name) ?? `/usr/lib/postgresql/15/bin/${name}`;
    const run = (cmd) => {
      const r = spawnSync(asPg[0] ?? cmd[0], asPg.length ? [...asPg.slice(1), ...cmd] : cmd.slice(1), { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr || r.stdout}`);
    };
    run([bin('initdb'), '-D', path.join(dir, 'data'), '-A', 'trust', '-U', 'postgres']);
    const p = spawn(asPg[0] ?? bin('postgres'), [...(asPg.length ? [...asPg.slice(1), bin('postgres')] : []), '-D', path.join(dir, 'data'), '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=on', '-c', 'synchronous_commit=on', '-c', 'max_connections=300'], { stdio: 'ignore' });
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await waitFor(() => spawnSync(bin('pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]).status === 0, 'postgres');
    const postmaster = Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    running.set(postmaster, dir);
    // p is runuser's process: the server is postmaster.pid's, stopped by its pid (SIGQUIT: immediate shutdown).
    return {
      url,
      stop: async () => {
        process.kill(postmaster, 'SIGQUIT');
        await waitFor(() => !alive(postmaster), 'postgres to stop');
        running.delete(postmaster);
        await stopServer(p, dir);
      },
    };
  }
  return null;
}

let servers = 0;

/**
 * Servers running now (pid and directory), killed and removed on any exit: a
 * run that dies (an exception, Ctrl-C, a closed pipe: `| head`) leaves no
 * server behind. postgres is stopped through its postmaster's pid.
 */
const running = new Map();
process.on('exit', () => {
  for (const [pid, dir] of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130));
process.stdout.on('error', (err) => process.exit(err.code === 'EPIPE' ? 0 : 1));

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills a server by pid and waits for it to be gone before its directory goes. */
async function stopServer(p, dir) {
  const gone = new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', r)));
  p.kill('SIGKILL');
  await gone;
  running.delete(p.pid);
  fs.rmSync(dir, { recursive: true, force: true });
}

async function waitFor(ok, what) {
  const deadline = Date.now() + 30_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One case: enqueue, then workers (in this process's child, or in `procs` children), then the figures. */
async function runCase(peer, c, server) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'queue-peers-'));
  try {
    const env = { ...process.env, QUEUE_PEERS_DIR: dir, QUEUE_PEERS_PEER: peer, QUEUE_PEERS_SERVER: JSON.stringify(server?.url ?? null), NORTHSTAR_NATIVE: peer === 'fallback' ? '0' : '1' };
    if (isNorthstar(peer)) {
      const mode = c.procs > 1 ? 'processes' : 'async';
      const max = peer === 'northstar-batched' ? BATCH_CLAIM : 1;
      const r = childJson({ ...env, QUEUE_PEERS_ROLE: 'northstar', QUEUE_PEERS_CASE: JSON.stringify({ mode, agents: c.workers * c.procs, workers: c.procs, max }) });
      const lat = r.claimNs.sort((a, b) => a - b);
      return { tasksPerSec: r.tasksPerSec, claimP99ms: percentile(lat, 0.99) / 1e6, claimP50ms: percentile(lat, 0.5) / 1e6, duplicates: r.duplicates, lost: r.stuck, commitsPerTask: r.commits / r.tasks, fdatasyncsPerTask: r.fdatasyncs / r.tasks };
    }
    childJson({ ...env, QUEUE_PEERS_ROLE: 'enqueue' });
    const start = Date.now() + 300 + 200 * c.procs; // every worker starts its clock at the same wall time
    const runs = await Promise.all(Array.from({ length: c.procs }, () => childJsonAsync({ ...env, QUEUE_PEERS_ROLE: 'work', QUEUE_PEERS_WORKERS: String(c.workers), QUEUE_PEERS_START: String(start) })));
    const ids = runs.flatMap((r) => r.ids);
    const end = Math.max(...runs.map((r) => r.endMs));
    const seen = new Set(ids);
    const lat = runs.flatMap((r) => r.claimMs ?? []).sort((a, b) => a - b);
    return { tasksPerSec: seen.size / ((end - start) / 1000), claimP99ms: lat.length ? percentile(lat, 0.99) : null, claimP50ms: lat.length ? percentile(lat, 0.5) : null, duplicates: ids.length - seen.size, lost: TASKS - seen.size };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function childJson(env) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...args], { env, encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`child ${env.QUEUE_PEERS_ROLE} of ${env.QUEUE_PEERS_PEER} exited with ${r.status}`);
  return JSON.parse(fs.readFileSync(r.stdout.trim().split('\n').pop(), 'utf8'));
}

function childJsonAsync(env) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(fs.readFileSync(out.trim().split('\n').pop(), 'utf8'))) : reject(new Error(`worker child exited with ${code}`))));
  });
}

// ---- the children --------------------------------------------------------------------------

async function child(role) {
  const peer = process.env.QUEUE_PEERS_PEER;
  const dir = process.env.QUEUE_PEERS_DIR;
  const server = JSON.parse(process.env.QUEUE_PEERS_SERVER);
  let out;
  if (role === 'northstar') {
    const { runQueueLoad } = await import('../dist/bench/queue_load.js');
    const c = JSON.parse(process.env.QUEUE_PEERS_CASE);
    out = await runQueueLoad({ file: path.join(dir, 'q.ndb'), tasks: TASKS, agents: c.agents, mode: c.mode, workers: c.workers, max: c.max });
  } else if (role === 'enqueue') out = await IMPLS[peer].enqueue(dir, server);
  else {
    const workers = Number(process.env.QUEUE_PEERS_WORKERS);
    const start = Number(process.env.QUEUE_PEERS_START);
    out = await IMPLS[peer].work(dir, server, workers, start);
  }
  // Through a file: a pipe to the parent is asynchronous here, and exit() could cut a long result short.
  const file = path.join(dir, `result-${role}-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(out));
  process.stdout.write(`${file}\n`, () => process.exit(0));
}

async function sleepUntil(t) {
  const ms = t - Date.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

const IMPLS = {
  sqlite: {
    open(dir) {
      const Database = require('better-sqlite3');
      const db = new Database(path.join(dir, 'q.sqlite'));
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 60000');
      return db;
    },
    async enqueue(dir) {
      const db = this.open(dir);
      db.exec('CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, type TEXT NOT NULL, priority INTEGER NOT NULL, run_at INTEGER NOT NULL, payload TEXT, lease_until INTEGER, token INTEGER, result TEXT); CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, type, priority, run_at);');
      const ins = db.prepare("INSERT INTO jobs (state, type, priority, run_at, payload) VALUES ('pending', 'noop', 0, ?, ?)");
      db.transaction(() => { for (let i = 0; i < TASKS; i++) ins.run(Date.now(), JSON.stringify({ n: i })); })();
      db.close();
      return {};
    },
    async work(dir, _server, workers, start) {
      const db = this.open(dir);
      const pick = db.prepare("SELECT id FROM jobs WHERE state = 'pending' AND type = 'noop' AND run_at <= ? ORDER BY priority DESC, run_at LIMIT 1");
      const take = db.prepare("UPDATE jobs SET state = 'claimed', lease_until = ?, token = coalesce(token, 0) + 1 WHERE id = ?");
      const done = db.prepare("UPDATE jobs SET state = 'done', result = 'null' WHERE id = ? AND state = 'claimed'");
      const claim = db.transaction(() => {
        const row = pick.get(Date.now());
        if (!row) return null;
        take.run(Date.now() + 30_000, row.id);
        return row.id;
      });
      await sleepUntil(start);
      const ids = [];
      const claimMs = [];
      // Workers as async loops; better-sqlite3 is synchronous, so they take turns on the thread.
      await Promise.all(Array.from({ length: workers }, async () => {
        for (;;) {
          const t0 = performance.now();
          let id;
          for (;;) {
            try {
              id = claim.immediate();
              break;
            } catch (e) {
              if (e.code !== 'SQLITE_BUSY') throw e;
            }
          }
          if (id === null) return;
          claimMs.push(performance.now() - t0);
          ids.push(id);
          await null;
          done.run(id);
          await null;
        }
      }));
      const endMs = Date.now();
      db.close();
      return { ids, claimMs, endMs };
    },
  },
  bullmq: {
    /** A client of the local redis-server (in ESM BullMQ takes constructed ioredis clients). */
    async redis(server) {
      const { Redis } = await import('ioredis');
      return new Redis({ ...server, maxRetriesPerRequest: null });
    },
    async enqueue(_dir, server) {
      const { Queue } = await import('bullmq');
      const q = new Queue('bench', { connection: await this.redis(server) });
      await q.obliterate({ force: true }).catch(() => {});
      for (let i = 0; i < TASKS; i += 1000) await q.addBulk(Array.from({ length: Math.min(1000, TASKS - i) }, (_, j) => ({ name: 'noop', data: { n: i + j }, opts: { removeOnComplete: false } })));
      await q.close();
      return {};
    },
    async work(_dir, server, workers, start) {
      const { Worker, Queue } = await import('bullmq');
      const q = new Queue('bench', { connection: await this.redis(server) });
      await sleepUntil(start);
      const ids = [];
      let resolveDone;
      const finished = new Promise((r) => (resolveDone = r));
      const w = new Worker('bench', async (job) => { ids.push(Number(job.id)); }, { connection: await this.redis(server), concurrency: workers, autorun: true });
      // Done when the queue holds no waiting or active job (every process sees the same counts).
      const timer = setInterval(async () => {
        const c = await q.getJobCounts('waiting', 'active', 'completed');
        if (c.waiting === 0 && c.active === 0) resolveDone();
      }, 20);
      await finished;
      const endMs = Date.now();
      clearInterval(timer);
      await w.close();
      await q.close();
      return { ids, endMs };
    },
  },
  graphile: graphile(false),
  'graphile-batched': graphile(true),
};

function graphile(batched) {
  return {
    async enqueue(_dir, url) {
      const { makeWorkerUtils } = await import('graphile-worker');
      const utils = await makeWorkerUtils({ connectionString: url });
      await utils.migrate();
      const pg = await import('pg');
      const client = new pg.default.Client({ connectionString: url });
      await client.connect();
      await client.query('delete from graphile_worker._private_jobs').catch(() => {});
      for (let i = 0; i < TASKS; i += 1000) {
        const specs = Array.from({ length: Math.min(1000, TASKS - i) }, (_, j) => ({ identifier: 'noop', payload: { n: i + j } }));
        await client.query('select graphile_worker.add_jobs($1::graphile_worker.job_spec[])', [JSON.stringify(specs).replace(/^\[/, '{').replace(/\]$/, '}')]).catch(async () => {
          for (const s of specs) await utils.addJob(s.identifier, s.payload);
        });
      }
      await client.end();
      await utils.release();
      return {};
    },
    async work(_dir, url, workers, start) {
      const { run } = await import('graphile-worker');
      const pg = await import('pg');
      await sleepUntil(start);
      const ids = [];
      const runner = await run({
        connectionString: url,
        concurrency: workers,
        maxPoolSize: workers + 2,
        noHandleSignals: true,
        pollInterval: 1000,
        ...(batched ? { preset: { worker: { localQueue: { size: 500 } } } } : {}),
        taskList: { noop: async (_payload, helpers) => void ids.push(Number(helpers.job.id)) },
      });
      const client = new pg.default.Client({ connectionString: url });
      await client.connect();
      for (;;) {
        const r = await client.query('select count(*)::int as n from graphile_worker._private_jobs');
        if (r.rows[0].n === 0) break;
        await new Promise((res) => setTimeout(res, 20));
      }
      const endMs = Date.now();
      await client.end();
      await runner.stop();
      return { ids, endMs };
    },
  };
}

// ---- the table and the chart -------------------------------------------------------------

function syncFloor() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'queue-peers-floor-'));
  try {
    const fd = fs.openSync(path.join(dir, 'f'), 'w+');
    const zeros = Buffer.alloc(4096);
    for (let at = 0; at < 4 << 20; at += 4096) fs.writeSync(fd, zeros, 0, 4096, at);
    fs.fsyncSync(fd);
    const rec = Buffer.alloc(512, 7);
    const lat = [];
    for (let i = 0; i < 2000; i++) {
      const t = process.hrtime.bigint();
      fs.writeSync(fd, rec, 0, rec.length, i * 512);
      fs.fdatasyncSync(fd);
      lat.push(Number(process.hrtime.bigint() - t) / 1e3);
    }
    fs.closeSync(fd);
    lat.sort((a, b) => a - b);
    return percentile(lat, 0.5);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function machine() {
  return { cpus: os.availableParallelism(), cpuModel: os.cpus()[0]?.model ?? '?', ramGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, os: `${os.type()} ${os.release()}` };
}

function fmt(r, key) {
  if (!r) return '';
  const t = `${Math.round(r.tasksPerSec).toLocaleString('en-US')}/s`;
  return key === 'w64' && r.claimP99ms != null ? `${t} (${r.claimP99ms.toFixed(2)} ms)` : t;
}

function printTable(report) {
  console.log(`\nTask queue, ${report.tasks.toLocaleString('en-US')} no-op tasks, claim + complete, every acknowledged write fsynced; ${report.machine.cpus} CPUs; bare write+fdatasync p50 ${report.syncFloorP50us.toFixed(0)} µs; ${report.date.slice(0, 10)}`);
  console.log(`\n| queue | ${CASES.map((c) => (c.key === 'w64' ? `${c.label} (claim p99)` : c.label)).join(' | ')} | duplicates | lost |`);
  console.log(`|---|${CASES.map(() => '---:').join('|')}|---:|---:|`);
  for (const e of Object.values(report.engines)) {
    if (e.pending) {
      console.log(`| ${e.label} | pending: ${e.pending} |${CASES.slice(1).map(() => '').join(' |')} | | |`);
      continue;
    }
    const rows = Object.values(e.rows);
    console.log(`| ${e.label} | ${CASES.map((c) => fmt(e.rows[c.key], c.key)).join(' | ')} | ${rows.reduce((s, r) => s + r.duplicates, 0)} | ${rows.reduce((s, r) => s + r.lost, 0)} |`);
  }
}

function chart(report) {
  const engines = Object.entries(report.engines).filter(([, e]) => !e.pending);
  const W = 760, rowH = 18, groupH = engines.length * rowH + 24, H = 40 + CASES.length * groupH;
  const max = Math.max(1, ...engines.flatMap(([, e]) => Object.values(e.rows).map((r) => r.tasksPerSec)));
  const colors = ['#1f6feb', '#7aa7ff', '#d1242f', '#8250df', '#bf8700', '#2da44e'];
  let y = 30;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11"><text x="10" y="18" font-size="13">Task queue: tasks/s (claim + complete, durable), ${report.tasks} tasks, ${report.date.slice(0, 10)}</text>`];
  for (const c of CASES) {
    parts.push(`<text x="10" y="${y + 12}" font-weight="bold">${c.label}</text>`);
    y += 16;
    engines.forEach(([, e], i) => {
      const r = e.rows[c.key];
      const w = r ? Math.max(1, (r.tasksPerSec / max) * (W - 330)) : 0;
      parts.push(`<text x="10" y="${y + 12}">${e.label.slice(0, 42)}</text><rect x="290" y="${y + 2}" width="${w}" height="13" fill="${colors[i % colors.length]}"/>` + (r ? `<text x="${295 + w}" y="${y + 12}">${Math.round(r.tasksPerSec).toLocaleString('en-US')}</text>` : ''));
      y += rowH;
    });
    y += 8;
  }
  parts.push('</svg>');
  return parts.join('\n');
}

// Last, once every const above is initialized: the parent, or one of its children.
const role = process.env.QUEUE_PEERS_ROLE;
if (role !== undefined) await child(role);
else await main();
