// Deterministic replay (spec/commit_record_v0.md §8): rebuilds the key/value
// state from the commit log alone, in memory, and a state hash that equals the
// hash of the database's snapshot at the same txn id (stateHashOf).
//
// State hash: a 64-bit multiset hash, the sum (as two independent u32 lanes,
// each mod 2^32) over all entries of CRC32C(key ‖ value) seeded per lane with
// the key length mixed in. Order-independent, so it can be kept running while
// operations apply. It detects divergence; it is not a cryptographic digest.

import { NorthstarError } from '../errors.js';
import { readU16, readU32 } from '../format/bytes.js';
import { kernels as defaultKernels, type Kernels } from '../native/kernels.js';
import { RECORD_HEADER_SIZE, RECORD_TYPE_OFFSET, RecordType, COMMIT_OP_COUNT_OFFSET, OpType } from './constants.js';
import { LogFile } from './file.js';

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

  /** entry() of key ‖ value stored contiguously (as in a commit record): half the kernel calls. */
  entryContiguous(keyAndValue: Uint8Array, keyLength: number): [number, number] {
    const k = this.k;
    return [k.crc32c(keyAndValue, seedLo(keyLength)), k.crc32c(keyAndValue, seedHi(keyLength))];
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
  /** Key (as latin1 string, one char per byte) → value. */
  state: Map<string, Buffer>;
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

interface Entry {
  value: Buffer;
  lo: number;
  hi: number;
}

/**
 * Applies the log's commits in order and yields after each operation (explain)
 * or commit. Shared by replay() and explain().
 */
function* run(path: string, toTxnId: number | undefined, perOp: boolean, perCommit: boolean, k: Kernels): Generator<ExplainStep | ReplayCommit, ReplayResult, void> {
  const logPath = logPathOf(path);
  const log = LogFile.open(logPath, null, k);
  const state = new Map<string, Entry>();
  const h = new StateHash(k);
  let last = 0;
  let commits = 0;
  let opsApplied = 0;
  let out = new Uint32Array(4 * 256);
  try {
    const it = log.scan(log.base);
    let s = it.next();
    for (; !s.done; s = it.next()) {
      const r = s.value;
      if (readU16(r.bytes, RECORD_TYPE_OFFSET) !== RecordType.Commit) continue;
      if (toTxnId !== undefined && r.txnId > toTxnId) break;
      if (r.txnId !== last + 1) {
        throw new NorthstarError('SnapshotNotFound', `${logPath}: the log starts at txn ${r.txnId}; replay needs every commit from txn 1`, { path: logPath });
      }
      const count = readU32(r.bytes, RECORD_HEADER_SIZE + COMMIT_OP_COUNT_OFFSET);
      if (out.length < count * 4) out = new Uint32Array(count * 4);
      k.recordDecode(r.bytes, 0, out);
      for (let i = 0; i < count; i++) {
        const ko = out[i * 4 + 1]!;
        const kl = out[i * 4 + 2]!;
        const vl = out[i * 4 + 3]!;
        const key = r.bytes.subarray(ko, ko + kl);
        const name = Buffer.from(key.buffer, key.byteOffset, kl).toString('latin1');
        const old = state.get(name);
        if (old) h.remove(old.lo, old.hi);
        let value: Buffer;
        if (out[i * 4] === OpType.Put) {
          value = Buffer.from(r.bytes.subarray(ko + kl, ko + kl + vl));
          const [lo, hi] = h.entryContiguous(r.bytes.subarray(ko, ko + kl + vl), kl);
          h.add(lo, hi);
          state.set(name, { value, lo, hi });
        } else {
          value = Buffer.alloc(0);
          state.delete(name);
        }
        opsApplied++;
        if (perOp) yield { txnId: r.txnId, op: out[i * 4] === OpType.Put ? 'put' : 'del', key: Buffer.from(key), value, stateHash: h.toString() };
      }
      last = r.txnId;
      commits++;
      if (perCommit) yield { txnId: last, opCount: count, stateHash: h.toString() };
    }
    if (s.done && s.value.kind === 'damaged') {
      throw new NorthstarError('Corrupt', `${logPath}: damaged record at position ${s.value.position} (${s.value.status}) followed by valid records`, { path: logPath });
    }
    if (toTxnId !== undefined && last !== toTxnId && !(toTxnId === 0 && last === 0)) {
      throw new NorthstarError('SnapshotNotFound', `${logPath}: the log ends at txn ${last}, before txn ${toTxnId}`, { path: logPath });
    }
  } finally {
    log.close();
  }
  const plain = new Map<string, Buffer>();
  for (const [key, e] of state) plain.set(key, e.value);
  return { txnId: last, state: plain, stateHash: h.toString(), commits, ops: opsApplied };
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

