// The cost of the queue's two everyday reads and writes against the number of
// finished tasks it keeps (issue #15 §5: "q.stats() and q.claim() cost does
// not grow with the number of done tasks kept"), for
// `macro/task_queue_done/*`. Two databases, one with `small` done tasks and
// one with `large`, each with `pending` ready tasks on top and retention off
// (every done task kept); on each, `ops` timed calls of the operation:
//
// - 'stats': q.stats() (counts by state and type, the oldest ready task's age);
// - 'claim': a durable claim of one task and its durable completion, in turn
//   (sync 'full'), so each sample is the claim alone, asked -> durable.
//
// Run as a script (the harness's child, like queue_load.ts):
// `node queue_done.js '<json QueueDoneOptions>'` prints one JSON QueueDoneResult line.

import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { open } from '../db/index.js';
import { openQueue } from '../queue/index.js';

export type QueueDoneOp = 'stats' | 'claim';

export interface QueueDoneOptions {
  /** Two database files to create (removed by the caller): the small and the large one. */
  files: [string, string];
  op: QueueDoneOp;
  small: number;
  large: number;
  /** Ready tasks besides the done ones (claims take from them). */
  pending: number;
  /** Timed calls per database. */
  ops: number;
}

export interface QueueDoneResult {
  /** Latency of each timed call on the large database, ns. */
  largeNs: number[];
  smallNs: number[];
  /** Seconds spent building the large database (enqueue + claim + complete of every done task). */
  buildLargeSec: number;
}

const BATCH = 5000;
const now = (): number => Number(process.hrtime.bigint());

/** A database whose queue holds `done` done tasks and `pending` ready ones, every done task kept. */
async function build(file: string, done: number, pending: number): Promise<number> {
  const t0 = now();
  const db = open(file, { sync: 'none' }); // building: durability is not what is measured
  const q = openQueue(db, 'bench', { retention: { finishedMs: Infinity, maxFinished: Infinity } });
  // Several types, as a swarm has: counts are per state and type.
  const spec = (n: number) => ({ type: `type${n % 8}`, payload: { n } });
  for (let i = 0; i < done; i += BATCH) {
    const n = Math.min(BATCH, done - i);
    const w = db.beginWrite();
    q.enqueueIn(w, Array.from({ length: n }, (_, j) => spec(i + j)));
    w.commit();
    const got = await q.claim({ worker: 'builder', max: n, leaseMs: 3_600_000 });
    await Promise.all(got.map((t) => q.complete(t)));
  }
  const w = db.beginWrite();
  q.enqueueIn(w, Array.from({ length: pending }, (_, j) => spec(done + j)));
  w.commit();
  const counts = q.stats().counts;
  if (counts.done !== done || counts.pending !== pending) throw new Error(`built ${JSON.stringify(counts)}, wanted ${done} done and ${pending} pending`);
  await q.close();
  db.close();
  return (now() - t0) / 1e9;
}

async function measure(file: string, op: QueueDoneOp, ops: number): Promise<number[]> {
  const db = open(file, { sync: 'full' });
  const q = openQueue(db, 'bench', { retention: { finishedMs: Infinity, maxFinished: Infinity } });
  const ns: number[] = [];
  const warmup = Math.min(50, ops);
  for (let i = 0; i < ops + warmup; i++) {
    const t0 = now();
    if (op === 'stats') {
      q.stats();
      if (i >= warmup) ns.push(now() - t0);
    } else {
      const [task] = await q.claim({ worker: 'bench' });
      if (i >= warmup) ns.push(now() - t0);
      if (task === undefined) throw new Error('no pending task left to claim');
      await q.complete(task);
    }
  }
  await q.close();
  db.close();
  return ns;
}

export async function runQueueDone(o: QueueDoneOptions): Promise<QueueDoneResult> {
  await build(o.files[0], o.small, o.pending);
  const buildLargeSec = await build(o.files[1], o.large, o.pending);
  return { smallNs: await measure(o.files[0], o.op, o.ops), largeNs: await measure(o.files[1], o.op, o.ops), buildLargeSec };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  void runQueueDone(JSON.parse(process.argv[2]!) as QueueDoneOptions).then((r) => {
    fs.writeSync(1, `${JSON.stringify(r)}\n`);
    process.exit(0);
  });
}
