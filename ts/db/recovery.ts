// Recovery at open (spec/file_format_v1.md §8.3): the handle that opens a
// database no live handle has open replays, under the writer lock, every
// commit record after the durable meta's log tail, then checkpoints.

import { NorthstarError } from '../errors.js';
import { readU32 } from '../format/bytes.js';
import { COMMIT_OP_COUNT_OFFSET, RECORD_HEADER_SIZE } from '../format/record.js';
import { WriteTxn } from '../txn/write.js';
import { writeCheckpoint } from './checkpoint.js';
import type { Engine } from './engine.js';
import { isCommitRecord } from '../format/record.js';
import { releasePages } from './snapshots.js';

/**
 * Replays the log records after the durable meta (spec §8.3): each becomes a
 * commit again (new pages, same txn id and operations). A torn tail is cut
 * off; damage followed by valid records is Corrupt.
 */
export function recover(e: Engine): void {
  const log = e.log;
  // A clean close leaves the log ending at the durable meta's tail: nothing to scan.
  if (log.end === e.durable.logTail) {
    e.syncedEnd = e.latest.logEnd;
    return;
  }
  const k = e.pager.kernels;
  let ops = new Uint32Array(4 * 1024);
  let replayed = 0;
  const it = log.scan(e.durable.logTail);
  let step = it.next();
  while (!step.done) {
    const rec = step.value;
    if (isCommitRecord(rec.bytes)) {
      if (rec.txnId !== e.latest.txnId + 1) {
        throw new NorthstarError('Corrupt', `${log.path}: record at ${rec.position} is txn ${rec.txnId}, expected ${e.latest.txnId + 1}`, {
          path: log.path,
        });
      }
      const opCount = readU32(rec.bytes, RECORD_HEADER_SIZE + COMMIT_OP_COUNT_OFFSET);
      if (ops.length < opCount * 4) ops = new Uint32Array(opCount * 4);
      k.recordDecode(rec.bytes, 0, ops);
      releasePages(e);
      const w = WriteTxn.create(e, { position: rec.position, end: rec.position + rec.length });
      e.writer = w;
      for (let i = 0; i < opCount; i++) {
        const ko = ops[i * 4 + 1]!;
        const kl = ops[i * 4 + 2]!;
        const vl = ops[i * 4 + 3]!;
        w.applyReplayed(ops[i * 4]!, rec.bytes.subarray(ko, ko + kl), rec.bytes.subarray(ko + kl, ko + kl + vl));
      }
      w.commit();
      replayed++;
    }
    step = it.next();
  }
  const end = step.value;
  if (end.kind === 'damaged') {
    throw new NorthstarError('Corrupt', `${log.path}: damaged commit record at position ${end.position} (${end.status}) followed by valid records`, {
      path: log.path,
    });
  }
  if (end.kind === 'torn') log.truncateTail(end.position);
  e.syncedEnd = e.latest.logEnd;
  if (replayed > 0) writeCheckpoint(e);
}
