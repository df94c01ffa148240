// Group commit and publishing (spec/file_format_v1.md §8.1, spec/concurrency_v0.md
// §2.2): commitAsync appends records without waiting for their sync; one
// fdatasync then covers every record appended before it started, and a commit
// becomes what readers see (here and, through the lock file's published block,
// in every other handle) only once a sync covers it, in commit order.

import { asIoError, NorthstarError } from '../errors.js';
import type { CommitResult, TreeState } from '../txn/host.js';
import type { Engine } from './engine.js';
import { snapshotOf } from './logscan.js';
import type { CommitEvent } from './options.js';
import { historyFloor } from './snapshots.js';
import { releaseWriterLock } from './writer.js';

/** A commit in the log whose sync has not completed yet (commitAsync). */
export interface Unsynced {
  result: CommitResult;
}

/** A commitAsync promise waiting for the log to be durable up to `position`. */
export interface SyncWaiter {
  position: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Resolves once the log is durable up to `position`. Promises resolve in
 * commit order: one already durable (a checkpoint synced the log) resolves at
 * once only when no earlier commit still waits.
 */
export function syncLogUpTo(e: Engine, position: number): Promise<void> {
  if (position <= e.syncedEnd && e.syncWaiters.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    e.syncWaiters.push({ position, resolve, reject });
    if (e.syncing === null) startSync(e);
  });
}

/** Makes `s` (and every unsynced commit before it) what new readers see. */
export function publishUpTo(e: Engine, s: TreeState, result: CommitResult | null): void {
  while (e.unsynced.length > 0 && e.unsynced[0]!.result.state.txnId <= s.txnId) {
    const u = e.unsynced.shift()!;
    publish(e, u.result.state, u.result.opCount);
  }
  if (result !== null && s.txnId > e.published.txnId) publish(e, s, result.opCount);
}

function publish(e: Engine, s: TreeState, opCount: number): void {
  e.published = s;
  e.history.add(snapshotOf(s));
  publishShared(e);
  e.events.emit('commit', { txnId: s.txnId, opCount, position: s.recordPosition } satisfies CommitEvent);
}

/**
 * Starts a log sync now if none is running (commitAsync, spec §8.1: its record
 * is in the log and its pages are still to be written, which the sync then
 * overlaps); syncLogUpTo then waits for it.
 */
export function startLogSync(e: Engine): void {
  if (e.syncing === null) startSync(e);
}

/** One asynchronous fdatasync of the log covering everything appended so far. */
function startSync(e: Engine): void {
  const end = e.log.end;
  const cuts = e.log.cuts;
  e.syncing = e.log.datasyncAsync().then(
    () => {
      e.syncing = null;
      // A record cut off meanwhile (a commit that failed after its append) may have been
      // replaced by another at the same positions, which this sync did not cover.
      if (end > e.syncedEnd && cuts === e.log.cuts) e.syncedEnd = end;
      // A checkpoint may have synced further than this sync did.
      const durable = e.syncedEnd;
      const last = e.unsynced.filter((u) => u.result.state.logEnd <= durable).pop();
      if (last) publishUpTo(e, last.result.state, null);
      const waiting = e.syncWaiters;
      e.syncWaiters = [];
      for (const w of waiting) {
        if (w.position <= durable) w.resolve();
        else e.syncWaiters.push(w);
      }
      if (e.syncWaiters.length > 0) startSync(e);
      else if (!e.closed) releaseWriterLock(e);
    },
    (err: unknown) => {
      e.syncing = null;
      const error = asIoError(err);
      e.poison(error);
      const waiting = e.syncWaiters;
      e.syncWaiters = [];
      // Records a checkpoint's own log sync made durable are committed whatever this sync did.
      for (const w of waiting) {
        if (w.position <= e.syncedEnd) w.resolve();
        else w.reject(error);
      }
    },
  );
}

/** Publishes the latest visible commit to the lock file; only the writer-lock holder calls this (§2.2). */
export function publishShared(e: Engine): void {
  const s = e.published as TreeState;
  e.coord.publish({
    txnId: s.txnId,
    root: s.root,
    depth: s.depth ?? 0,
    entryCount: s.entryCount,
    pageCount: s.pageCount ?? e.latest.pageCount,
    logEnd: s.logEnd ?? e.latest.logEnd,
    recordPosition: s.recordPosition ?? e.latest.recordPosition,
    logGeneration: e.logGeneration,
    historyFloor: historyFloor(e),
    checkpointTxn: e.durable.txnId,
    writer: e.coord.owner,
  });
}
