// Replica crash torture (issue #18 §4, `npm run hardening -- --suite
// replkill`; a short form runs in `npm test`): a primary in this process
// writes the model workload (ts/testing/replication_model.ts) to a real
// 3-node NATS cluster while a replica process (ts/hard/replication.child.ts)
// is SIGKILLed at a random moment, again and again (8 times short, 120
// long), and restarted each time on the same database. Checked:
//
// - every restart resumes: the replica opens, at a txn no earlier than the
//   last one it had made durable (a crash loses only what was not durable);
// - no gap and no duplicate application: the replica never stops on a txn out
//   of order (it stops, and says so, if it meets one);
// - at the end, caught up, its state hash equals the primary's and the
//   model's, and its db.verify() finds nothing.

import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { createInterface } from 'node:readline';
import { open } from '../db/index.js';
import { openReplica } from '../replication/replica.js';
import { startReplication } from '../replication/primary.js';
import { startNatsCluster } from '../testing/nats.js';
import { databaseHash, modelCommit, modelHash, until } from '../testing/replication_model.js';
import { compiledEngine } from './compiled.js';
import type { Figures, HardeningSuite, SuiteOptions } from './registry.js';
import { rngOf } from './workload.js';

export interface ReplicaKillOptions extends SuiteOptions {
  /** Kills (default: 8 short, 120 long). */
  kills?: number;
}


export async function runReplicaKill(opts: ReplicaKillOptions): Promise<Figures> {
  const kills = opts.kills ?? (opts.long ? 120 : 8);
  const rng = rngOf(opts.seed);
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-replkill-'));
  const engine = compiledEngine(dir);
  const cluster = await startNatsCluster();
  const f = { kills: 0, failures: 0, commits: 0, resumedBehind: 0, gaps: 0, childErrors: 0, hashMismatch: 0, verifyProblems: 0, seed: opts.seed };
  const fail = (why: string): void => {
    f.failures++;
    opts.log(`FAIL ${why}`);
  };
  const stream = `replkill_${process.pid}`;
  const db = open(nodePath.join(dir, 'p.ndb'));
  const replicaPath = nodePath.join(dir, 'r.ndb');
  let stop = false;
  let writing: Promise<void> = Promise.resolve();
  try {
    const repl = await startReplication(db, { servers: cluster.servers, stream });
    writing = (async () => {
      while (!stop) {
        await db.write((w) => {
          const c = modelCommit(w.txnId);
          for (const [k, v] of c.put) w.put(k, v);
          for (const k of c.del) w.del(k);
        });
        f.commits++;
        if (f.commits % 20 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    let durableBefore = 0;
    for (let i = 0; i < kills; i++) {
      const proc: ChildProcess = spawn(process.execPath, [nodePath.join(engine, 'hard', 'replication.child.js'), 'replica', replicaPath, cluster.servers.join(','), stream], { stdio: ['ignore', 'pipe', 'inherit'] });
      const lines: string[] = [];
      createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      await until('the replica to open', () => lines.some((l) => l.startsWith('ready') || l.startsWith('error')), 30_000);
      const error = lines.find((l) => l.startsWith('error'));
      if (error !== undefined) (f.childErrors++, fail(`restart ${i}: ${error}`));
      const ready = Number(lines.find((l) => l.startsWith('ready'))?.split(' ')[1] ?? -1);
      if (ready >= 0 && ready < durableBefore) (f.resumedBehind++, fail(`restart ${i} opened at txn ${ready}, before ${durableBefore}, durable at the previous open`));
      await new Promise((r) => setTimeout(r, 10 + Math.floor(rng() * 200)));
      proc.kill('SIGKILL');
      await exited;
      f.kills++;
      const stopped = lines.filter((l) => l.startsWith('stopped'));
      if (stopped.length > 0) (f.gaps++, fail(`restart ${i}: ${stopped[0]}`));
      // What this run applied is durable up to some txn we cannot see from here; the next open must not go below the previous open.
      durableBefore = Math.max(durableBefore, ready);
    }
    stop = true;
    await writing;
    await repl.flushed(db.txnId);
    await repl.close();
    const final = await openReplica(replicaPath, { servers: cluster.servers, stream });
    try {
      await until('the replica to catch up', () => final.txnId === db.txnId || final.stats().state !== 'following', 60_000);
      if (final.stats().lastError !== null) (f.gaps++, fail(`final: ${final.stats().lastError}`));
      const [replica, primary, model] = [databaseHash(final.db), databaseHash(db), modelHash(db.txnId)];
      if (replica !== primary || primary !== model) (f.hashMismatch++, fail(`state hash: replica ${replica}, primary ${primary}, model ${model}`));
      const problems = final.db.verify().problems;
      if (problems.length > 0) (f.verifyProblems += problems.length, fail(`verify: ${JSON.stringify(problems.slice(0, 3))}`));
    } finally {
      await final.close();
    }
    opts.log(`${f.kills} kills, ${f.commits} commits, replica at txn ${db.txnId}`);
  } finally {
    stop = true;
    await writing.catch(() => {});
    db.close();
    await cluster.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return f;
}

export const replicaKillSuite: HardeningSuite = {
  name: 'replkill',
  run: (opts) => runReplicaKill(opts),
};
