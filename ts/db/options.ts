// The options of open() and the shapes the public API returns: every limit is
// an option with its default here (docs/api.md).

import { NorthstarError } from '../errors.js';
import { DEFAULT_PAGE_SIZE, LOG_SECTOR_SIZES, PAGE_SIZES } from '../format/constants.js';
import { nodeFileSystem, type FileSystem, type IoStats } from '../io/file.js';
import type { Implementation } from '../native/kernels.js';
import type { ReaderSlot } from '../shared/layout.js';

export type SyncMode = 'full' | 'none';

export interface OpenOptions {
  /** Page size for a new file: 4096, 8192, 16384 (default) or 32768. An existing file keeps its own. */
  pageSize?: number;
  /** 'full' (default): each commit is durable when commit() returns (one fdatasync of the log). 'none': no fdatasync (tests, bulk loads). */
  sync?: SyncMode;
  /** Bytes of page data the page cache holds at most (default 256 MiB; never fewer than 16 pages). */
  cacheSize?: number;
  /**
   * Time travel: the latest commits stay readable with beginRead({ txnId }),
   * up to `txns` of them (default 1000) and while the pages they keep from
   * reuse take at most `bytes` (default 64 MiB; Infinity: no byte bound).
   * The oldest snapshots go first when either is reached
   * (spec/file_format_v1.md §6.2).
   */
  history?: { txns?: number; bytes?: number };
  /**
   * Automatic checkpoints: after this many commits or this many log bytes
   * since the last one (defaults 1000 and 64 MiB), or once the freed pages
   * that a checkpoint now would let the writer reuse reach `freedBytes`
   * (default 64 MiB): about what the data file may grow by between
   * checkpoints (spec/file_format_v1.md §8.2). One made due by commit() syncs
   * on the calling thread, like commit() itself; one made due by
   * commitAsync() syncs on the thread pool while the handle keeps writing.
   */
  checkpoint?: { commits?: number; logBytes?: number; freedBytes?: number };
  /**
   * The commit log's retention (spec/file_format_v1.md §8.7): after a
   * checkpoint, records before it are dropped except the last `retainTxns`
   * commits (default 1000) within the last `retainBytes` bytes of log (default
   * 64 MiB). Records since the last checkpoint are always kept. `Infinity`
   * for both keeps every record (whole-history replay, a replica behind).
   * A drop copies what it keeps, so it waits until it drops at least that
   * much and at least `minDropBytes` (default 1 MiB).
   */
  log?: { retainTxns?: number; retainBytes?: number; minDropBytes?: number };
  /** Largest commit record payload, i.e. the largest transaction (default 64 MiB). */
  maxTxnBytes?: number;
  /**
   * For a new database: 0 (default) or 512 or 4096, the sector size the commit
   * log starts every append on. 0 assumes the device never damages bytes outside
   * a write (powersafe overwrite, SQLite's default). With 4096 an acknowledged
   * commit survives even a power cut that fills whole sectors of a later,
   * unsynced append with garbage, at the cost of up to 4 KiB of log per commit
   * (spec/file_format_v1.md §8.4). An existing database keeps its own.
   */
  sectorSize?: number;
  /** The file system to use; default the real one. The hardening suite passes a fault-injecting one (ts/io/faulty.ts). */
  fileSystem?: FileSystem;
  /**
   * Read pages through a read-only shared mapping of the data file instead of
   * copying each with pread (default true; spec/file_format_v1.md §9.3). Used
   * only with the native addon, on Linux and macOS, with the real file
   * system; NORTHSTAR_MMAP=0 turns it off for every handle. While the file is
   * mapped, nothing may truncate it: NorthstarDB never does, but another
   * program shrinking the file under an open handle kills the process (SIGBUS).
   */
  mmap?: boolean;
}

export interface BeginReadOptions {
  /** Snapshot of this commit (time travel); must be within the retained history. */
  txnId?: number;
}

export interface BeginWriteOptions {
  /**
   * While another thread or process holds the writer, wait up to this many
   * milliseconds for it (default 0: throw WriteBusy at once).
   */
  timeoutMs?: number;
}

/** How long an asynchronous wait (beginWriteAsync, write, openAsync) may take, and a signal that ends it. */
export interface WaitOptions {
  /** Milliseconds to wait at most (then WriteBusy); Infinity: no limit. Default 30 s. */
  timeoutMs?: number;
  /** Aborting it rejects the wait with Aborted (the signal's reason as the cause). */
  signal?: AbortSignal;
}

export interface CommitEvent {
  txnId: number;
  opCount: number;
  /** Log position of the commit's record. */
  position: number;
}

export interface DatabaseStats {
  implementation: Implementation;
  path: string;
  logPath: string;
  pageSize: number;
  sync: SyncMode;
  txnId: number;
  entries: number;
  depth: number;
  /** Pages the committed state spans (file high-water mark). */
  pageCount: number;
  fileSize: number;
  logSize: number;
  freePages: number;
  /** Pages freed by commits that live snapshots or retained history may still read. */
  pendingPages: number;
  freelistPages: number;
  maxKeySize: number;
  /** The last checkpoint: the commit the data file holds durably, and commits since. */
  checkpoint: { txnId: number; commitsSince: number; logBytesSince: number };
  /** Time travel: snapshots retained, the oldest, the `txns` limit and the `bytes` limit (spec §6.2). */
  history: { retained: number; oldestTxnId: number | null; limit: number; bytesLimit: number };
  /** The log: the first position and txn id it still holds (retention, spec §8.7), and the limits. */
  log: { start: number; firstTxnId: number | null; retainTxns: number; retainBytes: number };
  /**
   * Live snapshots: this handle's (`live`), and every other handle's on the
   * database, in any thread or process, from the lock file (`others`: one
   * entry per handle holding a snapshot). `oldestTxnId` is the oldest of all.
   */
  readers: { live: number; oldestTxnId: number | null; others: ReaderSlot[] };
  /** This handle has a live write transaction. */
  writer: boolean;
  /** beginWriteAsync / write calls of this handle waiting for the writer. */
  writerWaiters: number;
  /** Times this handle caught up with commits other handles published (spec/concurrency_v0.md §4.1): one per beginRead or write that found something new. */
  catchUps: number;
  /** How this handle coordinates with others: 'native' (shared memory, flock), 'file' (fallback) or 'memory' (custom file system). */
  coordination: 'native' | 'file' | 'memory';
  cache: {
    limitBytes: number;
    capacityPages: number;
    pages: number;
    hits: number;
    misses: number;
    evictions: number;
    /** Bytes of the search hints kept beside cached nodes (spec/file_format_v1.md §9.2). */
    hintBytes: number;
    /** Pages read ahead when catching up with other handles' commits (spec/concurrency_v0.md §4.1). */
    prefetched: number;
    /**
     * Whether pages are viewed in a read-only mapping of the file (open's
     * `mmap`, spec/file_format_v1.md §9.3), and how many page reads it
     * served; those are not counted in `io.reads`.
     */
    mapped: boolean;
    mappedReads: number;
  };
  io: IoStats;
  logIo: IoStats;
}

export const DEFAULT_CACHE_SIZE = 256 * 1024 * 1024;
export const DEFAULT_HISTORY_TXNS = 1000;
export const DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024;
export const DEFAULT_LOG_RETAIN_TXNS = 1000;
export const DEFAULT_LOG_RETAIN_BYTES = 64 * 1024 * 1024;
export const DEFAULT_LOG_MIN_DROP_BYTES = 1024 * 1024;
export const DEFAULT_CHECKPOINT_COMMITS = 1000;
export const DEFAULT_CHECKPOINT_LOG_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CHECKPOINT_FREED_BYTES = 64 * 1024 * 1024;
/** How long open() waits for the writer lock when it must recover or reset the lock file (openAsync's default timeoutMs). */
export const OPEN_LOCK_TIMEOUT_MS = 30_000;

/** Options after checkOptions: every default filled in. */
export interface Options {
  pageSize: number;
  sync: SyncMode;
  cacheSize: number;
  historyTxns: number;
  historyBytes: number;
  logRetainTxns: number;
  logRetainBytes: number;
  logMinDropBytes: number;
  checkpointCommits: number;
  checkpointLogBytes: number;
  checkpointFreedBytes: number;
  maxTxnBytes: number | undefined;
  sectorSize: number;
  fs: FileSystem;
  mmap: boolean;
}

/** Validates open()'s options (InvalidArgument) and fills in the defaults. */
export function checkOptions(options: OpenOptions): Options {
  if (options === null || typeof options !== 'object') throw new NorthstarError('InvalidArgument', 'options must be an object');
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!(PAGE_SIZES as readonly number[]).includes(pageSize)) {
    throw new NorthstarError('InvalidArgument', `pageSize must be one of ${PAGE_SIZES.join(', ')}`);
  }
  const sync = options.sync ?? 'full';
  if (sync !== 'full' && sync !== 'none') throw new NorthstarError('InvalidArgument', "sync must be 'full' or 'none'");
  const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
  if (typeof cacheSize !== 'number' || !Number.isFinite(cacheSize) || cacheSize <= 0) {
    throw new NorthstarError('InvalidArgument', 'cacheSize must be a positive number of bytes');
  }
  const count = (v: unknown, dflt: number, what: string, min: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new NorthstarError('InvalidArgument', `${what} must be an integer >= ${min}`);
    return v;
  };
  /** A non-negative integer or Infinity (no bound). */
  const limit = (v: unknown, dflt: number, what: string): number => (v === Infinity ? Infinity : count(v, dflt, what, 0));
  const historyTxns = count(options.history?.txns, DEFAULT_HISTORY_TXNS, 'history.txns', 0);
  const historyBytes = limit(options.history?.bytes, DEFAULT_HISTORY_BYTES, 'history.bytes');
  if (options.log !== undefined && (options.log === null || typeof options.log !== 'object')) throw new NorthstarError('InvalidArgument', 'log must be an object');
  const logRetainTxns = limit(options.log?.retainTxns, DEFAULT_LOG_RETAIN_TXNS, 'log.retainTxns');
  const logRetainBytes = limit(options.log?.retainBytes, DEFAULT_LOG_RETAIN_BYTES, 'log.retainBytes');
  const logMinDropBytes = count(options.log?.minDropBytes, DEFAULT_LOG_MIN_DROP_BYTES, 'log.minDropBytes', 0);
  const checkpointCommits = count(options.checkpoint?.commits, DEFAULT_CHECKPOINT_COMMITS, 'checkpoint.commits', 1);
  const checkpointLogBytes = count(options.checkpoint?.logBytes, DEFAULT_CHECKPOINT_LOG_BYTES, 'checkpoint.logBytes', 1);
  const checkpointFreedBytes = limit(options.checkpoint?.freedBytes, DEFAULT_CHECKPOINT_FREED_BYTES, 'checkpoint.freedBytes');
  const maxTxnBytes = options.maxTxnBytes === undefined ? undefined : count(options.maxTxnBytes, 0, 'maxTxnBytes', 1);
  const sectorSize = options.sectorSize ?? 0;
  if (!(LOG_SECTOR_SIZES as readonly number[]).includes(sectorSize)) {
    throw new NorthstarError('InvalidArgument', `sectorSize must be one of ${LOG_SECTOR_SIZES.join(', ')}`);
  }
  const fs = options.fileSystem ?? nodeFileSystem;
  const mmap = options.mmap ?? true;
  if (typeof mmap !== 'boolean') throw new NorthstarError('InvalidArgument', 'mmap must be a boolean');
  return { pageSize, sync, cacheSize, historyTxns, historyBytes, logRetainTxns, logRetainBytes, logMinDropBytes, checkpointCommits, checkpointLogBytes, checkpointFreedBytes, maxTxnBytes, sectorSize, fs, mmap };
}
