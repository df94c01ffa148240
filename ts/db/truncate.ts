// Dropping old log records: the only way the log shrinks at its start, and only
// up to the last checkpoint, so the data file holds every commit the dropped
// records carried (spec/file_format_v1.md §8.4, §8.6). Two ways in: the
// retention that runs after every checkpoint (dropRetiredLog, §8.7), and
// truncateLog, which the user asks for.

import { NorthstarError } from '../errors.js';
import { keepsWholeLog, writeCheckpoint, type LogCut } from './checkpoint.js';
import type { Engine } from './engine.js';
import { publishShared } from './groupcommit.js';
import { scanLog } from './logscan.js';
import { withWriterLock } from './writer.js';

/**
 * Log retention (spec/file_format_v1.md §8.7), by the writer after a
 * checkpoint: drops the records before the newest checkpoint this handle
 * knows whose records are all outside the retention: older than the last
 * `log.retainTxns` commits, or more than `log.retainBytes` before the end.
 * Records since the durable checkpoint always stay (recovery replays them).
 * Cuts only at checkpoint boundaries, which are record boundaries, and only
 * once it drops at least what it must copy (and `log.minDropBytes`), so the
 * copying costs at most one more write of each log byte.
 */
export function dropRetiredLog(e: Engine): void {
  if (keepsWholeLog(e)) return;
  const keepTxns = e.opts.logRetainTxns;
  const keepBytes = e.opts.logRetainBytes;
  const end = e.log.end;
  const latest = e.latest.txnId;
  let cut: LogCut | undefined;
  // Records replication has not published yet stay (Engine.logHold).
  const held = e.logHold?.() ?? null;
  for (const c of e.logCuts) {
    if (c.position <= e.log.base || c.position > e.durable.logTail || c.txnId > e.durable.txnId) continue;
    if (held !== null && c.position > held) continue;
    if (latest - c.txnId >= keepTxns || end - c.position >= keepBytes) cut = c;
  }
  if (cut === undefined) return;
  const dropped = cut.position - e.log.base;
  if (dropped < Math.max(end - cut.position, e.opts.logMinDropBytes)) return;
  dropLogBefore(e, cut.position);
  publishShared(e);
}

/**
 * Replaces the log by the records from `position` on (LogFile.dropBefore),
 * for retention and truncateLog alike. The caller publishes the new
 * generation (truncateLog does so with its checkpoint).
 */
function dropLogBefore(e: Engine, position: number): void {
  // The writer of record first: should this handle die once the file is replaced, the
  // next writer reopens the log rather than append to the old file (concurrency §5).
  publishShared(e);
  // Counted before it happens, as a meta write is (concurrency §2.4): a writer taking over
  // after this handle died past this point rebuilds from the files and opens the log the
  // path names, rather than apply records to the replaced file and append there.
  e.metaWritesSeen = e.coord.noteMetaWrite();
  e.log.dropBefore(position);
  // Other handles still have the replaced file open: they reopen it when they see this.
  e.logGeneration++;
  e.logCuts = e.logCuts.filter((c) => c.position > position);
}

/** Drops the records of commits before `before` (at most up to the last checkpoint). */
export function truncateLog(e: Engine, before: number): void {
  withWriterLock(e, () => {
    if (before > e.durable.txnId + 1) {
      throw new NorthstarError('InvalidArgument', `can only truncate up to the last checkpoint (txn ${e.durable.txnId}); call checkpoint() first`);
    }
    let cut = e.log.end;
    for (const r of scanLog(e.log)) {
      if (r.txnId >= before) {
        cut = r.position;
        break;
      }
    }
    if (cut > e.durable.logTail) cut = e.durable.logTail;
    if (cut > e.log.base) dropLogBefore(e, cut);
    e.history.dropBefore(before);
    // The durable history chain still lists the dropped snapshots: rewrite it now.
    writeCheckpoint(e, true);
  });
}

/** Where the log starts and what it keeps (stats().log, spec §8.7). */
export function logRetention(e: Engine): { start: number; firstTxnId: number | null; retainTxns: number; retainBytes: number } {
  return { start: e.log.base, firstTxnId: e.log.firstTxnId(), retainTxns: e.opts.logRetainTxns, retainBytes: e.opts.logRetainBytes };
}
