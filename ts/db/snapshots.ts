// Snapshots (spec/concurrency_v0.md §4.2, §4.3; spec/file_format_v1.md §6.1):
// a read transaction holds one commit's root, this handle's slot in the lock
// file shows the oldest snapshot it holds, and the writer reuses a freed page
// only once no snapshot anywhere, no retained history and no durable meta can
// reach it.

import { NorthstarError } from '../errors.js';
import type { Snapshot } from '../pager/history.js';
import { ReadTxn } from '../txn/read.js';
import type { Engine } from './engine.js';
import { refresh } from './follow.js';
import type { BeginReadOptions } from './options.js';

/**
 * A read transaction on the latest commit any handle published, or on commit
 * `options.txnId` within the retained history (SnapshotNotFound otherwise).
 */
export function beginRead(e: Engine, options: BeginReadOptions): ReadTxn {
  for (;;) {
    refresh(e);
    let snap: Snapshot = e.published;
    if (options.txnId !== undefined && options.txnId !== snap.txnId) {
      const h = typeof options.txnId === 'number' && options.txnId < snap.txnId ? e.history.get(options.txnId) : undefined;
      if (h === undefined) {
        throw new NorthstarError('SnapshotNotFound', `snapshot ${String(options.txnId)} is not retained (retained: ${e.history.oldest ?? snap.txnId}..${snap.txnId})`);
      }
      snap = h;
    }
    e.readers.set(snap.txnId, (e.readers.get(snap.txnId) ?? 0) + 1);
    if (e.oldestCache === null || (e.oldestCache !== undefined && snap.txnId < e.oldestCache)) e.oldestCache = snap.txnId;
    e.liveReaders++;
    // A new oldest snapshot goes into our slot; then the writer's floor is read again, so
    // either the writer saw the slot or we see that it moved past the snapshot (concurrency §4.2).
    if (showReaders(e) && snap.txnId < e.coord.historyFloor() && !e.coord.writerLocked) {
      e.releaseSnapshot(snap.txnId);
      if (options.txnId !== undefined) throw new NorthstarError('SnapshotNotFound', `snapshot ${snap.txnId} is no longer retained by the writer`);
      continue;
    }
    return ReadTxn.create(e, snap.txnId, snap.root);
  }
}

/** The oldest snapshot this handle's readers hold; cached, recomputed after that snapshot's last reader closes. */
export function oldestReader(e: Engine): number | null {
  if (e.oldestCache !== undefined) return e.oldestCache;
  let oldest: number | null = null;
  for (const t of e.readers.keys()) if (oldest === null || t < oldest) oldest = t;
  e.oldestCache = oldest;
  return oldest;
}

/** Puts this handle's oldest live snapshot in its slot; true when that lowered it (a re-check is due). */
export function showReaders(e: Engine): boolean {
  const oldest = oldestReader(e) ?? 0;
  const before = e.coord.readerTxn;
  e.coord.setReaderTxn(oldest);
  return oldest !== 0 && (before === 0 || oldest < before);
}

/**
 * Frees every pending page no snapshot, retained history or durable meta can
 * reach (spec §6.1). Writer only. The durable meta reaches, besides its own
 * tree, the trees of the snapshots its history chain lists, which a recovery
 * from it offers again: a page it may reach waits for a commit at or before
 * the oldest of them (Engine.durableHistoryFloor), not only for its checkpoint.
 */
export function releasePages(e: Engine): void {
  trimHistory(e);
  e.freeList.release(readerFloor(e), e.durableHistoryFloor);
}

/**
 * Bounds the retained history (spec §6.2) before the writer takes its floor:
 * never below the floor the last writer published (another handle's history
 * may be shorter, and it may have reused what older snapshots need), and no
 * further back than the pages it keeps from reuse fit in `history.bytes`.
 */
function trimHistory(e: Engine): void {
  const shared = e.coord.historyFloor();
  if (shared > 0 && (e.history.oldest ?? shared) < shared) e.history.dropBefore(shared);
  const maxPages = Math.floor(e.opts.historyBytes / e.pager.pageSize);
  // Pages the durable meta's history alone keeps count here: trimming this handle's history
  // lets the next checkpoint's meta list less, which frees them. Only pages its tree reaches
  // (freed after its checkpoint) wait for a checkpoint whatever the history.
  const cut = e.freeList.historyCut(maxPages, e.durable.txnId);
  if (cut !== null) e.history.dropBefore(Math.min(cut, e.published.txnId));
}

/**
 * Pages freed by commit F are reused only once F is at or below this: every
 * live reader, the published snapshot and retained history can no longer
 * reach them.
 */
function readerFloor(e: Engine): number {
  let floor = historyFloor(e);
  // Published before the slots are read: a reader that registers after our scan sees it (concurrency §4.3).
  e.coord.setHistoryFloor(floor);
  const r = oldestReader(e);
  if (r !== null && r < floor) floor = r;
  const o = e.coord.otherReaders().oldest;
  if (o !== null && o < floor) floor = o;
  return floor;
}

/** The oldest commit whose pages this writer keeps for time travel: its history window. */
export function historyFloor(e: Engine): number {
  const h = e.history.oldest;
  return h !== null && h < e.published.txnId ? h : e.published.txnId;
}

/**
 * Handles whose slot is due to be raised at the end of the current task
 * (spec/concurrency_v0.md §4.2). One microtask serves them all, and a handle
 * that closes leaves the set at once (forgetRaise): a queued closure per
 * handle would keep every closed handle (its cache, its files) alive until the
 * task ends, which a long synchronous task opening many databases cannot afford.
 */
const raisesDue = new Set<Engine>();
let raiseScheduled = false;

export function queueRaise(e: Engine): void {
  raisesDue.add(e);
  if (raiseScheduled) return;
  raiseScheduled = true;
  queueMicrotask(() => {
    raiseScheduled = false;
    const due = [...raisesDue];
    raisesDue.clear();
    for (const d of due) d.raiseSlot();
  });
}

/** A closed handle is nobody's to raise. */
export function forgetRaise(e: Engine): void {
  raisesDue.delete(e);
}
