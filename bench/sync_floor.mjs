// The floor under a durable commit on this machine, without any database
// (bench/sync_floor.c): device requests per fdatasync depending on whether
// the log grows and on what reads the data file's change time
// (spec/file_format_v1.md §8.5), and the p99 of small write + fdatasync
// commits alone and with every CPU busy (issue #6's writer ratio, whose floor
// this is). Linux with a C compiler (cc) only.
//
//   node bench/sync_floor.mjs [--commits 2000] [--dir DIR] [--json out.json]

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { option } from './peer.mjs';

const args = process.argv.slice(2);
const commits = Number(option(args, 'commits', 2000));
const here = path.dirname(fileURLToPath(import.meta.url));

/** Builds and runs bench/sync_floor.c in `work`; returns why nothing was measured, or null. */
function measure(work) {
  const exe = path.join(work, 'sync_floor');
  const cc = spawnSync('cc', ['-O2', '-pthread', '-o', exe, path.join(here, 'sync_floor.c')], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) return `no C compiler or the build failed (${cc.error?.message ?? cc.stderr.trim()})`;
  const run = spawnSync(exe, [work, String(commits)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (run.status !== 0) throw new Error(`sync_floor exited with ${run.status}`);
  const rows = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const by = Object.fromEntries(rows.map((r) => [r.case, r]));
  console.log(`sync floor: ${commits} commits per case (851 B record + fdatasync of the log; 8 pages of 16 KiB to a data file first), ${os.availableParallelism()} CPUs`);
  console.log('| case | commits/s | p50 | p99 | device requests per sync |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.case} | ${r.commits_per_sec.toLocaleString('en-US')} | ${r.p50_us} µs | ${r.p99_us} µs | ${r.requests_per_sync.toFixed(2)} |`);
  const busy = by['every CPU busy'];
  const alone = by.alone;
  if (busy && alone) console.log(`p99 with every CPU busy ÷ alone: ${(busy.p99_us / alone.p99_us).toFixed(2)}x (issue #6's writer target is <= 2x)`);
  const warm = by["commit's CPU work, back to back"];
  const cold = by["commit's CPU work, right after each fdatasync"];
  if (warm && cold) console.log(`the same CPU work right after a fdatasync ÷ back to back: p50 ${(cold.p50_us / warm.p50_us).toFixed(2)}x, p99 ${(cold.p99_us / warm.p99_us).toFixed(2)}x (a durable commit pays its CPU at the cold rate)`);
  const json = option(args, 'json', null);
  if (json !== null) fs.writeFileSync(json, JSON.stringify({ commits, cpus: os.availableParallelism(), rows }, null, 2));
  return null;
}

// Not measurable here is said on stdout and is no error (exit 0): the script is an
// optional side measurement, like the lmdb-js peer when lmdb is not installed.
if (process.platform !== 'linux') console.log('sync_floor: Linux only (reads /proc/diskstats); nothing measured');
else {
  const work = fs.mkdtempSync(path.join(option(args, 'dir', os.tmpdir()), 'northstar-sync-floor-'));
  try {
    const why = measure(work);
    if (why !== null) console.log(`sync_floor: ${why}; nothing measured`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
