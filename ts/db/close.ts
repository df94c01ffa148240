// Closing a handle: abort its live writer, reject its waits for the writer,
// checkpoint when it can take the writer without waiting (another handle that
// holds it checkpoints the data file itself), trim the log's preallocated
// zeros, then give back the reader slot and close the files.

import { NorthstarError } from '../errors.js';
import { stopWatching } from './changes.js';
import { writeCheckpoint } from './checkpoint.js';
import type { Engine } from './engine.js';
import { forgetRaise } from './snapshots.js';
import { takeOver, rejectWriterWaiters } from './writer.js';

/** Checkpoints, aborts a live writer, ends every reader and closes both files. Throws the checkpoint's error after closing. */
export function close(e: Engine): void {
  if (e.closed) return;
  e.writer?.abort();
  rejectWriterWaiters(e, new NorthstarError('Closed', 'database closed while waiting for the writer'));
  let err: unknown = null;
  if (!e.poisoned) {
    try {
      // Skipped when another handle holds the writer: the data file is theirs to checkpoint.
      // And skipped without asking for the writer when there is nothing to do (the fallback's
      // writer lock is a directory made and removed: a third of an open + close).
      const had = e.coord.writerLocked;
      if (!had && nothingToCheckpoint(e)) {
        // The durable meta holds every published commit and the log ends at its last record.
      } else if (had || e.coord.lockWriter(0)) {
        if (!had) takeOver(e);
        writeCheckpoint(e);
        // A closed database's log ends at its last record (tools read it whole).
        e.log.trimPreallocated();
      }
    } catch (error) {
      err = error;
    }
  }
  closeFiles(e);
  if (err) throw err;
}

/**
 * True when a checkpoint at close would change nothing (spec/concurrency_v0.md
 * §5): the published commit is the durable meta's, and this handle's log file
 * (the published generation's) ends at the published end, with no
 * preallocated zeros to trim. Any doubt (a torn published block, another
 * generation) says false, and close takes the writer as before.
 */
function nothingToCheckpoint(e: Engine): boolean {
  const p = e.coord.readPublished(0);
  return p !== null && p.txnId === p.checkpointTxn && p.logGeneration === e.logGeneration && e.log.endsAt(p.logEnd);
}

/** Closes the files and the lock-file view; the handle is closed from here on, whatever fails. */
export function closeFiles(e: Engine): void {
  e.closed = true;
  stopWatching(e);
  // A closed handle is nobody's to raise; dropping it here also lets it be collected
  // before the current task ends.
  forgetRaise(e);
  e.pager.cache.clear();
  e.pager.map?.close();
  try {
    e.coord.close();
  } finally {
    try {
      e.log.close();
    } finally {
      e.file.close();
    }
  }
}
