// The workload of `macro/replication/*` (issue #18 §5), against a real 3-node
// NATS JetStream cluster this driver starts on loopback ports
// (ts/testing/nats.ts), all in one run so that the ways compare side by side:
//
// - commit: 1-put durable commits (sync 'full', db.write) with no
//   replication, with 'async' and with 'quorum' replication: p50/p99 latency
//   of commits one at a time, and commits/s with `concurrency` in flight
//   (group commit);
// - lag: a primary ('async') committing at a paced rate (commits issued
//   every millisecond, open loop) with a replica in this process; for each
//   commit, the time from its commit resolving on the primary to its being
//   durable and visible on the replica (the replica's 'applied' event);
// - catch-up: a replica opened on a stream of `catchUpCommits` commits,
//   timed until it has applied them all.
//
// Run as a script (the harness's child): `node replication_load.js '<json ReplicationLoadOptions>'`
// prints one JSON ReplicationLoadResult line.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { open, type Database } from '../db/index.js';
import { listSnapshots, snapshotBucket } from '../replication/snapshot.js';
import { openStream } from '../replication/stream.js';
import { openReplica } from '../replication/replica.js';
import { startReplication, type ReplicationMode } from '../replication/primary.js';
import { startNatsCluster } from '../testing/nats.js';

export interface ReplicationLoadOptions {
  /** Commits timed one at a time, per mode. */
  serialCommits: number;
  /** Commits timed with `concurrency` in flight, per mode. */
  concurrentCommits: number;
  concurrency: number;
  /** Offered commit rates for the lag measure (commits/s). */
  rates: number[];
  /** How long each rate runs (ms). */
  rateMs: number;
  /** Commits a new replica catches up on. */
  catchUpCommits: number;
  /** Keys of the database a new replica bootstraps from a snapshot of. */
  bootstrapKeys?: number;
  /** Which measures to run (default all but bootstrap). */
  parts?: ('commit' | 'lag' | 'catchUp' | 'bootstrap')[];
}

export interface ReplicationLoadResult {
  /** Per mode ('none', 'async', 'quorum'): serial latencies (ns) and concurrent commits/s. */
  commit: Record<string, { latencyNs: number[]; commitsPerSec: number }>;
  /** Per offered rate: lag samples (ms), the achieved commit rate, and commits the replica did not apply in time (empty when not run). */
  lag: { rate: number; achieved: number; lagMs: number[]; missing: number }[];
  catchUp: { commits: number; ms: number; commitsPerSec: number } | null;
  /** A new replica of a `keys`-key database: the snapshot's bytes, how long storing it took, and the bootstrap until caught up. */
  bootstrap?: { keys: number; snapshotBytes: number; snapshotMs: number; bootstrapMs: number };
}

const now = (): number => Number(process.hrtime.bigint());
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runReplicationLoad(o: ReplicationLoadOptions): Promise<ReplicationLoadResult> {
  const cluster = await startNatsCluster();
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-replbench-'));
  let n = 0;
  const stream = (): string => `bench_${process.pid}_${++n}`;
  const value = Buffer.alloc(128, 7);
  const parts = new Set(o.parts ?? ['commit', 'lag', 'catchUp']);
  /**
   * A `keys`-key database (16-byte keys, 128-byte values) loaded in 1,000-key
   * commits, a snapshot taken at its last load txn, then a new replica timed
   * from openReplica until it has the primary's latest txn.
   */
  const measureBootstrap = async (keys: number): Promise<NonNullable<ReplicationLoadResult['bootstrap']>> => {
    const name = stream();
    const db = open(nodePath.join(dir, 'boot.ndb'), { sync: 'none' });
    const per = 1_000;
    const txns = Math.ceil(keys / per);
    const repl = await startReplication(db, { servers: cluster.servers, stream: name, snapshotEveryTxns: txns, keepSnapshots: 1 });
    const t0 = now();
    for (let i = 0; i < keys; i += per) {
      const w = db.beginWrite();
      for (let j = i; j < Math.min(keys, i + per); j++) w.put(`key${String(j).padStart(13, '0')}`, value);
      w.commit();
      if ((i / per) % 50 === 0) await sleep(0);
    }
    await repl.flushed(txns);
    while (repl.stats().snapshots === 0 && !repl.stats().lastError?.startsWith('snapshot')) await sleep(10);
    const snapshotMs = (now() - t0) / 1e6;
    if (repl.stats().snapshots === 0) throw new Error(repl.stats().lastError ?? 'no snapshot');
    const s = await openStream({ servers: cluster.servers, stream: name });
    const snapshotBytes = (await listSnapshots((await snapshotBucket(s, null))!)).at(-1)!.size;
    await s.nc.close();
    const t1 = now();
    const replica = await openReplica(nodePath.join(dir, 'boot.r.ndb'), { servers: cluster.servers, stream: name });
    while (replica.txnId < db.txnId) await sleep(1);
    const bootstrapMs = (now() - t1) / 1e6;
    await replica.close();
    await repl.close();
    db.close();
    return { keys, snapshotBytes, snapshotMs, bootstrapMs };
  };

  try {
    // Commit latency and throughput, per mode, side by side.
    const commit: ReplicationLoadResult['commit'] = {};
    for (const mode of parts.has('commit') ? (['none', 'async', 'quorum'] as const) : []) {
      const db = open(nodePath.join(dir, `commit-${mode}.ndb`));
      const repl = mode === 'none' ? null : await startReplication(db, { servers: cluster.servers, stream: stream(), mode: mode as ReplicationMode });
      const latencyNs: number[] = [];
      for (let i = 0; i < o.serialCommits; i++) {
        const t0 = now();
        await db.write((w) => w.put(`k${i % 1000}`, value));
        latencyNs.push(now() - t0);
      }
      let left = o.concurrentCommits;
      const t0 = now();
      await Promise.all(
        Array.from({ length: o.concurrency }, async (_, k) => {
          while (left-- > 0) await db.write((w) => w.put(`c${k}:${left % 1000}`, value));
        }),
      );
      const commitsPerSec = o.concurrentCommits / ((now() - t0) / 1e9);
      await repl?.close();
      db.close();
      commit[mode] = { latencyNs, commitsPerSec };
    }

    // Replica lag at paced rates.
    const lag: ReplicationLoadResult['lag'] = [];
    for (const rate of parts.has('lag') ? o.rates : []) {
      const name = stream();
      const db = open(nodePath.join(dir, `lag-${rate}.ndb`));
      const repl = await startReplication(db, { servers: cluster.servers, stream: name, mode: 'async' });
      const replica = await openReplica(nodePath.join(dir, `lag-${rate}.r.ndb`), { servers: cluster.servers, stream: name });
      const committedAt = new Map<number, number>();
      const lagMs: number[] = [];
      const appliedFirst = new Set<number>();
      replica.on('applied', (txn: number) => {
        const t = committedAt.get(txn);
        if (t !== undefined) {
          lagMs.push((now() - t) / 1e6);
          committedAt.delete(txn);
        } else appliedFirst.add(txn); // before the primary's own promise ran: no lag to speak of
      });
      const perMs = rate / 1000;
      const inFlight = new Set<Promise<void>>();
      const start = now();
      let issued = 0;
      let done = 0;
      while (now() - start < o.rateMs * 1e6) {
        const due = Math.floor(((now() - start) / 1e6) * perMs);
        for (; issued < due; issued++) {
          let txn = 0;
          const p = db
            .write((w) => {
              txn = w.txnId;
              w.put(`k${issued % 1000}`, value);
            })
            .then(() => {
              if (appliedFirst.delete(txn)) lagMs.push(0);
              else committedAt.set(txn, now());
              done++;
            });
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
        await sleep(1);
      }
      await Promise.all(inFlight);
      const achieved = done / ((now() - start) / 1e9);
      const deadline = Date.now() + 30_000;
      while (replica.txnId < db.txnId && Date.now() < deadline) await sleep(5);
      await sleep(20);
      lag.push({ rate, achieved, lagMs, missing: committedAt.size });
      await replica.close();
      await repl.close();
      db.close();
    }

    const bootstrap = parts.has('bootstrap') ? await measureBootstrap(o.bootstrapKeys ?? 100_000) : undefined;

    // A new replica catching up on a stream it has never seen.
    if (!parts.has('catchUp')) return { commit, lag, catchUp: null, ...(bootstrap ? { bootstrap } : {}) };
    const name = stream();
    const db: Database = open(nodePath.join(dir, 'catchup.ndb'), { sync: 'none' });
    const repl = await startReplication(db, { servers: cluster.servers, stream: name });
    for (let i = 0; i < o.catchUpCommits; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, o.catchUpCommits - i) }, (_, j) => db.write((w) => w.put(`k${(i + j) % 5000}`, value))));
    }
    await repl.flushed(db.txnId);
    const t0 = now();
    const replica = await openReplica(nodePath.join(dir, 'catchup.r.ndb'), { servers: cluster.servers, stream: name });
    while (replica.txnId < db.txnId) await sleep(1);
    const ms = (now() - t0) / 1e6;
    await replica.close();
    await repl.close();
    db.close();
    return { commit, lag, catchUp: { commits: o.catchUpCommits, ms, commitsPerSec: o.catchUpCommits / (ms / 1000) }, ...(bootstrap ? { bootstrap } : {}) };
  } finally {
    await cluster.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  void runReplicationLoad(JSON.parse(process.argv[2]!) as ReplicationLoadOptions).then((r) => {
    fs.writeSync(1, `${JSON.stringify(r)}\n`);
    process.exit(0);
  });
}
