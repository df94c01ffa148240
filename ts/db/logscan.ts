// Reading the commit log for the engine: which records are commits, the
// pages sections that let a handle take over the writer (spec/concurrency_v0.md
// §5), and the small conversions between published blocks, tree states and
// snapshots.

import { NorthstarError } from '../errors.js';
import { readU32, readU64 } from '../format/bytes.js';
import type { LogFile, ScanEnd, ScannedRecord } from '../log/file.js';
import { COMMIT_ROOT_OFFSET, isCommitRecord, RECORD_HEADER_SIZE, TRAILER_LENGTH_OFFSET, TRAILER_SIZE } from '../format/record.js';
import { readPagesSection, type PagesSection } from '../log/record.js';
import type { Snapshot } from '../pager/history.js';
import type { Meta } from '../pager/meta.js';
import type { PublishedState } from '../shared/coordinator.js';
import type { TreeState } from '../txn/host.js';

/** The tree state a published block describes (`pageCount`: the file high-water mark, if known better). */
export function treeStateOf(p: PublishedState, pageCount = p.pageCount): TreeState {
  return { txnId: p.txnId, root: p.root, depth: p.depth, entryCount: p.entryCount, pageCount, recordPosition: p.recordPosition, logEnd: p.logEnd };
}


/**
 * The commit records of the log from `from` with their pages sections
 * (spec/concurrency_v0.md §5); returns how the scan ended. A commit without a
 * section (written before sections existed) cannot be taken over from:
 * UnsupportedFormat.
 */
export function* commitsWithPages(log: LogFile, from: number): Generator<{ rec: ScannedRecord; pages: PagesSection; root: number }, ScanEnd, void> {
  const it = log.scan(from);
  let step = it.next();
  for (; !step.done; step = it.next()) {
    const rec = step.value;
    if (!isCommitRecord(rec.bytes)) continue;
    const pages = readPagesSection(rec.bytes);
    if (pages === null) {
      throw new NorthstarError('UnsupportedFormat', `${log.path}: record ${rec.txnId} after the last checkpoint has no pages section (written by an older version); close every handle and reopen to recover`, {
        path: log.path,
      });
    }
    yield { rec, pages, root: readU64(rec.bytes, RECORD_HEADER_SIZE + COMMIT_ROOT_OFFSET) };
  }
  return step.value;
}

export function snapshotOf(s: TreeState): Snapshot {
  return { txnId: s.txnId, root: s.root, entryCount: s.entryCount };
}

/** Records of the log from its start (headers only matter to callers here). */
export function* scanLog(log: LogFile): Generator<{ txnId: number; position: number }> {
  const it = log.scan(log.base);
  for (let s = it.next(); !s.done; s = it.next()) yield { txnId: s.value.txnId, position: s.value.position };
}

/** Position of the record that ends at `end` (its trailer holds its length), or 0 at the start of the log. */
export function lastRecordBefore(log: LogFile, end: number): number {
  if (end - TRAILER_SIZE < log.base) return 0;
  const t = log.read(end - TRAILER_SIZE, TRAILER_SIZE);
  if (t.length < TRAILER_SIZE) return 0;
  const len = readU32(t, TRAILER_LENGTH_OFFSET);
  return end - len >= log.base ? end - len : 0;
}

/** The tree state a durable meta describes, its record found from the log's trailer. */
export function stateOfMeta(meta: Meta, log: LogFile): TreeState {
  return {
    txnId: meta.txnId,
    root: meta.root,
    depth: meta.depth,
    entryCount: meta.entryCount,
    pageCount: meta.pageCount,
    recordPosition: lastRecordBefore(log, meta.logTail),
    logEnd: meta.logTail,
  };
}
