// Dropping old log records (truncateLog): the only way the log shrinks at its
// start, and only up to the last checkpoint, so the data file holds every
// commit the dropped records carried (spec/file_format_v1.md §8.4, §8.6).

import { NorthstarError } from '../errors.js';
import { writeCheckpoint } from './checkpoint.js';
import type { Engine } from './engine.js';
import { publishShared } from './groupcommit.js';
import { scanLog } from './logscan.js';
import { withWriterLock } from './writer.js';

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
    if (cut > e.log.base) {
      // The writer of record first: should this handle die once the file is replaced, the
      // next writer reopens the log rather than append to the old file (concurrency §5).
      publishShared(e);
      e.log.dropBefore(cut);
      // Other handles still have the replaced file open: they reopen it when they see this.
      e.logGeneration++;
    }
    e.history.dropBefore(before);
    // The durable history chain still lists the dropped snapshots: rewrite it now.
    writeCheckpoint(e, true);
  });
}
