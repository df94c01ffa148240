// One process of the multi-process crash torture (ts/hard/crashmulti.ts),
// run compiled: `node crashmulti.child.js '<json ChildArgs>'`. Several of these
// share one database at once. Each runs a seeded workload, taking turns as
// writer with beginWrite({ timeoutMs }) or beginWriteAsync: single commits and commitAsync groups
// of ts/hard/workload.ts operations (puts, deletes, overflow values, multi-op
// commits), aborts, checkpoints, now and then truncateLog and verify(), and
// reads: the latest snapshot, time travel, and snapshots held across other
// processes' commits. A commit of txn t has the operations opsFor(opsSeed, t),
// opsSeed being this process's own, so the parent can tell whose commit became
// txn t.
//
// Lines on stdout, each written with fs.writeSync before the next step (so a
// SIGKILL loses none that was written); `ts` is process.hrtime.bigint(), the
// machine's monotonic clock, comparable between processes:
//
//   open T HASH        opened at txn T with that state hash
//   try T ts           about to commit txn T (sent before commit() starts)
//   ack T DIGEST       txn T acknowledged (commit() returned, or commitAsync resolved)
//   rd T HASH KIND     a snapshot of txn T had state HASH (KIND: latest, travel, held)
//   refused T          time travel to T was SnapshotNotFound (history moved on meanwhile)
//   busy               WriteBusy (beginWrite timed out, or checkpoint/truncateLog found the writer held)
//   verify N           verify() found N problems
//   trunc T            about to truncateLog({ beforeTxnId: T }), or, T = retention,
//                      opening with a log retention that drops records at checkpoints
//   die NAME ts        about to SIGKILL itself at failpoint NAME
//   err CODE MESSAGE   any other error; the process then exits with code 1
//   logstart P         (with retention) where the log starts just before closing
//   done               closed cleanly

import * as fs from 'node:fs';
import { open, type Database } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import { setFailpointHook, type FailpointName } from '../io/failpoint.js';
import { stateHashOf } from '../log/replay.js';
import type { ReadTxn } from '../txn/read.js';
import type { WriteTxn } from '../txn/write.js';
import { applyOps, digestOf, opsFor, rngOf } from './workload.js';

export interface ChildArgs {
  path: string;
  /** Seed of this process's commits: txn t gets opsFor(opsSeed, t). */
  opsSeed: number;
  /** Seed of this process's choices. */
  seed: number;
  /** Commits to acknowledge before closing. */
  commits: number;
  /** SIGKILL itself at hit `hit` of this window, or never (null). */
  failpoint: FailpointName | null;
  hit: number;
  /** Call truncateLog now and then. */
  truncate: boolean;
  /** Wait this long before opening. */
  delayMs: number;
  pageSize: number;
  historyTxns: number;
  checkpointCommits: number;
  /**
   * Log retention of this handle (`log.retainTxns`, no byte bound, no minimum
   * drop), so its checkpoints drop records as they go; null: the defaults.
   */
  retainTxns: number | null;
  /** beginWrite({ timeoutMs }). */
  timeoutMs: number;
}

const out = (s: string): void => {
  fs.writeSync(1, s + '\n');
};
const now = (): string => process.hrtime.bigint().toString();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const isCode = (err: unknown, code: string): boolean => err instanceof NorthstarError && err.code === code;

async function main(a: ChildArgs): Promise<void> {
  if (a.failpoint !== null) {
    let hits = 0;
    setFailpointHook((name) => {
      if (name === a.failpoint && ++hits === a.hit) {
        out(`die ${name} ${now()}`);
        process.kill(process.pid, 'SIGKILL');
      }
    });
  }
  const r = rngOf(a.seed);
  const rand = (n: number): number => Math.floor(r() * n);
  if (a.delayMs > 0) await sleep(a.delayMs);
  const log = a.retainTxns === null ? undefined : { retainTxns: a.retainTxns, retainBytes: Infinity, minDropBytes: 0 };
  // Replay from the log alone may then lack the start, as after truncateLog.
  if (log !== undefined) out(`trunc retention`);
  const db: Database = open(a.path, { pageSize: a.pageSize, history: { txns: a.historyTxns }, checkpoint: { commits: a.checkpointCommits }, ...(log ? { log } : {}) });
  {
    const rd = db.beginRead();
    out(`open ${rd.txnId} ${stateHashOf(rd.scan())}`);
    rd.close();
  }
  let acked = 0;
  let held: { rd: ReadTxn; left: number } | null = null;
  /** beginWrite, the commit's operations, and the `try` line. */
  const begin = (): WriteTxn => {
    const w = db.beginWrite({ timeoutMs: a.timeoutMs });
    const t = w.txnId;
    applyOps(w, opsFor(a.opsSeed, t));
    out(`try ${t} ${now()}`);
    return w;
  };
  const ack = (id: number, want: number): void => {
    if (id !== want) throw new Error(`commit gave txn ${id}, its transaction said ${want}`);
    out(`ack ${id} ${digestOf(opsFor(a.opsSeed, id))}`);
    acked++;
  };
  while (acked < a.commits) {
    const x = r();
    try {
      if (x < 0.05) db.checkpoint();
      else if (x < 0.08 && a.truncate) {
        const before = db.stats().checkpoint.txnId;
        if (before > 1) {
          // Announced first: a kill inside truncateLog may leave the log cut.
          out(`trunc ${before}`);
          db.truncateLog({ beforeTxnId: before });
        }
      } else if (x < 0.1) {
        const report = db.verify();
        out(`verify ${report.problems.length}`);
      } else if (x < 0.16) {
        // Time travel into the newer half of the retained history (the older end may move on
        // before beginRead, as other processes commit: SnapshotNotFound then, reported).
        const s = db.stats();
        const oldest = s.history.oldestTxnId;
        if (oldest !== null) {
          const from = oldest + Math.floor((s.txnId - oldest) / 2);
          const at = from + rand(s.txnId - from + 1);
          try {
            const rd = db.beginRead({ txnId: at });
            out(`rd ${rd.txnId} ${stateHashOf(rd.scan())} travel`);
            rd.close();
          } catch (err) {
            if (!isCode(err, 'SnapshotNotFound')) throw err;
            out(`refused ${at}`);
          }
        }
      } else if (x < 0.22) {
        const rd = db.beginRead();
        out(`rd ${rd.txnId} ${stateHashOf(rd.scan())} latest`);
        // Now and then held across the next steps, while other processes commit and reuse pages.
        if (held === null && rand(2) === 0) held = { rd, left: 1 + rand(8) };
        else rd.close();
      } else if (x < 0.25) {
        const w = db.beginWrite({ timeoutMs: a.timeoutMs });
        applyOps(w, opsFor(a.opsSeed, w.txnId));
        w.abort();
      } else if (x < 0.4) {
        // A group: the writer lock stays with this process until the shared sync.
        const batch: Promise<void>[] = [];
        for (let n = 1 + rand(5); n > 0 && acked + batch.length < a.commits; n--) {
          const w = begin();
          const want = w.txnId;
          batch.push(w.commitAsync().then((id) => ack(id, want)));
        }
        await Promise.all(batch);
      } else if (x < 0.55) {
        // Waiting in the writer queue without blocking (spec/concurrency_v0.md §5.2): a process
        // killed while it waits, or while it holds the writer, must cost the others nothing.
        const w = await db.beginWriteAsync({ timeoutMs: a.timeoutMs });
        const want = w.txnId;
        applyOps(w, opsFor(a.opsSeed, want));
        out(`try ${want} ${now()}`);
        ack(await w.commitAsync(), want);
      } else {
        const w = begin();
        const want = w.txnId;
        ack(w.commit(), want);
      }
    } catch (err) {
      if (!isCode(err, 'WriteBusy')) throw err;
      out('busy');
    }
    if (held !== null && --held.left <= 0) {
      out(`rd ${held.rd.txnId} ${stateHashOf(held.rd.scan())} held`);
      held.rd.close();
      held = null;
    }
    if (rand(2) === 0) await sleep(rand(4));
  }
  held?.rd.close();
  if (log !== undefined) out(`logstart ${db.stats().log.start}`);
  db.close();
  out('done');
}

main(JSON.parse(process.argv[2]!) as ChildArgs).catch((err: unknown) => {
  const code = err instanceof NorthstarError ? err.code : 'Error';
  out(`err ${code} ${String((err as Error)?.stack ?? err).replace(/\n/g, ' | ')}`);
  process.exit(1);
});
