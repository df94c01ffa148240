// macro/task_queue_claims: the workload the project exists for (issue #15
// §5). `tasks` no-op tasks, then M agents claim + complete them, every call
// durable (sync 'full'), as async agents of one process, worker threads, or
// processes. Each repeat runs ts/bench/queue_load.ts in a child process on
// the implementation under test (the runner is synchronous; the queue is
// not). Latency samples are claim latencies (asked -> durable claim); extra
// figures: tasks/s, duplicates and stuck tasks (both must be 0: counted as
// errors), commits and fdatasyncs per task.

import * as path from 'node:path';
import type { Benchmark, Profile, Target } from '../registry.js';
import { zeroIo } from '../registry.js';
import { childCase, removeDatabase, runDriver } from './driver.js';
import type { QueueDoneOp, QueueDoneOptions, QueueDoneResult } from '../queue_done.js';
import type { QueueLoadMode, QueueLoadOptions, QueueLoadResult } from '../queue_load.js';

const g = { suite: 'macro', group: 'task_queue_claims', kind: 'db' } as const;

/** Tasks per repeat at a profile. */
export function queueTasks(p: Profile): number {
  return p.name === 'dev_nvme' ? 20_000 : 5_000;
}

interface Shape {
  name: string;
  mode: QueueLoadMode;
  agents: number;
  workers?: number;
  max?: number;
  /** Agents as a q.work() pool instead of claim/complete loops. */
  work?: boolean;
  critical: boolean;
  targets?: Target[];
  what: string;
}

const SHAPES: Shape[] = [
  { name: 'async_1', mode: 'async', agents: 1, critical: false, what: '1 async agent' },
  { name: 'async_16', mode: 'async', agents: 16, critical: false, what: '16 async agents in one process' },
  {
    name: 'async_64',
    mode: 'async',
    agents: 64,
    critical: true,
    what: '64 async agents in one process, one task per claim',
    targets: [
      { name: 'tasks/s >= 3x BullMQ (10,966/s in the issue #15 run)', metric: 'ops_per_sec', bound: 'atLeast', limit: 33_000, unit: 'per_sec' },
      { name: 'claim p99 < 1 ms', metric: 'p99_ns', bound: 'below', limit: 1_000_000, unit: 'ns' },
    ],
  },
  { name: 'async_256', mode: 'async', agents: 256, critical: false, what: '256 async agents in one process' },
  {
    name: 'batched_64',
    mode: 'async',
    agents: 64,
    max: 64,
    critical: false,
    what: '64 async agents claiming up to 64 tasks each',
    targets: [{ name: "tasks/s >= 3x graphile-worker's batched mode (25,681/s in the issue #15 run)", metric: 'ops_per_sec', bound: 'atLeast', limit: 77_000, unit: 'per_sec' }],
  },
  { name: 'work_64', mode: 'async', agents: 64, work: true, critical: false, what: 'q.work() with concurrency 64 (the next claim shares the completion\'s commit)' },
  { name: 'work_processes_4x16', mode: 'processes', agents: 64, workers: 4, work: true, critical: false, what: '4 processes, each a q.work() pool of 16' },
  { name: 'threads_4x16', mode: 'threads', agents: 64, workers: 4, critical: false, what: '4 worker threads x 16 agents, a handle each' },
  {
    name: 'processes_4x16',
    mode: 'processes',
    agents: 64,
    workers: 4,
    critical: false,
    what: '4 processes x 16 agents, a handle each',
    targets: [{ name: "tasks/s >= 3x the best peer's multi-process figure (BullMQ 6,188/s in the issue #15 run)", metric: 'ops_per_sec', bound: 'atLeast', limit: 18_564, unit: 'per_sec' }],
  },
  { name: 'agents_1000', mode: 'processes', agents: 1000, workers: 4, critical: false, what: '1,000 agents over 4 processes' },
];

function runLoad(o: QueueLoadOptions, impl: string): QueueLoadResult {
  return runDriver('queue_load', o, impl) as QueueLoadResult;
}

export function queueBenchmarks(): Benchmark[] {
  return SHAPES.map((s) => ({
    ...g,
    name: s.name,
    critical: s.critical,
    ...(s.targets ? { targets: s.targets } : {}),
    params: (p) => ({ tasks: queueTasks(p), agents: s.agents, mode: s.mode, workers: s.workers ?? 1, tasks_per_claim: s.max ?? 1, work_pool: s.work === true, sync: 'full', shape: s.what }),
    setup(ctx) {
      return childCase('queue_load', queueTasks(ctx.profile), s.agents, (n) => {
        const file = path.join(ctx.dir, `q${n}.ndb`);
        const res = runLoad({ file, tasks: queueTasks(ctx.profile), agents: s.agents, mode: s.mode, ...(s.workers ? { workers: s.workers } : {}), ...(s.max ? { max: s.max } : {}), ...(s.work ? { work: true } : {}) }, ctx.impl);
        removeDatabase(file);
        return {
          ops: res.tasks,
          durationNs: res.durationNs,
          samples: Float64Array.from(res.claimNs),
          errors: res.duplicates + res.stuck,
          ...(res.duplicates + res.stuck > 0 ? { firstError: new Error(`${res.duplicates} duplicates, ${res.stuck} stuck`) } : {}),
          io: { ...zeroIo(), fdatasyncs: res.fdatasyncs, bytesWritten: res.bytesWritten },
          extra: {
            tasks_per_sec: res.tasksPerSec,
            duplicates: res.duplicates,
            stuck: res.stuck,
            commits_per_task: res.commits / res.tasks,
            fdatasyncs_per_task: res.fdatasyncs / res.tasks,
          },
          notes: ['ops are tasks (claim + complete, each durable); latency samples are claim latencies, asked to durable; allocations are not counted (child processes)'],
        };
      });
    },
  }));
}

// ---- macro/task_queue_done: cost against the done tasks kept ----------------

/** Done tasks of the large database: 1M at dev_nvme (the figure), 200k at ci (a build of seconds, not a minute). */
export function doneTasksLarge(p: Profile): number {
  return p.name === 'dev_nvme' ? 1_000_000 : 200_000;
}
const DONE_SMALL = 10_000;
const DONE_PENDING = 2_000;
const DONE_OPS = 1_000;

const DONE_OPS_WHAT: Record<QueueDoneOp, string> = {
  stats: 'q.stats(): counts by state and type, the oldest ready age',
  claim: 'a durable claim of one task (each then completed, untimed)',
};

function median(ns: number[]): number {
  const s = [...ns].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/**
 * `macro/task_queue_done/{stats,claim}`: each repeat builds a queue with 10k
 * done tasks and one with doneTasksLarge() (2,000 ready tasks on top, eight
 * types, retention off) and times the operation on both. Samples and ops/s are
 * the large database's; extra figures give both medians and their ratio, the
 * target (the cost does not grow with the done tasks kept).
 */
export function queueDoneBenchmarks(): Benchmark[] {
  return (['stats', 'claim'] as const).map((op) => ({
    suite: 'macro',
    group: 'task_queue_done',
    kind: 'db',
    name: op,
    critical: false,
    targets: [{ name: `${op} median at the large size <= 1.5x at 10k done tasks (does not grow with done tasks kept)`, metric: 'large_over_small', bound: 'atMost', limit: 1.5, unit: 'ratio' }],
    params: (p) => ({ op: DONE_OPS_WHAT[op], done_small: DONE_SMALL, done_large: doneTasksLarge(p), pending: DONE_PENDING, types: 8, ops: DONE_OPS, sync: op === 'claim' ? 'full' : 'n/a (a read)' }),
    setup(ctx) {
      return childCase('queue_done', DONE_OPS, 1, (n) => {
        const files: [string, string] = [path.join(ctx.dir, `small${n}.ndb`), path.join(ctx.dir, `large${n}.ndb`)];
        const o: QueueDoneOptions = { files, op, small: DONE_SMALL, large: doneTasksLarge(ctx.profile), pending: DONE_PENDING, ops: DONE_OPS };
        const res = runDriver('queue_done', o, ctx.impl) as QueueDoneResult;
        for (const f of files) removeDatabase(f);
        const small = median(res.smallNs);
        const large = median(res.largeNs);
        return {
          ops: res.largeNs.length,
          durationNs: res.largeNs.reduce((a, b) => a + b, 0),
          samples: Float64Array.from(res.largeNs),
          extra: { small_p50_ns: small, large_p50_ns: large, large_over_small: large / small, build_large_sec: res.buildLargeSec },
          notes: ['ops/s and samples: the large database; duration is the sum of the timed calls; allocations and I/O are not counted (child process)'],
        };
      });
    },
  }));
}
