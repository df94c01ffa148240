// Taking the writer (spec/concurrency_v0.md §5): one write transaction at a
// time across every thread and process, by the lock file's writer lock. The
// handle that takes it catches up, and when another handle wrote or
// checkpointed since it last did, rebuilds its free pages from the durable
// meta and the pages sections of the records after it (takeOver).

import { NorthstarError } from '../errors.js';
import { chooseMeta } from '../pager/meta.js';
import type { PublishedState } from '../shared/coordinator.js';
import { WriteTxn } from '../txn/write.js';
import { listen, unlisten } from './changes.js';
import type { Engine } from './engine.js';
import { catchUp, publishedFromLog, readPublished, reloadDurable } from './follow.js';
import { publishShared } from './groupcommit.js';
import { commitsWithPages, snapshotOf, treeStateOf } from './logscan.js';
import { releasePages } from './snapshots.js';

/**
 * The write transaction, at once: WriteBusy while another holds the writer
 * (or earlier waiters of the writer queue, §5.2, are still waiting), unless
 * `timeoutMs` > 0, which blocks this thread up to that long for it (a
 * synchronous wait, for scripts; servers use beginWriteAsync).
 */
export function beginWrite(e: Engine, timeoutMs: number): WriteTxn {
  if (e.writer) throw new NorthstarError('WriteBusy', 'another write transaction is live on this handle');
  if (e.writerWaiters.length > 0) throw new NorthstarError('WriteBusy', 'earlier beginWriteAsync calls on this handle are waiting for the writer');
  lockWriter(e, timeoutMs);
  try {
    return startWriter(e);
  } catch (err) {
    // A damaged freelist chain, read on first use: the lock is not this failed call's to keep.
    releaseWriterLock(e);
    throw err;
  }
}

/** Under the writer lock: frees what no reader can reach and hands out the transaction. */
function startWriter(e: Engine): WriteTxn {
  releasePages(e);
  const w = WriteTxn.create(e);
  e.writer = w;
  return w;
}

// ---- waiting without blocking (spec/concurrency_v0.md §5.2) ------------------------

/** A beginWriteAsync call waiting for the writer. */
export interface WriterWaiter {
  /** Its place in the writer queue of every handle on the database. */
  readonly ticket: number;
  /** Date.now() past which it gives up (WriteBusy); Infinity: never. */
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
  readonly resolve: (w: WriteTxn) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The write transaction, when it is this call's turn: calls on every handle,
 * in every thread and process, are served in the order they were made (each
 * takes a ticket of the lock file's writer queue now). Never blocks the
 * thread: it looks again at once when a handle of this thread lets the writer
 * go, soon after one of another thread or process does where the handle hears
 * changes (changes.ts), and on a timer (1 ms, doubling to WRITER_LOOK_MAX_MS,
 * or WRITER_LOOK_WATCHED_MS where it hears changes). Rejects with WriteBusy after
 * `timeoutMs`, Aborted when `signal` aborts, Closed when the handle closes.
 */
export function beginWriteAsync(e: Engine, timeoutMs: number, signal: AbortSignal | undefined): Promise<WriteTxn> {
  if (signal?.aborted) return Promise.reject(aborted(signal));
  return new Promise<WriteTxn>((resolve, reject) => {
    const w: WriterWaiter = {
      ticket: e.coord.takeTicket(),
      deadline: timeoutMs === Infinity ? Infinity : Date.now() + timeoutMs,
      timeoutMs,
      signal,
      onAbort: null,
      resolve,
      reject,
    };
    if (signal !== undefined) {
      w.onAbort = () => {
        const i = e.writerWaiters.indexOf(w);
        if (i < 0) return;
        e.writerWaiters.splice(i, 1);
        w.reject(aborted(signal));
        lookForWriter(e);
      };
      signal.addEventListener('abort', w.onAbort, { once: true });
    }
    e.writerWaiters.push(w);
    lookForWriter(e);
  });
}

/** Rejects every waiter of the handle (it closes) and stops looking. */
export function rejectWriterWaiters(e: Engine, err: NorthstarError): void {
  for (const w of e.writerWaiters.splice(0)) settle(w).reject(err);
  lookForWriter(e);
}

/**
 * The longest a waiter for the writer sleeps between looks. Another thread or
 * process letting the writer go is seen only at a look, so this bounds each
 * hand-over between handles: measured with 4 handles of 16 queue agents each
 * (4 threads or 4 processes, 5,000 tasks), 1.0-1.2k tasks/s at 10 ms,
 * 1.8-2.1k at 4 ms, 2.8-2.9k at 2 ms, 3.0-3.2k at 1 ms. A look is a few
 * loads of the lock file.
 */
export const WRITER_LOOK_MAX_MS = 2;

/**
 * The same bound where the handle hears other handles let the writer go
 * (changes.ts: the lock file's change word, spec/concurrency_v0.md §2.6): the
 * timer is then only the safety net for a release nobody signals (a process
 * that died holding the lock, a waiter ahead that gave up).
 */
export const WRITER_LOOK_WATCHED_MS = 20;

/** True when changes by other handles wake this handle's waiters (a look at each). */
function hearChanges(e: Engine): boolean {
  if (e.writerListener !== null) return true;
  if (e.changeWatch === null) return false; // this handle cannot watch (listen would refuse): no closure per look
  const l = (): void => {
    if (e.writerWaiters.length > 0) lookForWriter(e);
  };
  if (!listen(e, l)) return false;
  e.writerListener = l;
  return true;
}

/** Handles of this thread with waiters, looked at again as soon as a handle lets the writer go. */
const waiting = new Set<Engine>();
let nudgeScheduled = false;

/** Each waiting handle of this thread looks again, once the current task is done. */
function nudgeWaiters(): void {
  if (waiting.size === 0 || nudgeScheduled) return;
  nudgeScheduled = true;
  setImmediate(() => {
    nudgeScheduled = false;
    for (const e of [...waiting]) lookForWriter(e);
  });
}

/**
 * One look for the writer on behalf of the handle's first waiter: expired
 * waiters are rejected; the first takes the writer if the lock is free (or
 * already this handle's) and no live waiter anywhere holds an earlier ticket.
 * Otherwise the next look is scheduled.
 */
function lookForWriter(e: Engine): void {
  const now = Date.now();
  for (let i = 0; i < e.writerWaiters.length; ) {
    const w = e.writerWaiters[i]!;
    if (now < w.deadline) i++;
    else {
      e.writerWaiters.splice(i, 1);
      settle(w).reject(new NorthstarError('WriteBusy', `another thread or process held the writer for ${w.timeoutMs} ms`));
    }
  }
  const refused = e.closed ? null : e.writesRefused();
  if (refused !== null) for (const w of e.writerWaiters.splice(0)) settle(w).reject(refused);
  const head = e.writerWaiters[0];
  if (head === undefined || e.closed) {
    stopLooking(e);
    return;
  }
  if (!e.closed) e.coord.showTicket(head.ticket);
  if (e.writer === null && takeLockFor(e, head)) {
    e.writerWaiters.shift();
    let txn: WriteTxn;
    try {
      txn = startWriter(e);
    } catch (err) {
      settle(head).reject(err);
      releaseWriterLock(e);
      lookForWriter(e);
      return;
    }
    e.coord.showTicket(e.writerWaiters[0]?.ticket ?? 0);
    settle(head).resolve(txn);
    if (e.writerWaiters.length === 0) {
      stopLooking(e);
      return;
    }
  }
  waiting.add(e);
  const heard = hearChanges(e);
  if (e.writerTimer === null) {
    e.writerBackoff = Math.min(e.writerBackoff * 2 || 1, heard ? WRITER_LOOK_WATCHED_MS : WRITER_LOOK_MAX_MS);
    e.writerTimer = setTimeout(() => {
      e.writerTimer = null;
      lookForWriter(e);
    }, e.writerBackoff);
  }
}

/** Takes the writer lock for `head` if it is its turn; takes over the writer state when newly taken. A failed take-over rejects it. */
function takeLockFor(e: Engine, head: WriterWaiter): boolean {
  // Held already (commits waiting for their sync): ours to hand on, in turn. Else
  // tryLockWriter asks the queue itself.
  if (e.coord.writerLocked) return e.coord.isFirstInQueue(head.ticket);
  if (!e.coord.tryLockWriter(head.ticket)) return false;
  try {
    takeOver(e);
    return true;
  } catch (err) {
    e.writerWaiters.shift();
    settle(head).reject(err);
    releaseWriterLock(e);
    return false;
  }
}

function stopLooking(e: Engine): void {
  waiting.delete(e);
  if (e.writerListener !== null) {
    unlisten(e, e.writerListener);
    e.writerListener = null;
  }
  if (e.writerTimer !== null) clearTimeout(e.writerTimer);
  e.writerTimer = null;
  e.writerBackoff = 0;
  if (!e.closed) e.coord.showTicket(0);
}

/** The waiter, no longer listening to its signal. */
function settle(w: WriterWaiter): WriterWaiter {
  if (w.onAbort !== null) w.signal?.removeEventListener('abort', w.onAbort);
  w.onAbort = null;
  return w;
}

function aborted(signal: AbortSignal): NorthstarError {
  return new NorthstarError('Aborted', 'the wait for the writer was aborted', { cause: signal.reason });
}

/**
 * Makes this handle the writer's state (§5): catches up, and when another
 * handle wrote or checkpointed since this one last did, rebuilds the free
 * pages from the durable meta and the pages sections of the records after
 * it. Cuts off a tail a dead writer left past the published end.
 */
export function takeOver(e: Engine, p: PublishedState = readPublished(e)): void {
  // A durable meta past the published block: its publisher died after a checkpoint (its
  // own, or a recovery's) and before it published. The files are the truth. Only a meta
  // write can make it so: with none since this handle last looked (W_META_WRITES, §2.4),
  // the metas are not read (about 35 µs of a 4-put commit's 240).
  const writes = e.coord.metaWrites();
  const metaMoved = writes !== e.metaWritesSeen;
  const tail = metaMoved ? chooseMeta(e.file, e.pager.kernels).meta.logTail : 0;
  const stale = tail > p.logEnd;
  e.metaWritesSeen = writes;
  if (stale) p = publishedFromLog(e, tail);
  const generation = e.logGeneration;
  catchUp(e, p);
  if (p.writer !== e.coord.owner || p.txnId !== e.latest.txnId) {
    // The free pages as of a commit this handle knows, and the records after it to apply.
    // Incremental when nothing but commits happened since: no meta was written (another
    // handle's checkpoint allocates chain pages no record names) and the log is the same
    // file. Otherwise from the durable meta, as at open: its chains, every record after it.
    const at = e.freeListAt;
    let pageCount: number;
    let from: number;
    // W_META_WRITES also counts log replacements (truncateLog, retention: §2.4), so a
    // truncateLog that died before it published the new file's generation forces the
    // rebuild, which opens the file the path names now.
    const incremental = !metaMoved && at !== null && e.logGeneration === generation && at.txnId <= p.txnId && at.logEnd <= p.logEnd;
    if (incremental) {
      pageCount = at.pageCount;
      from = at.logEnd;
      e.takeOvers.incremental++;
    } else {
      e.takeOvers.rebuilt++;
      reloadDurable(e);
      pageCount = e.durable.pageCount;
      from = e.durable.logTail;
    }
    e.log.end = Math.min(e.log.end, p.logEnd);
    const it = commitsWithPages(e.log, from);
    let step = it.next();
    for (; !step.done; step = it.next()) {
      const { rec, pages, root } = step.value;
      e.freeList.remove(pages.written);
      // Pages the commit took from the end of the file and freed again are free.
      if (pages.pageCount > pageCount) {
        const written = new Set(pages.written);
        const fresh: number[] = [];
        for (let id = pageCount; id < pages.pageCount; id++) if (!written.has(id)) fresh.push(id);
        e.freeList.giveBack(fresh);
        pageCount = pages.pageCount;
      }
      e.freeList.addPending(rec.txnId, pages.freed, true);
      e.freeList.addPending(rec.txnId, pages.freedYoung, false);
      // catchUp put the commits it followed in the history; a rebuild starts it again.
      if (!incremental) e.history.add({ txnId: rec.txnId, root, entryCount: pages.entryCount });
      e.commitsSinceCheckpoint++;
    }
    if (step.value.kind !== 'end') {
      throw new NorthstarError('Corrupt', `${e.log.path}: published commit record at ${step.value.position} is damaged (${step.value.status})`, { path: e.log.path });
    }
    const state = treeStateOf(p, Math.max(p.pageCount, pageCount));
    e.latest = state;
    e.published = state;
    e.history.add(snapshotOf(state));
    e.freeListAt = state;
  }
  e.syncedEnd = p.logEnd;
  e.log.cutUnpublished(p.logEnd);
  if (stale) publishShared(e);
}

/** Takes the writer lock (waiting up to timeoutMs) and this handle's writer state; WriteBusy if it stays busy. */
export function lockWriter(e: Engine, timeoutMs: number): void {
  if (e.coord.writerLocked) return;
  if (!e.coord.lockWriter(timeoutMs)) {
    throw new NorthstarError('WriteBusy', timeoutMs > 0 ? `another thread or process held the writer for ${timeoutMs} ms` : 'another thread or process holds the writer');
  }
  try {
    takeOver(e);
  } catch (err) {
    releaseWriterLock(e);
    throw err;
  }
}

/** Runs fn holding the writer lock, taken for it unless held already. */
export function withWriterLock<T>(e: Engine, fn: () => T, timeoutMs = 0): T {
  lockWriter(e, timeoutMs);
  try {
    return fn();
  } finally {
    releaseWriterLock(e);
  }
}

/** Lets other handles write, once this one has no write transaction, no commit waiting for its sync and no checkpoint under way. */
export function releaseWriterLock(e: Engine): void {
  if (e.writer === null && e.unsynced.length === 0 && e.checkpointing === null && !e.recovering && e.coord.writerLocked) e.coord.unlockWriter();
  // The writer is free here (this handle's waiters) or the lock is (every handle's in this thread).
  if (e.writer === null) nudgeWaiters();
}
