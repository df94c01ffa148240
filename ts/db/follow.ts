// Following other handles' commits (spec/concurrency_v0.md §4.1): a handle
// learns what another thread or process committed from the lock file's
// published block and the log records up to it, and reloads from the durable
// meta when the log was replaced or a recovery rebuilt the trees.

import { readU32, readU64 } from '../format/bytes.js';
import { NorthstarError } from '../errors.js';
import { LogFile, type ScanEnd } from '../log/file.js';
import { COMMIT_OP_COUNT_OFFSET, COMMIT_ROOT_OFFSET, RECORD_HEADER_SIZE } from '../format/record.js';
import { readPagesSection } from '../log/record.js';
import { chooseMeta } from '../pager/meta.js';
import type { PublishedState } from '../shared/coordinator.js';
import type { Engine } from './engine.js';
import { publishShared } from './groupcommit.js';
import { isCommitRecord } from '../format/record.js';
import { commitsWithPages, snapshotOf, treeStateOf } from './logscan.js';
import type { CommitEvent } from './options.js';
import { releaseWriterLock, takeOver } from './writer.js';

/**
 * How long a reader waits for W_SEQ to turn even before it tries to repair the
 * block itself (§2.2). A live publisher holds the writer lock, so a reader that
 * gives up early only fails to take it and waits again.
 */
const TORN_PUBLISH_PATIENCE_MS = 10;
/** The most pages one catch-up reads ahead (§4.1). */
const PREFETCH_MAX_PAGES = 256;

/** Follows commits published by other handles: the fast path is one load (§4.1). */
export function refresh(e: Engine): void {
  if (e.coord.publishedTxn() === e.published.txnId) return;
  catchUp(e, readPublished(e));
}

/**
 * The published block (§2.2). One that a publisher left half-written when it
 * died (W_SEQ odd for good) is rebuilt from the files under the writer lock
 * and published again: by this handle if it holds the lock or gets it, else by
 * the handle holding it, which meets the odd W_SEQ when it takes over.
 */
export function readPublished(e: Engine): PublishedState {
  for (;;) {
    const p = e.coord.readPublished(TORN_PUBLISH_PATIENCE_MS);
    if (p !== null) return p;
    const had = e.coord.writerLocked;
    // Out of turn (writer queue, §5.2): waiters queued ahead may be in this very thread,
    // which this loop blocks, and they would wait for this repair themselves.
    if (had || e.coord.lockWriterOutOfTurn()) {
      try {
        takeOver(e, publishedFromLog(e));
        publishShared(e);
      } finally {
        if (!had) releaseWriterLock(e);
      }
    }
  }
}

/**
 * The latest commit as the files show it, for when the published block is
 * unusable: the durable meta, then every complete commit record after it up
 * to `upTo` (a dead writer's unpublished ones too, as recovery would take
 * them). Only under the writer lock. `writer` 0: no handle's free pages are
 * current.
 *
 * A record's pages are written after the record (file_format_v1 §8.1), so the
 * last complete record of a writer killed inside a commit may name pages it
 * never wrote. Two callers, two bounds:
 * - a torn published block (readPublished): no bound. Its writer died while
 *   publishing, and a handle publishes outside a commit or, in commit(), after
 *   that commit's pages: every record it had appended had its pages;
 * - a durable meta past the published block (takeOver): the meta's log tail.
 *   The records up to it are in the meta's tree; those after it were never
 *   published, so never acknowledged, and the writer may have died inside one
 *   of them: they are cut off, not adopted.
 */
export function publishedFromLog(e: Engine, upTo = Infinity): PublishedState {
  reloadDurable(e);
  let s = e.latest;
  const it = commitsWithPages(e.log, e.durable.logTail);
  let step = it.next();
  for (; !step.done; step = it.next()) {
    const { rec, pages, root } = step.value;
    if (rec.position + rec.length > upTo) break;
    s = { txnId: rec.txnId, root, depth: pages.depth, entryCount: pages.entryCount, pageCount: Math.max(s.pageCount, pages.pageCount), recordPosition: rec.position, logEnd: rec.position + rec.length };
  }
  if (step.done && step.value.kind === 'damaged') {
    throw new NorthstarError('Corrupt', `${e.log.path}: damaged commit record at position ${step.value.position} (${step.value.status}) followed by valid records`, { path: e.log.path });
  }
  // A new generation: every handle reopens the log, whatever the half-written block said.
  return { ...s, logGeneration: e.logGeneration + 1, historyFloor: s.txnId, checkpointTxn: e.durable.txnId, writer: 0 };
}

/**
 * Learns commits other handles published up to `p` from their log records:
 * evicts the pages they rewrote from the cache, adds them to the history
 * and makes `p` the latest (§4.1).
 */
export function catchUp(e: Engine, p: PublishedState): void {
  if (p.txnId <= e.published.txnId && p.logGeneration === e.logGeneration) return;
  e.catchUps++;
  if (p.logGeneration !== e.logGeneration) {
    // The log was replaced (truncateLog) or a recovery rebuilt the trees (a new run, its
    // own roots and page reuse): start again from the durable meta, cache and history too.
    reloadDurable(e);
    e.logGeneration = p.logGeneration;
  }
  let from = catchUpStart(e, p);
  if (from === null) return;
  const cache = e.pager.cache;
  // Pages the commits wrote that are still live after them, and how many cached pages they made unreachable.
  const fresh = new Set<number>();
  let replaced = 0;
  // Highest txn applied by this catch-up (a second pass over a reopened log skips those).
  let applied = e.published.txnId;
  let it = e.log.scan(from);
  let ended: ScanEnd;
  for (let reopened = false; ; ) {
    const step = it.next();
    if (step.done) {
      ended = step.value;
      if (ended.kind === 'end' || reopened) break;
      // The log ends before what was published: the file was replaced by a truncateLog whose
      // handle died before it published the new generation (positions are the same in the new
      // file), so read the one the path names now. Found here, not by asking the file's size
      // first: that would read the log's change time on every catch-up, which makes the
      // writer's next fdatasync write the log's inode too (spec/file_format_v1.md §8.5).
      reopened = true;
      reopenLog(e, e.logGeneration);
      const before = e.published;
      from = catchUpStart(e, p);
      if (from === null) return;
      if (e.published !== before) applied = e.published.txnId; // reloaded: apply all again
      it = e.log.scan(from);
      continue;
    }
    const rec = step.value;
    if (!isCommitRecord(rec.bytes)) continue;
    if (rec.txnId <= applied) continue;
    applied = rec.txnId;
    const root = readU64(rec.bytes, RECORD_HEADER_SIZE + COMMIT_ROOT_OFFSET);
    const pages = readPagesSection(rec.bytes);
    if (pages === null) {
      cache.clear();
      fresh.clear();
    } else {
      for (const id of pages.written) {
        cache.delete(id);
        fresh.add(id);
      }
      // A page freed here was either written by an earlier commit of this catch-up (no
      // longer worth reading ahead) or was cached (its replacement is worth it).
      for (const id of pages.freed) if (!fresh.delete(id) && cache.has(id)) replaced++;
      for (const id of pages.freedYoung) if (!fresh.delete(id) && cache.has(id)) replaced++;
    }
    e.history.add({ txnId: rec.txnId, root, entryCount: pages?.entryCount ?? 0 });
    if (e.events.listenerCount('commit') > 0) {
      const opCount = readU32(rec.bytes, RECORD_HEADER_SIZE + COMMIT_OP_COUNT_OFFSET);
      e.events.emit('commit', { txnId: rec.txnId, opCount, position: rec.position } satisfies CommitEvent);
    }
  }
  if (ended.kind !== 'end') {
    throw new NorthstarError('Corrupt', `${e.log.path}: published commit record at ${ended.position} is damaged (${ended.status})`, { path: e.log.path });
  }
  const state = treeStateOf(p);
  e.latest = state;
  e.published = state;
  e.syncedEnd = Math.max(e.syncedEnd, p.logEnd);
  e.history.add(snapshotOf(state));
  if (replaced > 0) prefetch(e, fresh, Math.min(replaced, PREFETCH_MAX_PAGES));
}

/**
 * Where catchUp(p) reads the log from: this handle's published end, or,
 * when the log no longer holds it (truncated), the durable meta's after
 * reloading from it; null when the durable meta is past the published block
 * (its publisher died between a checkpoint and its publish): then the
 * durable state is kept, and the next writer republishes from the files
 * (takeOver). Sets the log's end to the published one.
 */
export function catchUpStart(e: Engine, p: PublishedState): number | null {
  let from = e.published.logEnd;
  if (from < e.log.base || from > p.logEnd) {
    reloadDurable(e);
    from = e.published.logEnd;
  }
  if (from > p.logEnd) return null;
  e.log.end = p.logEnd;
  return from;
}

/**
 * Reads up to `limit` of the tree pages `ids` into the cache (§4.1): the new
 * versions of pages this handle had cached, read here, once per catch-up,
 * instead of by the gets that would meet them one by one. Speculative: a
 * page that fails to read is skipped (a get that needs it reads it and
 * throws), an overflow page is not kept.
 */
export function prefetch(e: Engine, ids: Set<number>, limit: number): void {
  const cache = e.pager.cache;
  let n = 0;
  for (const id of ids) {
    if (n === limit) break;
    if (cache.has(id)) continue;
    n++;
    try {
      e.pager.readAhead(id);
    } catch {
      // Left for the read that needs it, which names the problem.
    }
  }
  e.prefetched += n;
}

/** At open, with another handle live: take the state it published (§3.1). */
export function adopt(e: Engine): void {
  // The meta read at open may be older than a recovery that ran since: the records it
  // replayed carry the crashed run's roots, not those of the replayed trees, and only the
  // meta the recovery wrote (its history chain) has the right ones.
  reloadDurable(e);
  catchUp(e, readPublished(e));
}

/**
 * Re-reads the durable meta, its freelist and history chains and the log,
 * as at open: another handle may have checkpointed or replaced the log.
 */
export function reloadDurable(e: Engine): void {
  const { meta, slot } = chooseMeta(e.file, e.pager.kernels);
  e.durable = meta; // reopenLog checks the log against its database id
  reopenLog(e, e.logGeneration);
  e.startFrom(meta, slot);
  e.pager.cache.clear();
}

/** Opens the log file anew (another handle replaced it, or to see its current size). */
export function reopenLog(e: Engine, generation: number): void {
  const log = LogFile.open(e.logPath, e.durable.dbId, e.pager.kernels, e.opts.fs);
  log.carryStats(e.log.stats);
  e.log.close();
  e.log = log;
  e.logGeneration = generation;
}


