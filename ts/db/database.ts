// The public database handle (API contract: docs/api.md). A facade: it checks
// its arguments and hands each call to the engine (engine.ts) it holds in a
// private field, so nothing of the engine's state is reachable or assignable
// from outside; the protocols themselves live a file each beside this one.

import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { NorthstarError } from '../errors.js';
import { verifyDatabase } from '../btree/verify.js';
import type { VerifyReport } from '../btree/verify_report.js';
import type { CartridgeInfo } from '../cartridge/info.js';
import { LOG_HEADER_SIZE } from '../format/constants.js';
import type { LogCommit } from '../log/commit.js';
import { readLogRecords } from '../log/reader.js';
import { implementation } from '../native/kernels.js';
import type { ReadTxn } from '../txn/read.js';
import type { WriteTxn } from '../txn/write.js';
import { writeCheckpoint } from './checkpoint.js';
import { close } from './close.js';
import type { Engine } from './engine.js';
import { provideEngineAccess } from './internal.js';
import { refresh } from './follow.js';
import { databasePath, openEngine, WouldWait } from './open.js';
import { checkOptions, OPEN_LOCK_TIMEOUT_MS, type BeginReadOptions, type BeginWriteOptions, type CommitEvent, type DatabaseStats, type OpenOptions, type SyncMode, type WaitOptions } from './options.js';
import { beginRead, oldestReader } from './snapshots.js';
import { dropRetiredLog, logRetention, truncateLog } from './truncate.js';
import { beginWrite, beginWriteAsync, withWriterLock } from './writer.js';

/** The events a Database emits: 'commit' once per commit that becomes visible, here or from another handle. */
export interface DatabaseEvents {
  commit: [event: CommitEvent];
}

/** How long beginWriteAsync and write wait for the writer unless told otherwise. */
export const DEFAULT_WRITE_TIMEOUT_MS = 30_000;

export class Database extends EventEmitter<DatabaseEvents> implements Disposable {
  readonly #e: Engine;

  static {
    provideEngineAccess((db) => db.#e);
  }

  private constructor(e: Engine) {
    super();
    this.#e = e;
    e.events = this;
  }

  /**
   * Opens (creating if missing) the database at path and its log `<path>.log`.
   * Any number of handles, in any threads and processes, may open one file
   * (spec/concurrency_v0.md): the first one recovers after a crash, the others
   * adopt the state it published.
   *
   * Synchronous, for scripts: while another handle recovers or creates the
   * database it blocks the thread up to 30 s. Servers use openAsync.
   */
  static open(path: string, options: OpenOptions = {}): Database {
    const abs = databasePath(path);
    return new Database(openEngine(abs, checkOptions(options), OPEN_LOCK_TIMEOUT_MS));
  }

  /**
   * As open(), but never blocks the thread on a lock: while another handle
   * recovers or creates the database it waits asynchronously (up to
   * `timeoutMs`, default 30 s: then WriteBusy; `signal`: Aborted). Recovery
   * itself, when this handle is the one that recovers, runs synchronously.
   */
  static async openAsync(path: string, options: OpenOptions & WaitOptions = {}): Promise<Database> {
    const abs = databasePath(path);
    const opts = checkOptions(options);
    const { timeoutMs, signal } = checkWait(options, OPEN_LOCK_TIMEOUT_MS);
    const deadline = Date.now() + timeoutMs;
    for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
      if (signal?.aborted) throw new NorthstarError('Aborted', `${abs}: open was aborted`, { cause: signal.reason });
      try {
        return new Database(openEngine(abs, opts, 0));
      } catch (err) {
        if (!(err instanceof WouldWait)) throw err;
        if (Date.now() >= deadline) throw new NorthstarError('WriteBusy', `${err.message} for ${timeoutMs} ms`);
      }
      await sleep(Math.min(wait, Math.max(1, deadline - Date.now())));
    }
  }

  /** Absolute path of the data file. */
  get path(): string {
    return this.#e.path;
  }

  /** Absolute path of the commit log. */
  get logPath(): string {
    return this.#e.logPath;
  }

  get sync(): SyncMode {
    return this.#e.sync;
  }

  /** The largest key this database takes (it depends on the page size). */
  get maxKeySize(): number {
    return this.#e.maxKeySize;
  }

  /** The latest committed txn id readers see (in any thread or process). */
  get txnId(): number {
    const e = this.#e;
    if (!e.closed) refresh(e);
    return e.published.txnId;
  }

  /**
   * Snapshot of the latest commit acknowledged anywhere (any thread or
   * process), or of commit `txnId` within the retained history.
   */
  beginRead(options: BeginReadOptions = {}): ReadTxn {
    const e = this.#e;
    e.checkOpen();
    return beginRead(e, options);
  }

  /**
   * The write transaction. One at a time across every thread and process:
   * WriteBusy while another holds the writer, unless `timeoutMs` is given,
   * which waits up to that long for it, blocking the thread (synchronous, for
   * scripts: servers use beginWriteAsync or write).
   */
  beginWrite(options: BeginWriteOptions = {}): WriteTxn {
    const e = this.#e;
    e.checkOpen();
    e.checkWritable();
    if (options === null || typeof options !== 'object') throw new NorthstarError('InvalidArgument', 'options must be an object');
    const timeoutMs = options.timeoutMs ?? 0;
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || timeoutMs > 2 ** 31) {
      throw new NorthstarError('InvalidArgument', 'timeoutMs must be a number of milliseconds >= 0');
    }
    return beginWrite(e, timeoutMs);
  }

  /**
   * The write transaction, without blocking the thread: waits its turn for
   * the writer (calls on every handle, thread and process are served in the
   * order they were made), up to `timeoutMs` (default 30 s; Infinity: no
   * limit), then WriteBusy. `signal` aborts the wait (Aborted); closing the
   * handle rejects it (Closed).
   */
  beginWriteAsync(options: WaitOptions = {}): Promise<WriteTxn> {
    const e = this.#e;
    try {
      e.checkOpen();
      e.checkWritable();
      const { timeoutMs, signal } = checkWait(options, DEFAULT_WRITE_TIMEOUT_MS);
      return beginWriteAsync(e, timeoutMs, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Runs `fn` in a write transaction taken with beginWriteAsync and commits
   * it (commitAsync: group commit) when `fn` returns or its promise resolves;
   * aborts it when `fn` throws or rejects, and rethrows. Resolves to what `fn`
   * returned, once the commit is durable. `fn` may commit or abort the
   * transaction itself.
   */
  async write<T>(fn: (txn: WriteTxn) => T | Promise<T>, options: WaitOptions = {}): Promise<T> {
    if (typeof fn !== 'function') throw new NorthstarError('InvalidArgument', 'write(fn): fn must be a function');
    const txn = await this.beginWriteAsync(options);
    let result: T;
    try {
      result = await fn(txn);
    } catch (err) {
      txn.abort();
      throw err;
    }
    if (!txn.isClosed) await txn.commitAsync();
    return result;
  }

  /**
   * Makes the data file hold the latest commit durably (spec §8, checkpoint)
   * so recovery need not replay the log before it. Runs automatically every
   * `checkpoint.commits` commits or `checkpoint.logBytes` of log, and at close.
   */
  checkpoint(): void {
    const e = this.#e;
    e.checkOpen();
    e.checkWritable();
    if (e.writer) throw new NorthstarError('WriteBusy', 'checkpoint needs the writer slot; a write transaction is live');
    withWriterLock(e, () => {
      writeCheckpoint(e);
      dropRetiredLog(e);
    });
  }

  /**
   * Committed records from `fromTxnId` (default: the oldest in the log) in
   * commit order, with copies of their operations: the commit stream derived
   * indexes and replication read.
   */
  readLog(options: { fromTxnId?: number } = {}): IterableIterator<LogCommit> {
    const e = this.#e;
    e.checkOpen();
    refresh(e);
    return readLogRecords(e.log, e.pager.kernels, options.fromTxnId ?? 0, e.published.txnId, (t, first) => {
      throw new NorthstarError(
        'SnapshotNotFound',
        `commit ${t} is no longer in the log: it starts at commit ${first} (log retention, open's log option; truncateLog)`,
      );
    });
  }

  /**
   * Drops log records of commits before `beforeTxnId`, which must not be after
   * the last checkpoint. Time travel and replay before that point then fail
   * with SnapshotNotFound.
   */
  truncateLog(options: { beforeTxnId: number }): void {
    const e = this.#e;
    e.checkOpen();
    e.checkWritable();
    const before = options?.beforeTxnId;
    if (typeof before !== 'number' || !Number.isSafeInteger(before) || before < 0) {
      throw new NorthstarError('InvalidArgument', 'beforeTxnId must be a non-negative integer');
    }
    truncateLog(e, before);
  }

  /**
   * The cartridges served for this handle (openCartridge), each with its
   * file, state (valid, building, invalid and why), built-at txn, lag in
   * commits, entries, bytes, build time and last rebuild reason.
   */
  cartridges(): CartridgeInfo[] {
    return [...this.#e.cartridges].map((c) => c.info());
  }

  stats(): DatabaseStats {
    const e = this.#e;
    e.checkOpen();
    refresh(e);
    const c = e.pager.cache;
    const others = e.coord.otherReaders().slots;
    let oldest = oldestReader(e);
    for (const o of others) if (oldest === null || o.txnId < oldest) oldest = o.txnId;
    const s = e.published;
    return {
      implementation,
      path: e.path,
      logPath: e.logPath,
      pageSize: e.pager.pageSize,
      sync: e.sync,
      txnId: s.txnId,
      entries: s.entryCount,
      depth: s.depth ?? 0,
      pageCount: e.latest.pageCount,
      fileSize: e.file.size(),
      logSize: e.log.end - e.log.base + LOG_HEADER_SIZE,
      freePages: e.freeList.freeCount,
      pendingPages: e.freeList.pendingCount,
      freelistPages: e.freelistPages.length,
      maxKeySize: e.maxKeySize,
      checkpoint: { txnId: e.durable.txnId, commitsSince: e.commitsSinceCheckpoint, logBytesSince: e.latest.logEnd - e.durable.logTail },
      history: { retained: e.history.size, oldestTxnId: e.history.oldest, limit: e.opts.historyTxns, bytesLimit: e.opts.historyBytes },
      log: logRetention(e),
      readers: { live: e.liveReaders, oldestTxnId: oldest, others },
      writer: e.writer !== null,
      writerWaiters: e.writerWaiters.length,
      catchUps: e.catchUps,
      coordination: e.coord.kind,
      cache: {
        limitBytes: e.opts.cacheSize,
        capacityPages: c.capacity,
        pages: c.size,
        hits: c.hits,
        misses: c.misses,
        evictions: c.evictions,
        hintBytes: c.hintBytes,
        prefetched: e.prefetched,
        mapped: e.pager.map !== null,
        mappedReads: e.pager.map?.pages ?? 0,
      },
      io: { ...e.file.stats },
      logIo: { ...e.log.stats },
    };
  }

  /**
   * Walks the whole file and reports every problem found (spec §4.5). Checkpoints
   * first when it can (no live writer), so it checks the latest commit; else it
   * checks the last checkpoint. Synchronous, for scripts and tools: it reads
   * every page, and waits (blocking) up to 30 s for the writer.
   */
  verify(): VerifyReport {
    const e = this.#e;
    e.checkOpen();
    if (e.writer !== null || e.poisoned !== null) return verifyDatabase(e.pager, e.durable);
    // Under the writer lock: no other handle checkpoints (and reuses pages) while we walk.
    return withWriterLock(
      e,
      () => {
        writeCheckpoint(e);
        return verifyDatabase(e.pager, e.durable);
      },
      OPEN_LOCK_TIMEOUT_MS,
    );
  }

  /** Checkpoints, aborts a live writer, rejects waits for the writer, ends every reader and closes both files. */
  close(): void {
    close(this.#e);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function checkWait(options: WaitOptions, defaultTimeoutMs: number): { timeoutMs: number; signal: AbortSignal | undefined } {
  if (options === null || typeof options !== 'object') throw new NorthstarError('InvalidArgument', 'options must be an object');
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw new NorthstarError('InvalidArgument', 'timeoutMs must be a number of milliseconds >= 0 (Infinity: no limit)');
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new NorthstarError('InvalidArgument', 'signal must be an AbortSignal');
  return { timeoutMs, signal };
}

/** Opens (creating if missing) the database at path: Database.open. */
export function open(path: string, options?: OpenOptions): Database {
  return Database.open(path, options);
}

/** Opens (creating if missing) the database at path without blocking the thread: Database.openAsync. */
export function openAsync(path: string, options?: OpenOptions & WaitOptions): Promise<Database> {
  return Database.openAsync(path, options);
}
