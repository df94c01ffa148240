// Deterministic replay (spec/commit_record_v0.md §8): rebuilds the key/value
// state from the commit log alone, in memory, and a state hash that equals the
// hash of the database's snapshot at the same txn id (stateHashOf).
//
// State hash: a 64-bit multiset hash, the sum (as two independent u32 lanes,
// each mod 2^32) over all entries of CRC32C(key ‖ value) seeded per lane with
// the key length mixed in. Order-independent, so it can be kept running while
// operations apply. It detects divergence; it is not a cryptographic digest.

import { NorthstarError } from '../errors.js';
import { readU16, readU32, readU64 } from '../format/bytes.js';
import { MemTable } from './memtable.js';
import { kernels as defaultKernels, type Kernels } from '../native/kernels.js';
import { COMMIT_OP_COUNT_OFFSET, OpType, RECORD_HEADER_SIZE, RECORD_MAGIC, RECORD_MAGIC_OFFSET, RECORD_OVERHEAD, RECORD_PAYLOAD_LENGTH_OFFSET, RECORD_TXN_ID_OFFSET, RECORD_TYPE_OFFSET, RecordType } from '../format/record.js';
import { LogFile, zeroRun } from './file.js';

const SEED_LO = 0x1b873593;
const SEED_HI = 0x6a09e667;
// CRC32C continues from a seed, so crc(seed, key ‖ value) = crc(crc(seed, key), value):
// hashing a record's contiguous bytes and a snapshot's separate buffers agree.
const seedLo = (klen: number): number => (SEED_LO ^ Math.imul(klen, 0x01000193)) >>> 0;
const seedHi = (klen: number): number => (SEED_HI ^ Math.imul(klen, 0x85ebca6b)) >>> 0;

/** A running multiset hash of key/value entries. */
export class StateHash {
  lo = 0;
  hi = 0;

  constructor(private readonly k: Kernels = defaultKernels) {}

  /** Lane hashes of one entry. */
  entry(key: Uint8Array, value: Uint8Array): [number, number] {
    const k = this.k;
    const lo = k.crc32c(value, k.crc32c(key, seedLo(key.length)));
    const hi = k.crc32c(value, k.crc32c(key, seedHi(key.length)));
    return [lo, hi];
  }

  /** Lanes of the last entryContiguous() call. */
  lastLo = 0;
  lastHi = 0;

  /** entry() of key ‖ value stored contiguously (as in a commit record), into lastLo/lastHi: half the kernel calls, no allocation. */
  entryContiguous(keyAndValue: Uint8Array, keyLength: number): void {
    const k = this.k;
    this.lastLo = k.crc32c(keyAndValue, seedLo(keyLength));
    this.lastHi = k.crc32c(keyAndValue, seedHi(keyLength));
  }

  /** entryContiguous(), then add() of its lanes: one entry stored key ‖ value. */
  addContiguous(keyAndValue: Uint8Array, keyLength: number): void {
    this.entryContiguous(keyAndValue, keyLength);
    this.add(this.lastLo, this.lastHi);
  }

  add(lo: number, hi: number): void {
    this.lo = (this.lo + lo) >>> 0;
    this.hi = (this.hi + hi) >>> 0;
  }

  remove(lo: number, hi: number): void {
    this.lo = (this.lo - lo) >>> 0;
    this.hi = (this.hi - hi) >>> 0;
  }

  /** 16 hex digits. */
  toString(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}

/** The state hash of a set of entries, e.g. a snapshot's scan(). */
export function stateHashOf(entries: Iterable<[Uint8Array, Uint8Array]>, k: Kernels = defaultKernels): string {
  const h = new StateHash(k);
  for (const [key, value] of entries) {
    const [lo, hi] = h.entry(key, value);
    h.add(lo, hi);
  }
  return h.toString();
}

export interface ReplayCommit {
  txnId: number;
  opCount: number;
  /** State hash after this commit. */
  stateHash: string;
  /** Log position of the commit's record, and just past it. */
  position: number;
  end: number;
}

export interface ReplayOptions {
  /** Stop after this commit (default: the end of the log). */
  toTxnId?: number;
  /** Called after each commit is applied. */
  onCommit?: (c: ReplayCommit) => void;
}

export interface ReplayResult {
  /** The last commit applied (0 if none). */
  txnId: number;
  /** The state: get(key) (bytes, or a string as UTF-8), size, entries(). */
  state: MemTable;
  stateHash: string;
  commits: number;
  ops: number;
}

/** One applied operation in explain mode. */
export interface ExplainStep {
  txnId: number;
  op: 'put' | 'del';
  key: Buffer;
  value: Buffer;
  /** Running state hash after this operation. */
  stateHash: string;
}

/** The log of database `path` (`<path>.log`), or `path` itself if it names a log. */
function logPathOf(path: string): string {
  return path.endsWith('.log') ? path : `${path}.log`;
}

const CHUNK = 4 << 20;

/**
 * Applies the log's commits in order and yields after each operation (explain)
 * or commit. Shared by replay() and explain(). Reads the log in chunks it keeps
 * (the memtable's values point into them) and decodes each record once with
 * recordDecode, which verifies it; anything it rejects goes to LogFile.scan
 * for the torn-tail-or-damage verdict of spec/commit_record_v0.md §7.
 */
function* run(path: string, toTxnId: number | undefined, perOp: boolean, perCommit: boolean, k: Kernels): Generator<ExplainStep | ReplayCommit, ReplayResult, void> {
  const logPath = logPathOf(path);
  const log = LogFile.open(logPath, null, k);
  const mem = new MemTable();
  const h = new StateHash(k);
  let last = 0;
  let commits = 0;
  let opsApplied = 0;
  let out = new Uint32Array(4 * 256);
  try {
    let pos = log.base;
    let chunk: Uint8Array = new Uint8Array(0);
    let chunkPos = pos;
    let chunkId = -1;
    const load = (at: number, need: number): void => {
      chunk = log.read(at, Math.min(Math.max(CHUNK, need), log.end - at));
      chunkPos = at;
      chunkId = mem.addChunk(chunk);
    };
    while (pos < log.end) {
      let at = pos - chunkPos;
      if (chunkId < 0 || at + RECORD_OVERHEAD > chunk.length) {
        load(pos, RECORD_OVERHEAD);
        at = 0;
      }
      if (log.sectorSize > 0 && chunk[at] === 0) {
        // An alignment gap (spec/file_format_v1.md §8.4); anything else that starts with zeros
        // goes to the log's own scan below.
        if (at + log.sectorSize > chunk.length && pos + log.sectorSize <= log.end) {
          load(pos, log.sectorSize);
          at = 0;
        }
        const gap = zeroRun(chunk, at, Math.min(chunk.length, at + log.sectorSize));
        if (gap < log.sectorSize && at + gap < chunk.length) {
          pos += gap;
          continue;
        }
      }
      const total = readU32(chunk, at + RECORD_PAYLOAD_LENGTH_OFFSET) + RECORD_OVERHEAD;
      if (at + total > chunk.length && pos + total <= log.end) {
        load(pos, total);
        at = 0;
      }
      // recordDecode verifies the record itself: commit records skip a separate recordVerify.
      const isCommit = readU16(chunk, at + RECORD_TYPE_OFFSET) === RecordType.Commit && readU32(chunk, at + RECORD_MAGIC_OFFSET) === RECORD_MAGIC;
      let count = -1;
      if (isCommit && at + total <= chunk.length) {
        const ops = readU32(chunk, at + RECORD_HEADER_SIZE + COMMIT_OP_COUNT_OFFSET);
        if (out.length < ops * 4) out = new Uint32Array(Math.min(ops, total) * 4 + 4);
        try {
          count = k.recordDecode(chunk, at, out);
        } catch {
          count = -1;
        }
      }
      const status = count >= 0 ? total : k.recordVerify(chunk, at);
      if (status < 0) {
        // Let the log's own scan classify it: a torn tail ends replay, damage is Corrupt.
        const end = log.scan(pos).next();
        if (end.done && end.value.kind === 'damaged') {
          throw new NorthstarError('Corrupt', `${logPath}: damaged record at position ${pos} (${end.value.status}) followed by valid records`, { path: logPath });
        }
        break;
      }
      const txnId = readU64(chunk, at + RECORD_TXN_ID_OFFSET);
      if (readU16(chunk, at + RECORD_TYPE_OFFSET) === RecordType.Commit) {
        if (toTxnId !== undefined && txnId > toTxnId) break;
        if (txnId !== last + 1) {
          // At the first record: records before it were dropped. Later: a txn is missing.
          const why =
            last === 0
              ? `the retained log starts at txn ${txnId} (position ${pos}); replay needs every commit from txn 1. ` +
                'Records before it were dropped by log retention or truncateLog (spec/file_format_v1.md §8.7); ' +
                'open with log: { retainTxns: Infinity, retainBytes: Infinity } to keep them all'
              : `commit ${txnId} at position ${pos} follows commit ${last}; replay needs every commit`;
          throw new NorthstarError('SnapshotNotFound', `${logPath}: ${why}`, { path: logPath });
        }
        if (count < 0) throw new NorthstarError('Corrupt', `${logPath}: commit record at position ${pos} does not decode`, { path: logPath });
        for (let i = 0; i < count; i++) {
          const ko = out[i * 4 + 1]!;
          const kl = out[i * 4 + 2]!;
          const vl = out[i * 4 + 3]!;
          const e = mem.entry(chunkId, ko, kl);
          if (mem.isLive(e)) h.remove(mem.lo[e]!, mem.hi[e]!);
          const put = out[i * 4] === OpType.Put;
          if (put) {
            h.entryContiguous(chunk.subarray(ko, ko + kl + vl), kl);
            mem.set(e, chunkId, ko, vl);
            mem.lo[e] = h.lastLo;
            mem.hi[e] = h.lastHi;
            h.add(h.lastLo, h.lastHi);
          } else {
            mem.delete(e);
          }
          opsApplied++;
          if (perOp) {
            yield {
              txnId,
              op: put ? 'put' : 'del',
              key: Buffer.from(chunk.subarray(ko, ko + kl)),
              value: Buffer.from(chunk.subarray(ko + kl, ko + kl + (put ? vl : 0))),
              stateHash: h.toString(),
            };
          }
        }
        last = txnId;
        commits++;
        if (perCommit) yield { txnId: last, opCount: count, stateHash: h.toString(), position: pos, end: pos + status };
      }
      pos += status;
    }
    if (toTxnId !== undefined && last !== toTxnId && !(toTxnId === 0 && last === 0)) {
      throw new NorthstarError('SnapshotNotFound', `${logPath}: the log ends at txn ${last}, before txn ${toTxnId}`, { path: logPath });
    }
  } finally {
    log.close();
  }
  return { txnId: last, state: mem, stateHash: h.toString(), commits, ops: opsApplied };
}

/**
 * Rebuilds the key/value state of database `path` from its log alone, to the
 * end or to `toTxnId`. Needs the log from txn 1 (SnapshotNotFound after
 * truncateLog); Corrupt for a damaged record followed by valid ones; a torn
 * tail is ignored (it was never acknowledged).
 */
export function replay(path: string, options: ReplayOptions = {}): ReplayResult {
  const it = run(path, options.toTxnId, false, options.onCommit !== undefined, defaultKernels);
  for (;;) {
    const s = it.next();
    if (s.done) return s.value;
    options.onCommit?.(s.value as ReplayCommit);
  }
}

/** Explain mode: every operation replay applies, in order, with the running state hash. */
export function* explain(path: string, options: { toTxnId?: number } = {}): Generator<ExplainStep, void, void> {
  const it = run(path, options.toTxnId, true, false, defaultKernels);
  for (let s = it.next(); !s.done; s = it.next()) yield s.value as ExplainStep;
}

