// State-hash checkpoints (spec/replication_v0.md §4.4): the state hash
// (commit_record_v0 §8, ts/log/replay.ts) of one snapshot, computed a slice
// of entries per turn of the event loop, so that neither the primary nor a
// replica stops serving while it hashes a large database.

import type { Database } from '../db/database.js';
import { NorthstarError } from '../errors.js';
import { StateHash } from '../log/replay.js';
import type { ReadTxn } from '../txn/read.js';

/** Entries hashed between two turns of the event loop. */
const SLICE = 20_000;

/** A read snapshot of `db` at txn `txnId`, or null when it is no longer retained (history) or the handle closed. */
export function readAt(db: Database, txnId: number): ReadTxn | null {
  try {
    return db.beginRead({ txnId });
  } catch (err) {
    if (err instanceof NorthstarError && (err.code === 'SnapshotNotFound' || err.code === 'Closed')) return null;
    throw err;
  }
}

/** The state hash of `db` at txn `txnId`, or null when that snapshot is no longer retained (history). */
export async function snapshotHash(db: Database, txnId: number): Promise<string | null> {
  const r = readAt(db, txnId);
  if (r === null) return null;
  try {
    const h = new StateHash();
    let n = 0;
    const it = r.scan()[Symbol.iterator]();
    for (let s = it.next(); !s.done; s = it.next()) {
      const [lo, hi] = h.entry(s.value[0], s.value[1]);
      h.add(lo, hi);
      if (++n % SLICE === 0) await new Promise((res) => setImmediate(res));
    }
    return h.toString();
  } finally {
    r.close();
  }
}
