// Checkpoints (spec/file_format_v1.md §8.2): the data file is made to hold the
// latest commit durably, so recovery need not replay the log before it. A
// checkpoint writes new freelist and history chains, syncs the data file, then
// writes the meta into the slot the durable meta is not in and syncs again;
// a crash anywhere leaves the old meta, whose pages nothing has overwritten.

import { asIoError, NorthstarError } from '../errors.js';
import { FREELIST_ENTRIES_OFFSET, FREELIST_ENTRY_SIZE, HEADER_SIZE, HISTORY_ENTRIES_OFFSET, HISTORY_ENTRY_SIZE, META_PAGE_A, META_PAGE_B, PageType } from '../format/constants.js';
import { initPageHeader, writePageTxnId } from '../format/page.js';
import { failpoint } from '../io/failpoint.js';
import { freelistCapacity, writeFreelistPage } from '../pager/freelist.js';
import { historyCapacity, writeHistoryPage } from '../pager/history.js';
import { encodeMeta, type Meta } from '../pager/meta.js';
import type { Engine } from './engine.js';
import { publishShared, publishUpTo } from './groupcommit.js';
import { releaseWriterLock } from './writer.js';

/**
 * Whether a checkpoint now would let the writer reuse `checkpoint.freedBytes`
 * of pages: freed after the durable meta's oldest snapshot and at or before
 * the oldest one it would list itself (this handle's history), that the
 * durable meta may reach (§6.1).
 */
function checkpointFreesEnough(e: Engine): boolean {
  const pages = Math.ceil(e.opts.checkpointFreedBytes / e.pager.pageSize);
  return e.freeList.releasableByCheckpoint(e.durableHistoryFloor, historyFloorOf(e, e.latest.txnId), pages) >= pages;
}

/** The oldest snapshot a meta at `txnId` written now would list (its own txn when none): Engine.durableHistoryFloor. */
function historyFloorOf(e: Engine, txnId: number): number {
  return Math.min(txnId, e.history.oldest ?? txnId);
}

/**
 * True when the automatic checkpoint is due: `checkpoint.commits` commits or
 * `checkpoint.logBytes` of log since the last, or `checkpoint.freedBytes` of
 * freed pages that a checkpoint now would let the writer reuse (spec §6.1:
 * freed after the durable meta's oldest snapshot and at or before the oldest
 * this handle keeps): without that, a run of large commits (a shuffled bulk
 * load) grows the file by every page they copy until another bound is
 * reached. The default is a trade: each checkpoint syncs the data file, and
 * only pages the writer reuses between two checkpoints reach the device once,
 * so a low bound makes steady random writes write more of the pages they copy,
 * while a high one lets the file grow. Measured with storage.mjs (1M keys, one
 * round, native) once pages the durable meta's history reaches were kept
 * (§6.1): disk after the run 674 MB at 128 MiB, 454 MB at 64 MiB and at 32
 * MiB; device bytes per 100-put commit 1.8, 2.1 and 2.2 MB. (Counting, before
 * that change, every page the durable meta reached: 0.61 MB per 100-put
 * commit at 128 MiB, 5.63 at 64 MiB; 453 MB after the run at 128 MiB.)
 */
export function checkpointDue(e: Engine): boolean {
  return (
    e.latest.txnId !== e.durable.txnId &&
    (e.commitsSinceCheckpoint >= e.opts.checkpointCommits ||
      e.latest.logEnd - e.durable.logTail >= e.opts.checkpointLogBytes ||
      checkpointFreesEnough(e))
  );
}

/**
 * A checkpoint between its steps (spec §8.2): its chains are written and the
 * meta it will write is known. `stage` is the step its asynchronous form
 * waits on: 'pages', the data file's sync (3); 'meta', the meta's sync (5).
 */
export interface PendingCheckpoint {
  readonly meta: Meta;
  readonly slot: number;
  readonly freelistChain: number[];
  readonly historyChain: number[];
  /** The durable meta's chains, freed once this meta is durable. */
  readonly oldChains: number[];
  /** Pages the chains took from the free list (given back if the data file's sync fails). */
  readonly taken: number[];
  /** The oldest snapshot the history chain lists (the meta's txn when none): Engine.durableHistoryFloor once durable. */
  readonly historyFloor: number;
  stage: 'pages' | 'meta';
  /** The asynchronous form's: resolves once it has ended (durable, failed, finished by a synchronous caller, or moot after close). */
  ended: Promise<void> | null;
}

/**
 * The checkpoint protocol (spec §8.2), on the calling thread: the log durable
 * up to the latest commit; the freelist and history chains written; the data
 * file synced; the meta written to the slot the current durable meta is not
 * in; synced. A checkpoint already under way (startCheckpoint) is finished
 * first, the same way.
 */
export function writeCheckpoint(e: Engine, force = false): void {
  settleCheckpoint(e);
  const s = e.latest;
  if (!force && s.txnId === e.durable.txnId && s.logEnd === e.durable.logTail) return;
  const p = prepareCheckpoint(e);
  finishSynchronously(e, p);
}

/**
 * The checkpoint protocol with its two data-file syncs on the thread pool, for
 * commitAsync's writer (spec §8.2, "asynchronous form"): steps 1-2 now, then
 * the event loop runs on while the data file syncs, and this handle's writes
 * go on meanwhile (they land on pages the new meta does not reach: free
 * pages, the chains' pages taken out of the free list first). The handle
 * keeps the writer lock until the meta is durable (releaseWriterLock waits
 * for it), so no other handle writes or checkpoints from a meta that is not
 * yet the durable one. Pages freed since the durable meta stay unusable until
 * then (FreeList.release goes by `durable`). A failure poisons the handle,
 * as a failed synchronous checkpoint does; the commits stay durable in the log.
 * `then` runs once the meta is durable (log retention), before the lock goes.
 */
export function startCheckpoint(e: Engine, then: () => void): void {
  const p = prepareCheckpoint(e);
  if (e.sync !== 'full') {
    finishSynchronously(e, p);
    then();
    return;
  }
  failpoint('beforeCheckpointSync');
  e.checkpointing = p;
  const still = (): boolean => e.checkpointing === p && !e.closed && e.poisoned === null;
  const fail = (err: unknown): void => {
    if (e.checkpointing !== p) return;
    e.checkpointing = null;
    e.poison(asIoError(err, 'checkpoint failed'));
    releaseWriterLock(e);
  };
  p.ended = e.file
    .datasyncAsync()
    .then(() => {
      if (!still()) return undefined;
      writeMeta(e, p);
      return e.file.datasyncAsync().then(() => {
        if (!still()) return;
        failpoint('afterMetaSync');
        e.checkpointing = null;
        installCheckpoint(e, p);
        then();
        releaseWriterLock(e);
      });
    })
    .catch(fail);
}

/** Finishes a checkpoint startCheckpoint left under way, on the calling thread (what it has not done yet). */
export function settleCheckpoint(e: Engine): void {
  const p = e.checkpointing;
  if (p === null) return;
  e.checkpointing = null;
  finishSynchronously(e, p);
}

/** Steps 3-5 from where `p` stands, each sync on the calling thread. */
function finishSynchronously(e: Engine, p: PendingCheckpoint): void {
  if (p.stage === 'pages') {
    try {
      failpoint('beforeCheckpointSync');
      if (e.sync === 'full') e.file.datasync();
    } catch (err) {
      e.freeList.giveBack(p.taken);
      throw asIoError(err, 'checkpoint failed');
    }
    writeMeta(e, p);
  }
  try {
    if (e.sync === 'full') e.file.datasync();
    failpoint('afterMetaSync');
  } catch (err) {
    const error = asIoError(err);
    e.poison(error);
    throw error;
  }
  installCheckpoint(e, p);
}

/**
 * Steps 1-2: the log durable up to the latest commit, which becomes what
 * every handle sees; new freelist and history chains written (unsynced) on
 * pages taken from the free list or the end of the file, which the latest
 * state then counts. The old chains are freed by this checkpoint.
 */
function prepareCheckpoint(e: Engine): PendingCheckpoint {
  const s = e.latest;
  const pager = e.pager;
  // 1. Every record the meta will cover must be durable first.
  failpoint('beforeCheckpointLogSync');
  if (e.syncedEnd < s.logEnd && e.sync === 'full') e.log.datasync();
  e.syncedEnd = Math.max(e.syncedEnd, s.logEnd);
  publishUpTo(e, s, null);
  // This handle is the writer of record before it takes any page: should it die before it
  // publishes the new meta, the next writer rebuilds its free pages from whichever meta is
  // durable rather than reusing pages the new chains may hold (concurrency §5).
  publishShared(e);
  // 2. New freelist and history chains; the old chains are freed by this checkpoint.
  let pageCount = s.pageCount;
  const taken: number[] = [];
  const alloc = (): number => {
    const id = e.freeList.take();
    if (id !== undefined) {
      taken.push(id);
      return id;
    }
    return pageCount++;
  };
  const oldChains = e.freelistPages.concat(e.historyPages);
  const snapshots = e.history.all();
  const historyFloor = historyFloorOf(e, s.txnId);
  // The meta lists these snapshots: pages freed after the oldest of them are reachable from
  // it, also those freed as young (written after the last durable checkpoint): §6.1.
  e.freeList.protectFreed(historyFloor, s.txnId);
  const hcap = historyCapacity(pager.pageSize);
  const historyChain: number[] = [];
  for (let n = 0; n < snapshots.length; n += hcap) historyChain.push(alloc());
  const fcap = freelistCapacity(pager.pageSize);
  const freelistChain: number[] = [];
  const entryCount = (): number => e.freeList.freeCount + e.freeList.pendingCount + oldChains.length;
  while (freelistChain.length * fcap < entryCount()) freelistChain.push(alloc());
  const entries = e.freeList.entries();
  for (const id of oldChains) entries.push([id, s.txnId]);
  const ids = historyChain.concat(freelistChain);
  const pages = [
    ...chainPages(pager.pageSize, PageType.History, historyChain, hcap, snapshots.length, HISTORY_ENTRIES_OFFSET, HISTORY_ENTRY_SIZE, (page, next, from) =>
      writeHistoryPage(page, next, snapshots, from),
    ),
    ...chainPages(pager.pageSize, PageType.Freelist, freelistChain, fcap, entries.length, FREELIST_ENTRIES_OFFSET, FREELIST_ENTRY_SIZE, (page, next, from) =>
      writeFreelistPage(page, next, entries, from),
    ),
  ];
  try {
    for (const p of pages) {
      writePageTxnId(p, s.txnId);
      pager.kernels.pageSeal(p);
    }
    failpoint('midCheckpointPages');
    const order = ids.map((_, i) => i).sort((a, b) => ids[a]! - ids[b]!);
    pager.writePages(
      order.map((i) => ids[i]!),
      order.map((i) => pages[i]!),
    );
    pager.extendTo(pageCount * pager.pageSize);
  } catch (err) {
    e.freeList.giveBack(taken);
    throw asIoError(err, 'checkpoint failed');
  }
  // The chains' pages past the old end are the latest state's from here: the writes after
  // this one (an asynchronous checkpoint's) allocate past them.
  e.latest = { ...s, pageCount };
  if (e.published.txnId === s.txnId) e.published = e.latest;
  // So do the free pages: a take-over that applies later records from freeListAt must not
  // count the chains' pages past the old end as taken from the end and freed again.
  if (e.freeListAt !== null && e.freeListAt.pageCount < pageCount) e.freeListAt = { ...e.freeListAt, pageCount };
  e.commitsSinceCheckpoint = 0;
  const meta: Meta = {
    pageSize: pager.pageSize,
    txnId: s.txnId,
    root: s.root,
    freelist: freelistChain[0] ?? 0,
    logTail: s.logEnd,
    pageCount,
    entryCount: s.entryCount,
    depth: s.depth,
    dbId: e.durable.dbId,
    history: historyChain[0] ?? 0,
    checkpointSeq: (e.durable.checkpointSeq + 1) >>> 0,
  };
  const slot = e.durableSlot === META_PAGE_A ? META_PAGE_B : META_PAGE_A;
  return { meta, slot, freelistChain, historyChain, oldChains, taken, historyFloor, stage: 'pages', ended: null };
}

/** Step 4 (once every page the meta reaches is durable): the meta, into the other slot, unsynced. */
function writeMeta(e: Engine, p: PendingCheckpoint): void {
  p.stage = 'meta';
  try {
    // Counted before it happens (concurrency §2.4): a checkpoint that dies here still makes the next writer look.
    e.metaWritesSeen = e.coord.noteMetaWrite();
    failpoint('beforeMetaWrite');
    e.file.write(encodeMeta(p.meta, p.slot, e.pager.kernels), p.slot * e.pager.pageSize);
    failpoint('beforeMetaSync');
  } catch (err) {
    const error = asIoError(err);
    e.poison(error);
    throw error;
  }
}

/** After step 5: the meta is durable; it is the one every handle's next writer starts from. */
function installCheckpoint(e: Engine, p: PendingCheckpoint): void {
  const { meta } = p;
  e.durable = meta;
  e.durableSlot = p.slot;
  e.durableHistoryFloor = p.historyFloor;
  e.freelistPages = p.freelistChain;
  e.historyPages = p.historyChain;
  e.freeList.addPending(meta.txnId, p.oldChains);
  noteLogCut(e, { txnId: meta.txnId, position: meta.logTail });
  // The next writer, here or in another handle, starts from this meta (concurrency §5).
  publishShared(e);
}

/**
 * The pages of a freelist or history chain (spec §6) holding `total` entries,
 * `perPage` to a page, on the page ids of `chain`; `fill` writes the body.
 */
function chainPages(
  pageSize: number,
  type: PageType,
  chain: readonly number[],
  perPage: number,
  total: number,
  entriesOffset: number,
  entrySize: number,
  fill: (page: Uint8Array, next: number, from: number) => number,
): Uint8Array[] {
  const pages: Uint8Array[] = [];
  for (let j = 0, from = 0; j < chain.length; j++) {
    const page = Buffer.alloc(pageSize);
    const n = Math.min(perPage, total - from);
    initPageHeader(page, type, chain[j]!, entriesOffset - HEADER_SIZE + n * entrySize);
    from += fill(page, j + 1 < chain.length ? chain[j + 1]! : 0, from);
    pages.push(page);
  }
  return pages;
}

/** A checkpoint's position in the log: every record before it is in the data file. */
export interface LogCut {
  txnId: number;
  position: number;
}

/** Checkpoint boundaries a handle remembers for retention; past this the oldest go (the log is then kept longer, never shorter). */
export const LOG_CUTS_KEPT = 1024;

/** Retention keeps every record (`log: { retainTxns: Infinity, retainBytes: Infinity }`): nothing is ever dropped. */
export function keepsWholeLog(e: Engine): boolean {
  return e.opts.logRetainTxns === Infinity && e.opts.logRetainBytes === Infinity;
}

/** Remembers a checkpoint boundary (writeCheckpoint), unless retention keeps every record. */
export function noteLogCut(e: Engine, cut: LogCut): void {
  if (keepsWholeLog(e)) return;
  e.logCuts.push(cut);
  if (e.logCuts.length > LOG_CUTS_KEPT) e.logCuts.shift();
}
