// The workload of `macro/cartridge/*` (issue #16 §4): a queue of `tasks`
// ready tasks over `types` types (priorities 0..9), and what a reader pays to
// ask "what runs next of type T" and "how many of type T" three ways:
//
// - the cartridge (openCartridge: the file loaded and checked, lookups from
//   its bytes, the commits since applied as a delta);
// - the queue's ordered index in the tree (a read transaction over the ready
//   index's prefix for the type: what a claim reads);
// - the baseline without an index: a scan of every task record, decoding each
//   to pick the ready ones of the type (what a table without the ready index
//   would cost).
//
// Plus the cartridge's own costs: a build from a snapshot (the background
// build) and from the log alone, a load as the service does it (mapped with
// the native addon, read whole by the fallback; every check), warm and cold
// (the file dropped from the page cache first), the file's size, and the
// cost of applying one commit (an enqueue of one task) to a loaded cartridge.
//
// Run as a script (the harness's child): `node cartridge_load.js '<json CartridgeLoadOptions>'`
// prints one JSON CartridgeLoadResult line.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildCartridgeFromLog } from '../cartridge/build.js';
import { loadCartridgeFile } from '../cartridge/file.js';
import { openCartridge } from '../cartridge/serve.js';
import { open } from '../db/index.js';
import { openQueue } from '../queue/index.js';
import { QUEUE_KEY_PREFIX, TAG_READY, TAG_TASK } from '../queue/keys.js';
import { decodeTask, TaskState } from '../queue/task.js';

export interface CartridgeLoadOptions {
  file: string;
  tasks: number;
  types: number;
  /** Timed lookups per way (the task-scan baseline does min(ops, scanOps)). */
  ops: number;
  scanOps: number;
}

export interface CartridgeLoadResult {
  nextNs: { cartridge: number[]; index: number[]; scan: number[] };
  countNs: { cartridge: number[]; index: number[]; scan: number[] };
  buildSnapshotMs: number;
  buildLogMs: number;
  /** Median of 5 loads as a served cartridge loads (loadCartridgeFile: mapped with the native addon, else read), every check included. */
  loadMs: number;
  loadMapped: boolean;
  /** The same after dropping the file from the page cache (median of 3); NaN where that cannot be done. */
  coldLoadMs: number;
  bytes: number;
  applyUsPerCommit: number;
}

const now = (): number => Number(process.hrtime.bigint());
const BATCH = 10_000;

export async function runCartridgeLoad(o: CartridgeLoadOptions): Promise<CartridgeLoadResult> {
  // The whole log kept: the build from the log alone replays it from txn 1.
  const db = open(o.file, { sync: 'none', log: { retainTxns: Infinity, retainBytes: Infinity } });
  const q = openQueue(db, 'work');
  const typeName = (i: number): string => `type${String(i % o.types).padStart(3, '0')}`;
  for (let i = 0; i < o.tasks; i += BATCH) {
    const w = db.beginWrite();
    q.enqueueIn(w, Array.from({ length: Math.min(BATCH, o.tasks - i) }, (_, j) => ({ type: typeName(i + j), payload: { n: i + j }, priority: (i + j) % 10 })));
    w.commit();
  }

  // Builds: in the background from a snapshot (openCartridge), and from the log alone.
  let t0 = now();
  const service = openCartridge(db, { everyCommits: Infinity, deltaEntries: Infinity });
  await service.rebuild();
  const buildSnapshotMs = (now() - t0) / 1e6;
  t0 = now();
  buildCartridgeFromLog(o.file);
  const buildLogMs = (now() - t0) / 1e6;
  const bytes = fs.statSync(service.file).size;
  const loads: number[] = [];
  let loadMapped = false;
  for (let i = 0; i < 5; i++) {
    t0 = now();
    const loaded = loadCartridgeFile(service.file);
    loads.push((now() - t0) / 1e6);
    loadMapped = loaded.mapped;
    loaded.close();
  }
  loads.sort((a, b) => a - b);
  // Cold: the file's pages dropped from the page cache first (GNU dd's nocache with count=0 drops a whole
  // file's clean pages), median of 3; NaN where that cannot be done (no GNU dd).
  const coldLoads: number[] = [];
  for (let i = 0; i < 3; i++) {
    const drop = spawnSync('dd', [`if=${service.file}`, 'iflag=nocache', 'count=0', 'status=none'], { encoding: 'utf8' });
    if (drop.status !== 0) break;
    t0 = now();
    const loaded = loadCartridgeFile(service.file);
    coldLoads.push((now() - t0) / 1e6);
    loaded.close();
  }
  coldLoads.sort((a, b) => a - b);

  const prefixOf = (type: string): Buffer => Buffer.concat([QUEUE_KEY_PREFIX, Buffer.from('work'), Buffer.from([0, TAG_READY]), Buffer.from(type), Buffer.from([0])]);
  const taskPrefix = Buffer.concat([QUEUE_KEY_PREFIX, Buffer.from('work'), Buffer.from([0, TAG_TASK])]);
  const timed = (n: number, f: (i: number) => void): number[] => {
    const ns: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = now();
      f(i);
      ns.push(now() - s);
    }
    return ns;
  };
  const index = (type: string, limit: number): number => {
    const r = db.beginRead();
    try {
      let n = 0;
      for (const _ of r.scan({ prefix: prefixOf(type) })) if (++n >= limit) break;
      return n;
    } finally {
      r.close();
    }
  };
  const scan = (type: string, limit: number): number => {
    // No index: every task record, decoded, kept if ready and of the type; the best (priority, then age) found.
    const r = db.beginRead();
    try {
      let n = 0;
      let best = -1;
      let bestPriority = -Infinity;
      for (const [k, v] of r.scan({ prefix: taskPrefix })) {
        void k;
        const t = decodeTask(v, 'work');
        if (t.state !== TaskState.pending || t.type !== type) continue;
        n++;
        if (t.priority > bestPriority) {
          bestPriority = t.priority;
          best = t.id;
        }
      }
      return limit === 1 ? best : n;
    } finally {
      r.close();
    }
  };
  const scanOps = Math.min(o.ops, o.scanOps);
  const nextNs = {
    cartridge: timed(o.ops, (i) => service.next('work', typeName(i), 1)),
    index: timed(o.ops, (i) => index(typeName(i), 1)),
    scan: timed(scanOps, (i) => scan(typeName(i), 1)),
  };
  const countNs = {
    cartridge: timed(o.ops, (i) => service.count('work', typeName(i))),
    index: timed(Math.min(o.ops, scanOps * 10), (i) => index(typeName(i), Infinity)),
    scan: timed(scanOps, (i) => scan(typeName(i), Infinity)),
  };

  // One commit (an enqueue of one task) applied to the loaded cartridge, per commit.
  const commits = 200;
  for (let i = 0; i < commits; i++) await q.enqueue([{ type: typeName(i), payload: i }]);
  t0 = now();
  service.count('work', typeName(0)); // applies the 200 commits
  const applyUsPerCommit = (now() - t0) / 1e3 / commits;

  await service.close();
  await q.close();
  db.close();
  return { nextNs, countNs, buildSnapshotMs, buildLogMs, loadMs: loads[2]!, coldLoadMs: coldLoads.length === 3 ? coldLoads[1]! : NaN, loadMapped, bytes, applyUsPerCommit };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  void runCartridgeLoad(JSON.parse(process.argv[2]!) as CartridgeLoadOptions).then((r) => {
    fs.writeSync(1, `${JSON.stringify(r)}\n`);
    process.exit(0);
  });
}
