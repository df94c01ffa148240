// The commit stream: committed records in order with copies of their
// operations (db.readLog, replay, the CLI). Derived indexes and replication
// read the database through this.

import type { LogCommit, LogOp } from './commit.js';
import { NorthstarError } from '../errors.js';
import { readU32 } from '../format/bytes.js';
import type { Kernels } from '../native/kernels.js';
import type { LogFile } from './file.js';
import { COMMIT_OP_COUNT_OFFSET, isCommitRecord, OpType, RECORD_HEADER_SIZE } from '../format/record.js';

let scratch = new Uint32Array(4 * 256);

/**
 * The operations of the valid commit record at the start of `bytes`
 * (recordDecode): keys and values copied when `copy`, else views of `bytes`.
 */
export function commitOpsOf(bytes: Uint8Array, k: Kernels, copy: boolean): LogOp[] {
  const count = readU32(bytes, RECORD_HEADER_SIZE + COMMIT_OP_COUNT_OFFSET);
  if (scratch.length < count * 4) scratch = new Uint32Array(count * 4);
  const out = scratch;
  k.recordDecode(bytes, 0, out);
  const view = (from: number, length: number): Buffer => (copy ? Buffer.from(bytes.subarray(from, from + length)) : Buffer.from(bytes.buffer, bytes.byteOffset + from, length));
  const ops: LogOp[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const ko = out[i * 4 + 1]!;
    const kl = out[i * 4 + 2]!;
    ops[i] = { type: out[i * 4] === OpType.Put ? 'put' : 'del', key: view(ko, kl), value: view(ko + kl, out[i * 4 + 3]!) };
  }
  return ops;
}

/**
 * Commit records with txnId in [from, upTo], as copies, scanning from log
 * position `start` (default: the log's first record; a caller that knows
 * where commit `from` starts, such as the end of the record before it, skips
 * the scan up to it). `missing(from, first)` is called (and must throw) when
 * the log no longer holds commit `from`: the scan's first commit is `first`. A scan that ends (damaged or torn record) before
 * commit `upTo` throws Corrupt: the stream never ends early without saying so.
 */
export function* readLogRecords(
  log: LogFile,
  k: Kernels,
  from: number,
  upTo: number,
  missing: (txnId: number, firstTxnId: number) => never,
  start = log.base,
  /** false: keys and values are views of the scan's buffer, valid until the next commit is read (a caller that uses them at once). */
  copy = true,
): Generator<LogCommit, void, void> {
  let first = true;
  let last = 0;
  const it = log.scan(start);
  let s = it.next();
  for (; !s.done; s = it.next()) {
    const r = s.value;
    if (r.txnId > upTo) return;
    last = r.txnId;
    if (!isCommitRecord(r.bytes)) continue;
    if (first) {
      first = false;
      if (r.txnId > from && from > 0) missing(from, r.txnId);
    }
    if (r.txnId < from) continue;
    yield { txnId: r.txnId, position: r.position, end: r.position + r.bytes.length, ops: commitOpsOf(r.bytes, k, copy) };
  }
  const end = s.value;
  // A torn tail ends a scan to the end of the log (upTo Infinity) quietly, as replay does: it was never acknowledged.
  if (end.kind !== 'end' && last < upTo && !(upTo === Infinity && end.kind === 'torn')) {
    throw new NorthstarError('Corrupt', `${log.path}: ${end.kind} record at position ${end.position} (${end.status ?? ''}) before commit ${upTo}`, {
      path: log.path,
    });
  }
}
