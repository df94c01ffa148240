// The workload of the replication fault tests (ts/hard/replication.child.ts):
// commit `txn` is a function of its number alone, so the state any prefix of
// the history must have is known without asking either database; and the
// helpers those tests and the replkill suite share (no vitest here: the
// hardening suite runs it outside vitest).

import type { Database } from '../db/database.js';
import { stateHashOf } from '../log/replay.js';

/** Commit `txn` of the model workload: a few puts and a delete over 97 keys, from the txn number alone. */
export function modelCommit(txn: number): { put: [string, string][]; del: string[] } {
  const put: [string, string][] = [[`k${txn % 97}`, `v${txn}`]];
  if (txn % 3 === 0) put.push([`m${(txn * 7) % 31}`, `w${txn}`.repeat(1 + (txn % 5))]);
  const del = txn % 13 === 0 ? [`k${(txn * 5) % 97}`] : [];
  return { put, del };
}

/** The model's state after txns 1..upTo. */
export function modelState(upTo: number): Map<string, string> {
  const m = new Map<string, string>();
  for (let t = 1; t <= upTo; t++) {
    const c = modelCommit(t);
    for (const [k, v] of c.put) m.set(k, v);
    for (const k of c.del) m.delete(k);
  }
  return m;
}

/** The state hash of the model after txns 1..upTo. */
export function modelHash(upTo: number): string {
  return stateHashOf([...modelState(upTo)].map(([k, v]) => [Buffer.from(k), Buffer.from(v)] as [Uint8Array, Uint8Array]));
}

/** The state hash of `db`'s latest snapshot, or of txn `txnId`. */
export function databaseHash(db: Database, txnId?: number): string {
  const r = db.beginRead(txnId === undefined ? {} : { txnId });
  try {
    return stateHashOf(r.scan());
  } finally {
    r.close();
  }
}

/** Resolves once `ok()` holds (looked at every 10 ms); throws naming `what` after `timeoutMs`. */
export async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
