// One agent process of the task-queue crash torture (ts/hard/queuecrash.ts),
// run compiled: `node queuecrash.child.js '<json QueueChildArgs>'`. Several
// share one database. Each runs a producer and a few async agents on queue
// 'work': the producer enqueues small batches; each agent claims (short
// leases), then completes the task (most often), fails it, or abandons it so
// that its lease expires and another claim takes it back.
//
// Lines on stdout, each written with fs.writeSync before the next step, so a
// SIGKILL loses none that was written:
//
//   enq ID...          enqueue acknowledged (durable): these task ids exist
//   claim ID TOKEN     claim acknowledged
//   try ID TOKEN       about to complete that claim
//   done ID TOKEN      completion acknowledged
//   lost ID TOKEN      the completion or failure was refused with LeaseLost
//   fail ID TOKEN      failure acknowledged
//   die NAME           about to SIGKILL itself at failpoint NAME
//   err CODE MESSAGE   any other error; the process then exits with code 1
//   done-all           finished its workload and closed

import * as fs from 'node:fs';
import { open } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import { setFailpointHook, type FailpointName } from '../io/failpoint.js';
import { openQueue } from '../queue/index.js';
import { rngOf } from './workload.js';

export interface QueueChildArgs {
  path: string;
  seed: number;
  /** Claims each agent makes before the process closes. */
  claims: number;
  agents: number;
  leaseMs: number;
  /** SIGKILL itself at hit `hit` of this window, or never (null). */
  failpoint: FailpointName | null;
  hit: number;
}

const out = (line: string): void => void fs.writeSync(1, `${line}\n`);

async function main(args: QueueChildArgs): Promise<void> {
  if (args.failpoint !== null) {
    let hits = 0;
    setFailpointHook((name) => {
      if (name === args.failpoint && ++hits === args.hit) {
        out(`die ${name}`);
        process.kill(process.pid, 'SIGKILL');
      }
    });
  }
  const r = rngOf(args.seed);
  const db = open(args.path, { sync: 'full', checkpoint: { commits: 20 } });
  const q = openQueue(db, 'work', { retention: { finishedMs: Infinity, maxFinished: Infinity } });
  let producing = true;
  const producer = (async () => {
    while (producing) {
      const n = 1 + Math.floor(r() * 4);
      const ids = await q.enqueue(Array.from({ length: n }, (_, i) => ({ type: r() < 0.5 ? 'a' : 'b', payload: { by: process.pid, i }, priority: Math.floor(r() * 3), maxAttempts: 1_000 })));
      out(`enq ${ids.join(' ')}`);
      await new Promise((res) => setTimeout(res, Math.floor(r() * 8)));
    }
  })();
  const agent = async (n: number): Promise<void> => {
    for (let c = 0; c < args.claims; c++) {
      const [t] = await q.claim({ worker: `${process.pid}:${n}`, leaseMs: args.leaseMs, waitMs: 50 });
      if (t === undefined) continue;
      out(`claim ${t.id} ${t.token}`);
      const x = r();
      try {
        // Now and then an agent stalls past its lease first: its task may be claimed again
        // meanwhile, and then only the newer claim may complete it (fencing).
        if (r() < 0.08) await new Promise((res) => setTimeout(res, args.leaseMs + Math.floor(r() * 100)));
        if (x < 0.75) {
          out(`try ${t.id} ${t.token}`);
          await q.complete(t, { by: process.pid, token: t.token });
          out(`done ${t.id} ${t.token}`);
        } else if (x < 0.9) {
          await q.fail(t, { error: 'agent failed', retryInMs: 0 });
          out(`fail ${t.id} ${t.token}`);
        }
        // else: abandoned; its lease expires and a later claim takes the task back.
      } catch (err) {
        if (err instanceof NorthstarError && err.code === 'LeaseLost') out(`lost ${t.id} ${t.token}`);
        else throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: args.agents }, (_, n) => agent(n)));
  producing = false;
  await producer;
  await q.close();
  db.close();
  out('done-all');
}

main(JSON.parse(process.argv[2]!) as QueueChildArgs).catch((err: unknown) => {
  out(`err ${err instanceof NorthstarError ? err.code : 'Error'} ${String(err instanceof Error ? err.message : err).replace(/\n/g, ' ')}`);
  process.exit(1);
});
