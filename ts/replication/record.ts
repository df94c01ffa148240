// A commit record as replication carries it (spec/replication_v0.md §2): the
// log record exactly as the primary's log has it (commit_record_v0), checked
// and decoded here. Two records of one txn are the same commit when their
// operations are: the header's log positions, flags and the commit's root
// page differ from one database's log to another's.

import { NorthstarError } from '../errors.js';
import { readU32, readU64 } from '../format/bytes.js';
import { COMMIT_OP_COUNT_OFFSET, OpType, RECORD_HEADER_SIZE, RECORD_TXN_ID_OFFSET, RECORD_TYPE_OFFSET, RecordType } from '../format/record.js';
import type { Kernels } from '../native/kernels.js';

/** One operation of a commit, as views of the record's bytes. */
export interface CommitOp {
  put: boolean;
  key: Uint8Array;
  value: Uint8Array;
}

let scratch = new Uint32Array(4 * 256);

/**
 * The operations of commit record `bytes` (exactly one whole record), after
 * its checks: Corrupt when a checksum, the type or the txn id (`txnId`) is
 * not a commit's. The ops view `bytes`.
 */
export function commitOps(bytes: Uint8Array, txnId: number, k: Kernels): CommitOp[] {
  const length = k.recordVerify(bytes, 0);
  if (length !== bytes.length) throw new NorthstarError('Corrupt', `the record of txn ${txnId} fails its checks (status ${length})`);
  const type = bytes[RECORD_TYPE_OFFSET]! | (bytes[RECORD_TYPE_OFFSET + 1]! << 8);
  if (type !== RecordType.Commit || readU64(bytes, RECORD_TXN_ID_OFFSET) !== txnId) throw new NorthstarError('Corrupt', `the message of txn ${txnId} is not that commit's record`);
  const count = readU32(bytes, RECORD_HEADER_SIZE + COMMIT_OP_COUNT_OFFSET);
  if (scratch.length < count * 4) scratch = new Uint32Array(count * 4);
  const out = scratch;
  k.recordDecode(bytes, 0, out);
  const ops: CommitOp[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const ko = out[i * 4 + 1]!;
    const kl = out[i * 4 + 2]!;
    ops[i] = { put: out[i * 4] === OpType.Put, key: bytes.subarray(ko, ko + kl), value: bytes.subarray(ko + kl, ko + kl + out[i * 4 + 3]!) };
  }
  return ops;
}

/** Whether records `a` and `b` of txn `txnId` carry the same operations in the same order. */
export function sameCommit(a: Uint8Array, b: Uint8Array, txnId: number, k: Kernels): boolean {
  const x = commitOps(a, txnId, k);
  const y = commitOps(b, txnId, k);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    if (x[i]!.put !== y[i]!.put || Buffer.compare(x[i]!.key, y[i]!.key) !== 0 || Buffer.compare(x[i]!.value, y[i]!.value) !== 0) return false;
  }
  return true;
}
