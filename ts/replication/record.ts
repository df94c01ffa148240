// A commit record as replication carries it (spec/replication_v0.md §2): the
// log record exactly as the primary's log has it (commit_record_v0), checked
// and decoded here. Two records of one txn are the same commit when their
// operations are: the header's log positions, flags and the commit's root
// page differ from one database's log to another's.

import { NorthstarError } from '../errors.js';
import { readU64 } from '../format/bytes.js';
import { isCommitRecord, RECORD_TXN_ID_OFFSET } from '../format/record.js';
import type { LogOp } from '../log/commit.js';
import { commitOpsOf } from '../log/reader.js';
import type { Kernels } from '../native/kernels.js';

/**
 * The operations of commit record `bytes` (exactly one whole record), after
 * its checks: Corrupt when a checksum, the type or the txn id (`txnId`) is
 * not a commit's. The ops view `bytes`.
 */
export function commitOps(bytes: Uint8Array, txnId: number, k: Kernels): LogOp[] {
  const length = k.recordVerify(bytes, 0);
  if (length !== bytes.length) throw new NorthstarError('Corrupt', `the record of txn ${txnId} fails its checks (status ${length})`);
  if (!isCommitRecord(bytes) || readU64(bytes, RECORD_TXN_ID_OFFSET) !== txnId) throw new NorthstarError('Corrupt', `the message of txn ${txnId} is not that commit's record`);
  return commitOpsOf(bytes, k, false);
}

/** Whether records `a` and `b` of txn `txnId` carry the same operations in the same order. */
export function sameCommit(a: Uint8Array, b: Uint8Array, txnId: number, k: Kernels): boolean {
  const x = commitOps(a, txnId, k);
  const y = commitOps(b, txnId, k);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    if (x[i]!.type !== y[i]!.type || Buffer.compare(x[i]!.key, y[i]!.key) !== 0 || Buffer.compare(x[i]!.value, y[i]!.value) !== 0) return false;
  }
  return true;
}
