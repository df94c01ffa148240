// A process the replication fault tests (ts/replication/replication.test.ts, and the
// hardening suite) kill with SIGKILL at random points. Compiled JavaScript
// (ts/hard/compiled.ts), run as
//
//   node replication.child.js primary <db> <servers,...> <stream> <mode>
//     writes the model workload (modelCommit) for ever, one commit per
//     db.write (commitAsync), printing `acked <txn>` once each resolves;
//   node replication.child.js replica <db> <servers,...> <stream>
//     follows the stream, printing `at <txn>` as it applies, and `stopped
//     <why>` if following stops.

import { open } from '../db/database.js';
import { openReplica } from '../replication/replica.js';
import { startReplication, type ReplicationMode } from '../replication/primary.js';
import { modelCommit } from '../testing/replication_model.js';

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function primary(path: string, servers: string[], stream: string, mode: ReplicationMode): Promise<void> {
  const db = open(path);
  await startReplication(db, { servers, stream, mode, quorumTimeoutMs: 60_000 });
  out('ready');
  for (;;) {
    const txn = db.txnId + 1;
    const c = modelCommit(txn);
    const got = await db.write((w) => {
      if (w.txnId !== txn) throw new Error(`expected txn ${txn}, writing ${w.txnId}`);
      for (const [k, v] of c.put) w.put(k, v);
      for (const k of c.del) w.del(k);
    });
    void got;
    out(`acked ${txn}`);
  }
}

async function replica(path: string, servers: string[], stream: string): Promise<void> {
  const r = await openReplica(path, { servers, stream });
  out(`ready ${r.txnId}`);
  let last = -1;
  for (;;) {
    const s = r.stats();
    if (s.state === 'stopped') {
      out(`stopped ${s.lastError}`);
      process.exit(3);
    }
    if (s.appliedTxn !== last) out(`at ${(last = s.appliedTxn)}`);
    await new Promise((res) => setTimeout(res, 5));
  }
}

const [role, path, servers, stream, mode] = process.argv.slice(2);
const run = role === 'primary' ? primary(path!, servers!.split(','), stream!, (mode ?? 'quorum') as ReplicationMode) : replica(path!, servers!.split(','), stream!);
run.catch((err: unknown) => {
  out(`error ${(err as Error & { code?: string }).code ?? ''} ${(err as Error).message}`);
  process.exit(2);
});
