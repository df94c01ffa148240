// The database handle: opens the data file and its commit log, recovers, owns
// the pager, the free list, retained history and the snapshot registry, and
// hands out transactions (API contract: README "API").

import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import * as nodePath from 'node:path';
import { ErrorCode, NorthstarError } from './errors.js';
import { readU32 } from './format/bytes.js';
import { DEFAULT_PAGE_SIZE, FIRST_DATA_PAGE, HEADER_SIZE, META_PAGE_A, META_PAGE_B, PAGE_SIZES, PageType } from './format/constants.js';
import { FREELIST_ENTRIES_OFFSET, FREELIST_ENTRY_SIZE, HISTORY_ENTRIES_OFFSET, HISTORY_ENTRY_SIZE } from './format/constants.js';
import { initPageHeader, maxKeySize, pageTxnId, pageTypeOf, writePageTxnId } from './format/page.js';
import { nodeFileSystem, type DbFile, type FileSystem, type IoStats } from './io/file.js';
import { failpoint } from './io/failpoint.js';
import { LogFile, LOG_HEADER_SIZE, LOG_SECTOR_SIZES, type ScanEnd, type ScannedRecord } from './log/file.js';
import { RecordBuilder } from './log/record.js';
import { COMMIT_OP_COUNT_OFFSET, RECORD_HEADER_SIZE, RECORD_TYPE_OFFSET, RecordType, TRAILER_LENGTH_OFFSET, TRAILER_SIZE } from './log/constants.js';
import { implementation, kernels, type Implementation, type Kernels } from './native/kernels.js';
import { FreeList, freelistCapacity, readFreelistPage, writeFreelistPage } from './pager/freelist.js';
import { History, historyCapacity, readHistoryPage, writeHistoryPage, type Snapshot } from './pager/history.js';
import { chooseMeta, emptyMeta, encodeMeta, type Meta } from './pager/meta.js';
import { Pager } from './pager/pager.js';
import { mappingFor } from './pager/map.js';
import type { PageSource } from './btree/read.js';
import { verifyDatabase, type VerifyReport } from './btree/verify.js';
import { ReadTxn, type ReadHost } from './txn/read.js';
import { WriteTxn, type CommitResult, type TreeState, type WriteHost } from './txn/write.js';
import { readLogRecords, type LogCommit } from './log/reader.js';
import { readPagesSection, type PagesSection } from './log/record.js';
import { COMMIT_ROOT_OFFSET } from './log/constants.js';
import { readU64 } from './format/bytes.js';
import { Coordinator, type PublishedState, type ReaderSlot } from './shared/coordinator.js';
import { DirLock } from './shared/dirlock.js';

export type SyncMode = 'full' | 'none';

export interface OpenOptions {
  /** Page size for a new file: 4096, 8192, 16384 (default) or 32768. An existing file keeps its own. */
  pageSize?: number;
  /** 'full' (default): each commit is durable when commit() returns (one fdatasync of the log). 'none': no fdatasync (tests, bulk loads). */
  sync?: SyncMode;
  /** Bytes of page data the page cache holds at most (default 256 MiB; never fewer than 16 pages). */
  cacheSize?: number;
  /** Time travel: how many of the latest commits stay readable with beginRead({ txnId }) (default 1000). */
  history?: { txns?: number };
  /** Automatic checkpoints: after this many commits or this many log bytes since the last one. */
  checkpoint?: { commits?: number; logBytes?: number };
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
  history: { retained: number; oldestTxnId: number | null; limit: number };
  /**
   * Live snapshots: this handle's (`live`), and every other handle's on the
   * database, in any thread or process, from the lock file (`others`: one
   * entry per handle holding a snapshot). `oldestTxnId` is the oldest of all.
   */
  readers: { live: number; oldestTxnId: number | null; others: ReaderSlot[] };
  /** This handle has a live write transaction. */
  writer: boolean;
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
export const DEFAULT_CHECKPOINT_COMMITS = 1000;
export const DEFAULT_CHECKPOINT_LOG_BYTES = 64 * 1024 * 1024;

/** How long open() waits for the writer lock when it must recover or reset the lock file. */
export const OPEN_LOCK_TIMEOUT_MS = 30_000;

/**
 * How long a reader waits for W_SEQ to turn even before it tries to repair the
 * block itself (§2.2). A live publisher holds the writer lock, so a reader that
 * gives up early only fails to take it and waits again.
 */
const TORN_PUBLISH_PATIENCE_MS = 10;
/** The most pages one catch-up reads ahead (§4.1). */
const PREFETCH_MAX_PAGES = 256;

interface Options {
  pageSize: number;
  sync: SyncMode;
  cacheSize: number;
  historyTxns: number;
  checkpointCommits: number;
  checkpointLogBytes: number;
  maxTxnBytes: number | undefined;
  sectorSize: number;
  fs: FileSystem;
  mmap: boolean;
}

/** A commit in the log whose sync has not completed yet (commitAsync). */
interface Unsynced {
  result: CommitResult;
}

export class Database extends EventEmitter implements WriteHost, ReadHost, Disposable {
  readonly path: string;
  readonly logPath: string;
  readonly sync: SyncMode;
  readonly pager: Pager;
  readonly maxKeySize: number;
  readonly source: PageSource;
  log: LogFile;
  readonly recordBuilder: RecordBuilder;
  freeList: FreeList;
  /** Latest commit in the log: the base of the next write transaction. */
  latest: TreeState;
  /** Latest commit readers see: durable (or sync 'none'). */
  private published: TreeState;
  /** The meta the data file holds durably (last checkpoint) and its slot. */
  private durable: Meta;
  private durableSlot: number;
  private freelistPages: number[];
  private historyPages: number[];
  private history: History;
  private readonly file: DbFile;
  private readonly opts: Options;
  private readonly readers = new Map<number, number>();
  private liveReaders = 0;
  private writer: WriteTxn | null = null;
  private closed = false;
  private poisoned: NorthstarError | null = null;
  private commitsSinceCheckpoint = 0;
  private unsynced: Unsynced[] = [];
  private syncing: Promise<void> | null = null;
  private syncWaiters: Array<{ position: number; resolve: () => void; reject: (e: unknown) => void }> = [];
  private syncedEnd: number;
  /** This handle's slot and view of the lock file (spec/concurrency_v0.md). */
  private readonly coord: Coordinator;
  /** The log file generation this handle has open (bumped when truncateLog replaces the file). */
  private logGeneration = 0;
  /** W_META_WRITES when this handle last read the metas or wrote one (concurrency §2.4); -1: never. */
  private metaWritesSeen = -1;
  /** Pages read ahead by catch-ups (stats().cache.prefetched). */
  private prefetched = 0;
  /** Catch-ups done (stats().catchUps). */
  private catchUps = 0;
  /** recover() is replaying: its commits keep the writer lock (concurrency §3.1), else another opener would recover too. */
  private recovering = false;

  private constructor(path: string, file: DbFile, log: LogFile, meta: Meta, slot: number, opts: Options, k: Kernels, coord: Coordinator) {
    super();
    this.path = path;
    this.logPath = log.path;
    this.file = file;
    this.log = log;
    this.coord = coord;
    this.opts = opts;
    this.sync = opts.sync;
    this.pager = new Pager(file, meta.pageSize, k, opts.cacheSize, opts.mmap ? mappingFor(file) : null);
    this.maxKeySize = maxKeySize(meta.pageSize);
    this.recordBuilder = new RecordBuilder(opts.maxTxnBytes === undefined ? {} : { maxPayload: opts.maxTxnBytes });
    const pager = this.pager;
    this.source = {
      kernels: k,
      pageSize: meta.pageSize,
      path,
      page: (id) => pager.read(id),
      searchLeaf: (leaf, key) => pager.searchLeaf(leaf, key),
      searchBranch: (branch, key) => pager.searchBranch(branch, key),
      wordsOf: (leaf) => pager.wordsOf(leaf),
      node: (id, txn) => pager.readNode(id, txn),
      nodeType: () => pager.nodeType,
      overflowPage: (id) => pager.readUncached(id),
    };
    this.durable = meta;
    this.durableSlot = slot;
    this.history = new History(opts.historyTxns);
    this.historyPages = loadHistory(pager, meta, this.history);
    const floor = Math.min(meta.txnId, this.history.oldest ?? meta.txnId);
    const { list, chain } = loadFreeList(pager, meta, floor);
    this.freeList = list;
    this.freelistPages = chain;
    this.latest = {
      txnId: meta.txnId,
      root: meta.root,
      depth: meta.depth,
      entryCount: meta.entryCount,
      pageCount: meta.pageCount,
      recordPosition: lastRecordBefore(log, meta.logTail),
      logEnd: meta.logTail,
    };
    this.published = this.latest;
    this.syncedEnd = meta.logTail;
    if (this.history.get(meta.txnId) === undefined) this.history.add(snapshotOf(this.latest));
  }

  /**
   * Opens (creating if missing) the database at path and its log `<path>.log`.
   * Any number of handles, in any threads and processes, may open one file
   * (spec/concurrency_v0.md): the first one recovers after a crash, the others
   * adopt the state it published.
   */
  static open(path: string, options: OpenOptions = {}): Database {
    if (typeof path !== 'string' || path.length === 0) throw new NorthstarError('InvalidArgument', 'path must be a non-empty string');
    const opts = checkOptions(options);
    const abs = nodePath.resolve(path);
    const logPath = `${abs}.log`;
    const files = opts.fs;
    if (!files.exists(abs)) create(abs, logPath, opts);
    const file = files.open(abs);
    let log: LogFile | null = null;
    let coord: Coordinator | null = null;
    try {
      const { meta, slot } = chooseMeta(file, kernels);
      if (!files.exists(logPath)) {
        throw new NorthstarError('Corrupt', `${logPath}: the commit log is missing`, { path: logPath });
      }
      log = LogFile.open(logPath, meta.dbId, kernels, files);
      if (meta.logTail < log.base || meta.logTail > log.end) {
        throw new NorthstarError('Corrupt', `${logPath}: the last checkpoint covers the log up to ${meta.logTail}, the log spans ${log.base}..${log.end}`, {
          path: logPath,
        });
      }
      coord = Coordinator.open(abs, files === nodeFileSystem ? null : files, meta.dbId, OPEN_LOCK_TIMEOUT_MS);
      const db = new Database(abs, file, log, meta, slot, opts, kernels, coord);
      try {
        db.start();
      } catch (err) {
        db.closeFiles();
        throw err;
      }
      return db;
    } catch (err) {
      if (coord === null || !coord.isClosed) {
        // Not yet handed to a Database whose closeFiles() closed everything.
        coord?.close();
        log?.close();
        file.close();
      }
      throw err;
    }
  }

  /**
   * The open protocol (spec/concurrency_v0.md §3.1): a handle that finds
   * another ready handle adopts the published state; the first one takes the
   * writer lock and recovers from the durable meta and the log.
   */
  private start(): void {
    const coord = this.coord;
    if (coord.othersReady()) {
      this.adopt();
      coord.markReady();
      return;
    }
    if (!coord.lockWriter(OPEN_LOCK_TIMEOUT_MS)) {
      throw new NorthstarError('WriteBusy', `${this.path}: open waited ${OPEN_LOCK_TIMEOUT_MS} ms for the writer lock`);
    }
    try {
      if (coord.othersReady()) this.adopt();
      else {
        // Alone: whatever the lock file says is from handles that are gone. Start from the files,
        // as a new generation: a handle that adopted the gone handles' state meanwhile sees it
        // and reloads instead of keeping their roots and cached pages (concurrency §3.1).
        this.logGeneration = coord.publishedGeneration() + 1;
        this.reloadDurable();
        this.recovering = true;
        try {
          this.recover();
        } finally {
          this.recovering = false;
        }
        this.publishShared();
      }
      // Ready before the lock goes: an opener waiting for it then adopts what we published.
      coord.markReady();
    } finally {
      this.releaseWriterLock();
    }
  }

  /** The latest committed txn id readers see (in any thread or process). */
  get txnId(): number {
    if (!this.closed) this.refresh();
    return this.published.txnId;
  }

  /**
   * Snapshot of the latest commit acknowledged anywhere (any thread or
   * process), or of commit `txnId` within the retained history.
   */
  beginRead(options: BeginReadOptions = {}): ReadTxn {
    this.checkOpen();
    for (;;) {
      this.refresh();
      let snap: Snapshot = this.published;
      if (options.txnId !== undefined && options.txnId !== snap.txnId) {
        const h = typeof options.txnId === 'number' && options.txnId < snap.txnId ? this.history.get(options.txnId) : undefined;
        if (h === undefined) {
          throw new NorthstarError('SnapshotNotFound', `snapshot ${String(options.txnId)} is not retained (retained: ${this.history.oldest ?? snap.txnId}..${snap.txnId})`);
        }
        snap = h;
      }
      this.readers.set(snap.txnId, (this.readers.get(snap.txnId) ?? 0) + 1);
      if (this.oldestCache === null || (this.oldestCache !== undefined && snap.txnId < this.oldestCache)) this.oldestCache = snap.txnId;
      this.liveReaders++;
      // A new oldest snapshot goes into our slot; then the writer's floor is read again, so
      // either the writer saw the slot or we see that it moved past the snapshot (concurrency §4.2).
      if (this.showReaders() && snap.txnId < this.coord.historyFloor() && !this.coord.writerLocked) {
        this.releaseSnapshot(snap.txnId);
        if (options.txnId !== undefined) throw new NorthstarError('SnapshotNotFound', `snapshot ${snap.txnId} is no longer retained by the writer`);
        continue;
      }
      return new ReadTxn(this, snap.txnId, snap.root);
    }
  }

  /**
   * The write transaction. One at a time across every thread and process:
   * WriteBusy while another holds the writer, unless `timeoutMs` is given,
   * which waits up to that long for it.
   */
  beginWrite(options: BeginWriteOptions = {}): WriteTxn {
    this.checkOpen();
    this.checkWritable();
    if (options === null || typeof options !== 'object') throw new NorthstarError('InvalidArgument', 'options must be an object');
    const timeoutMs = options.timeoutMs ?? 0;
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || timeoutMs > 2 ** 31) {
      throw new NorthstarError('InvalidArgument', 'timeoutMs must be a number of milliseconds >= 0');
    }
    if (this.writer) throw new NorthstarError('WriteBusy', 'another write transaction is live on this handle');
    this.lockWriter(timeoutMs);
    this.releasePages();
    const w = new WriteTxn(this);
    this.writer = w;
    return w;
  }

  /**
   * Makes the data file hold the latest commit durably (spec §8, checkpoint)
   * so recovery need not replay the log before it. Runs automatically every
   * `checkpoint.commits` commits or `checkpoint.logBytes` of log, and at close.
   */
  checkpoint(): void {
    this.checkOpen();
    this.checkWritable();
    if (this.writer) throw new NorthstarError('WriteBusy', 'checkpoint needs the writer slot; a write transaction is live');
    this.withWriterLock(() => this.writeCheckpoint());
  }

  /**
   * Committed records from `fromTxnId` (default: the oldest in the log) in
   * commit order, with copies of their operations: the commit stream derived
   * indexes and replication read.
   */
  readLog(options: { fromTxnId?: number } = {}): IterableIterator<LogCommit> {
    this.checkOpen();
    this.refresh();
    return readLogRecords(this.log, this.pager.kernels, options.fromTxnId ?? 0, this.published.txnId, (t) => {
      throw new NorthstarError('SnapshotNotFound', `commit ${t} is no longer in the log`);
    });
  }

  /**
   * Drops log records of commits before `beforeTxnId`, which must not be after
   * the last checkpoint. Time travel and replay before that point then fail
   * with SnapshotNotFound.
   */
  truncateLog(options: { beforeTxnId: number }): void {
    this.checkOpen();
    this.checkWritable();
    const before = options?.beforeTxnId;
    if (typeof before !== 'number' || !Number.isSafeInteger(before) || before < 0) {
      throw new NorthstarError('InvalidArgument', 'beforeTxnId must be a non-negative integer');
    }
    this.withWriterLock(() => {
      if (before > this.durable.txnId + 1) {
        throw new NorthstarError('InvalidArgument', `can only truncate up to the last checkpoint (txn ${this.durable.txnId}); call checkpoint() first`);
      }
      let cut = this.log.end;
      for (const r of scanLog(this.log)) {
        if (r.txnId >= before) {
          cut = r.position;
          break;
        }
      }
      if (cut > this.durable.logTail) cut = this.durable.logTail;
      if (cut > this.log.base) {
        // The writer of record first: should this handle die once the file is replaced, the
        // next writer reopens the log rather than append to the old file (concurrency §5).
        this.publishShared();
        this.log.dropBefore(cut);
        // Other handles still have the replaced file open: they reopen it when they see this.
        this.logGeneration++;
      }
      this.history.dropBefore(before);
      // The durable history chain still lists the dropped snapshots: rewrite it now.
      this.writeCheckpoint(true);
    });
  }

  stats(): DatabaseStats {
    this.checkOpen();
    this.refresh();
    const c = this.pager.cache;
    const others = this.coord.otherReaders().slots;
    let oldestReader = this.oldestReader();
    for (const o of others) if (oldestReader === null || o.txnId < oldestReader) oldestReader = o.txnId;
    const s = this.published;
    return {
      implementation,
      path: this.path,
      logPath: this.logPath,
      pageSize: this.pager.pageSize,
      sync: this.sync,
      txnId: s.txnId,
      entries: s.entryCount,
      depth: (s as TreeState).depth ?? 0,
      pageCount: this.latest.pageCount,
      fileSize: this.file.size(),
      logSize: this.log.end - this.log.base + LOG_HEADER_SIZE,
      freePages: this.freeList.freeCount,
      pendingPages: this.freeList.pendingCount,
      freelistPages: this.freelistPages.length,
      maxKeySize: this.maxKeySize,
      checkpoint: { txnId: this.durable.txnId, commitsSince: this.commitsSinceCheckpoint, logBytesSince: this.latest.logEnd - this.durable.logTail },
      history: { retained: this.history.size, oldestTxnId: this.history.oldest, limit: this.opts.historyTxns },
      readers: { live: this.liveReaders, oldestTxnId: oldestReader, others },
      writer: this.writer !== null,
      catchUps: this.catchUps,
      coordination: this.coord.kind,
      cache: { limitBytes: this.opts.cacheSize, capacityPages: c.capacity, pages: c.size, hits: c.hits, misses: c.misses, evictions: c.evictions, hintBytes: c.hintBytes, prefetched: this.prefetched, mapped: this.pager.map !== null, mappedReads: this.pager.map?.pages ?? 0 },
      io: { ...this.file.stats },
      logIo: { ...this.log.stats },
    };
  }

  /**
   * Walks the whole file and reports every problem found (spec §4.5). Checkpoints
   * first when it can (no live writer), so it checks the latest commit; else it
   * checks the last checkpoint.
   */
  verify(): VerifyReport {
    this.checkOpen();
    if (this.writer !== null || this.poisoned !== null) return verifyDatabase(this.pager, this.durable);
    // Under the writer lock: no other handle checkpoints (and reuses pages) while we walk.
    return this.withWriterLock(() => {
      this.writeCheckpoint();
      return verifyDatabase(this.pager, this.durable);
    }, OPEN_LOCK_TIMEOUT_MS);
  }

  /** Checkpoints, aborts a live writer, ends every reader and closes both files. */
  close(): void {
    if (this.closed) return;
    this.writer?.abort();
    let err: unknown = null;
    if (!this.poisoned) {
      try {
        // Skipped when another handle holds the writer: the data file is theirs to checkpoint.
        const had = this.coord.writerLocked;
        if (had || this.coord.lockWriter(0)) {
          if (!had) this.takeOver();
          this.writeCheckpoint();
          // A closed database's log ends at its last record (tools read it whole).
          this.log.trimPreallocated();
        }
      } catch (e) {
        err = e;
      }
    }
    this.closeFiles();
    if (err) throw err;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- hooks for the transactions (WriteHost, ReadHost) ------------------------

  checkOpen(): void {
    if (this.closed) throw new NorthstarError(ErrorCode.Closed, 'database is closed');
  }

  releaseSnapshot(txnId: number): void {
    const n = this.readers.get(txnId) ?? 0;
    if (n <= 1) {
      this.readers.delete(txnId);
      if (this.oldestCache === txnId) this.oldestCache = undefined;
      // Raising the slot only lets the writer reuse pages sooner, so it can wait until the
      // current task is done: a loop of beginRead/close then writes the slot once, not twice
      // per read (concurrency §4.2).
      queueRaise(this);
    } else this.readers.set(txnId, n - 1);
    this.liveReaders--;
  }

  /** Brings the slot up to this handle's oldest snapshot (queueRaise's microtask). */
  raiseSlot(): void {
    if (!this.closed) this.showReaders();
  }

  committed(result: CommitResult, durable: boolean): void {
    const s = result.state;
    this.latest = s;
    // The written pages replace their ids' cache entries; their buffers are nobody's now
    // (the transaction is over), so with a mapping they are recycled (spec §9.3).
    for (const [id, page] of result.dirty) this.pager.cacheWritten(id, page);
    this.freeList.giveBack(result.reusable);
    this.freeList.addPending(s.txnId, result.freed, true);
    this.freeList.addPending(s.txnId, result.freedYoung, false);
    this.commitsSinceCheckpoint++;
    if (durable) {
      this.syncedEnd = s.logEnd;
      this.publishUpTo(s, result);
    } else {
      this.unsynced.push({ result });
    }
  }

  syncLogUpTo(position: number): Promise<void> {
    // Already durable (a checkpoint synced the log) resolves at once only when no earlier
    // commit still waits: promises resolve in commit order.
    if (position <= this.syncedEnd && this.syncWaiters.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.syncWaiters.push({ position, resolve, reject });
      if (this.syncing === null) this.startSync();
    });
  }

  writerDone(): void {
    this.writer = null;
    if (!this.closed && !this.poisoned && this.checkpointDue()) {
      try {
        this.writeCheckpoint();
      } catch (err) {
        // The commit itself is durable in the log; a failed checkpoint only
        // delays the data file. Refuse writes until reopen recovers.
        this.poison(err instanceof NorthstarError ? err : new NorthstarError('IoError', String(err), { cause: err }));
      }
    }
    this.releaseWriterLock();
  }

  poison(err: NorthstarError): void {
    this.poisoned ??= err;
  }

  // ---- internals ---------------------------------------------------------------------

  private checkWritable(): void {
    if (this.poisoned) throw new NorthstarError('IoError', `writes refused until reopen: ${this.poisoned.message}`, { cause: this.poisoned });
  }

  /** The oldest snapshot this handle's readers hold; cached, recomputed after that snapshot's last reader closes. */
  private oldestReader(): number | null {
    if (this.oldestCache !== undefined) return this.oldestCache;
    let oldest: number | null = null;
    for (const t of this.readers.keys()) if (oldest === null || t < oldest) oldest = t;
    this.oldestCache = oldest;
    return oldest;
  }

  /** oldestReader(), or undefined when it must be recomputed. */
  private oldestCache: number | null | undefined = null;

  get logDurableEnd(): number {
    return this.sync === 'none' ? -1 : this.syncedEnd;
  }

  get checkpointTxnId(): number {
    return this.durable.txnId;
  }

  /** Frees every pending page no snapshot, retained history or durable meta can reach (spec §6.1). */
  private releasePages(): void {
    this.freeList.release(this.readerFloor(), this.durable.txnId);
  }

  /**
   * Pages freed by commit F are reused only once F is at or below this: every
   * live reader, the published snapshot and retained history can no longer
   * reach them.
   */
  private readerFloor(): number {
    let floor = this.historyFloor();
    // Published before the slots are read: a reader that registers after our scan sees it (concurrency §4.3).
    this.coord.setHistoryFloor(floor);
    const r = this.oldestReader();
    if (r !== null && r < floor) floor = r;
    const o = this.coord.otherReaders().oldest;
    if (o !== null && o < floor) floor = o;
    return floor;
  }

  /** The oldest commit whose pages this writer keeps for time travel: its history window. */
  private historyFloor(): number {
    const h = this.history.oldest;
    return h !== null && h < this.published.txnId ? h : this.published.txnId;
  }

  /** Puts this handle's oldest live snapshot in its slot; true when that lowered it (a re-check is due). */
  private showReaders(): boolean {
    const oldest = this.oldestReader() ?? 0;
    const before = this.coord.readerTxn;
    this.coord.setReaderTxn(oldest);
    return oldest !== 0 && (before === 0 || oldest < before);
  }

  // ---- coordination with other handles (spec/concurrency_v0.md) ----------------------

  /** Publishes the latest visible commit to the lock file; only the writer-lock holder calls this (§2.2). */
  private publishShared(): void {
    const s = this.published as TreeState;
    this.coord.publish({
      txnId: s.txnId,
      root: s.root,
      depth: s.depth ?? 0,
      entryCount: s.entryCount,
      pageCount: s.pageCount ?? this.latest.pageCount,
      logEnd: s.logEnd ?? this.latest.logEnd,
      recordPosition: s.recordPosition ?? this.latest.recordPosition,
      logGeneration: this.logGeneration,
      historyFloor: this.historyFloor(),
      checkpointTxn: this.durable.txnId,
      writer: this.coord.owner,
    });
  }

  /** Follows commits published by other handles: the fast path is one load (§4.1). */
  private refresh(): void {
    if (this.coord.publishedTxn() === this.published.txnId) return;
    this.catchUp(this.readPublished());
  }

  /**
   * The published block (§2.2). One that a publisher left half-written when it
   * died (W_SEQ odd for good) is rebuilt from the files under the writer lock
   * and published again: by this handle if it holds the lock or gets it, else by
   * the handle holding it, which meets the odd W_SEQ when it takes over.
   */
  private readPublished(): PublishedState {
    for (;;) {
      const p = this.coord.readPublished(TORN_PUBLISH_PATIENCE_MS);
      if (p !== null) return p;
      const had = this.coord.writerLocked;
      if (had || this.coord.lockWriter(0)) {
        try {
          this.takeOver(this.publishedFromLog());
          this.publishShared();
        } finally {
          if (!had) this.releaseWriterLock();
        }
      }
    }
  }

  /**
   * The latest commit as the files show it, for when the published block is
   * unusable: the durable meta, then every complete commit record after it (a
   * dead writer's unpublished ones too, as recovery would take them). Only
   * under the writer lock. `writer` 0: no handle's free pages are current.
   */
  private publishedFromLog(): PublishedState {
    this.reloadDurable();
    let s = this.latest;
    const it = commitsWithPages(this.log, this.durable.logTail);
    let step = it.next();
    for (; !step.done; step = it.next()) {
      const { rec, pages, root } = step.value;
      s = { txnId: rec.txnId, root, depth: pages.depth, entryCount: pages.entryCount, pageCount: Math.max(s.pageCount, pages.pageCount), recordPosition: rec.position, logEnd: rec.position + rec.length };
    }
    if (step.value.kind === 'damaged') {
      throw new NorthstarError('Corrupt', `${this.log.path}: damaged commit record at position ${step.value.position} (${step.value.status}) followed by valid records`, { path: this.log.path });
    }
    // A new generation: every handle reopens the log, whatever the half-written block said.
    return { ...s, logGeneration: this.logGeneration + 1, historyFloor: s.txnId, checkpointTxn: this.durable.txnId, writer: 0 };
  }

  /**
   * Learns commits other handles published up to `p` from their log records:
   * evicts the pages they rewrote from the cache, adds them to the history
   * and makes `p` the latest (§4.1).
   */
  private catchUp(p: PublishedState): void {
    if (p.txnId <= this.published.txnId && p.logGeneration === this.logGeneration) return;
    this.catchUps++;
    if (p.logGeneration !== this.logGeneration) {
      // The log was replaced (truncateLog) or a recovery rebuilt the trees (a new run, its
      // own roots and page reuse): start again from the durable meta, cache and history too.
      this.reloadDurable();
      this.logGeneration = p.logGeneration;
    }
    let from = this.catchUpStart(p);
    if (from === null) return;
    const cache = this.pager.cache;
    // Pages the commits wrote that are still live after them, and how many cached pages they made unreachable.
    const fresh = new Set<number>();
    let replaced = 0;
    // Highest txn applied by this catch-up (a second pass over a reopened log skips those).
    let applied = this.published.txnId;
    let it = this.log.scan(from);
    let ended: ScanEnd;
    for (let reopened = false; ; ) {
      const step = it.next();
      if (step.done) {
        ended = step.value;
        if (ended.kind === 'end' || reopened) break;
        // The log ends before what was published: the file was replaced by a truncateLog whose
        // handle died before it published the new generation (positions are the same in the new
        // file), so read the one the path names now. Found here, not by asking the file's size
        // first: that would read the log's change time on every catch-up, which makes the
        // writer's next fdatasync write the log's inode too (spec/file_format_v1.md §8.5).
        reopened = true;
        this.reopenLog(this.logGeneration);
        const before = this.published;
        from = this.catchUpStart(p);
        if (from === null) return;
        if (this.published !== before) applied = this.published.txnId; // reloaded: apply all again
        it = this.log.scan(from);
        continue;
      }
      const rec = step.value;
      if (!isCommitRecord(rec.bytes)) continue;
      if (rec.txnId <= applied) continue;
      applied = rec.txnId;
      const root = readU64(rec.bytes, RECORD_HEADER_SIZE + COMMIT_ROOT_OFFSET);
      const pages = readPagesSection(rec.bytes);
      if (pages === null) {
        cache.clear();
        fresh.clear();
      } else {
        for (const id of pages.written) {
          cache.delete(id);
          fresh.add(id);
        }
        // A page freed here was either written by an earlier commit of this catch-up (no
        // longer worth reading ahead) or was cached (its replacement is worth it).
        for (const id of pages.freed) if (!fresh.delete(id) && cache.has(id)) replaced++;
        for (const id of pages.freedYoung) if (!fresh.delete(id) && cache.has(id)) replaced++;
      }
      this.history.add({ txnId: rec.txnId, root, entryCount: pages?.entryCount ?? 0 });
      if (this.listenerCount('commit') > 0) {
        const opCount = readU32(rec.bytes, RECORD_HEADER_SIZE + COMMIT_OP_COUNT_OFFSET);
        this.emit('commit', { txnId: rec.txnId, opCount, position: rec.position } satisfies CommitEvent);
      }
    }
    if (ended.kind !== 'end') {
      throw new NorthstarError('Corrupt', `${this.log.path}: published commit record at ${ended.position} is damaged (${ended.status})`, { path: this.log.path });
    }
    const state = treeStateOf(p);
    this.latest = state;
    this.published = state;
    this.syncedEnd = Math.max(this.syncedEnd, p.logEnd);
    this.history.add(snapshotOf(state));
    if (replaced > 0) this.prefetch(fresh, Math.min(replaced, PREFETCH_MAX_PAGES));
  }

  /**
   * Where catchUp(p) reads the log from: this handle's published end, or,
   * when the log no longer holds it (truncated), the durable meta's after
   * reloading from it; null when the durable meta is past the published block
   * (its publisher died between a checkpoint and its publish): then the
   * durable state is kept, and the next writer republishes from the files
   * (takeOver). Sets the log's end to the published one.
   */
  private catchUpStart(p: PublishedState): number | null {
    let from = this.published.logEnd;
    if (from < this.log.base || from > p.logEnd) {
      this.reloadDurable();
      from = this.published.logEnd;
    }
    if (from > p.logEnd) return null;
    this.log.end = p.logEnd;
    return from;
  }

  /**
   * Reads up to `limit` of the tree pages `ids` into the cache (§4.1): the new
   * versions of pages this handle had cached, read here, once per catch-up,
   * instead of by the gets that would meet them one by one. Speculative: a
   * page that fails to read is skipped (a get that needs it reads it and
   * throws), an overflow page is not kept.
   */
  private prefetch(ids: Set<number>, limit: number): void {
    const cache = this.pager.cache;
    let n = 0;
    for (const id of ids) {
      if (n === limit) break;
      if (cache.has(id)) continue;
      n++;
      try {
        this.pager.readAhead(id);
      } catch {
        // Left for the read that needs it, which names the problem.
      }
    }
    this.prefetched += n;
  }

  /** At open, with another handle live: take the state it published (§3.1). */
  private adopt(): void {
    // The meta read at open may be older than a recovery that ran since: the records it
    // replayed carry the crashed run's roots, not those of the replayed trees, and only the
    // meta the recovery wrote (its history chain) has the right ones.
    this.reloadDurable();
    this.catchUp(this.readPublished());
  }

  /**
   * Makes this handle the writer's state (§5): catches up, and when another
   * handle wrote or checkpointed since this one last did, rebuilds the free
   * pages from the durable meta and the pages sections of the records after
   * it. Cuts off a tail a dead writer left past the published end.
   */
  private takeOver(p: PublishedState = this.readPublished()): void {
    // A durable meta past the published block: its publisher died after a checkpoint (its
    // own, or a recovery's) and before it published. The files are the truth. Only a meta
    // write can make it so: with none since this handle last looked (W_META_WRITES, §2.4),
    // the metas are not read (about 35 µs of a 4-put commit's 240).
    const writes = this.coord.metaWrites();
    const stale = writes !== this.metaWritesSeen && chooseMeta(this.file, this.pager.kernels).meta.logTail > p.logEnd;
    this.metaWritesSeen = writes;
    if (stale) p = this.publishedFromLog();
    this.catchUp(p);
    if (p.writer !== this.coord.owner || p.txnId !== this.latest.txnId) {
      this.reloadDurable();
      this.log.end = Math.min(this.log.end, p.logEnd);
      let pageCount = this.durable.pageCount;
      const it = commitsWithPages(this.log, this.durable.logTail);
      let step = it.next();
      for (; !step.done; step = it.next()) {
        const { rec, pages, root } = step.value;
        this.freeList.remove(pages.written);
        // Pages the commit took from the end of the file and freed again are free.
        if (pages.pageCount > pageCount) {
          const written = new Set(pages.written);
          const fresh: number[] = [];
          for (let id = pageCount; id < pages.pageCount; id++) if (!written.has(id)) fresh.push(id);
          this.freeList.giveBack(fresh);
          pageCount = pages.pageCount;
        }
        this.freeList.addPending(rec.txnId, pages.freed, true);
        this.freeList.addPending(rec.txnId, pages.freedYoung, false);
        this.history.add({ txnId: rec.txnId, root, entryCount: pages.entryCount });
        this.commitsSinceCheckpoint++;
      }
      if (step.value.kind !== 'end') {
        throw new NorthstarError('Corrupt', `${this.log.path}: published commit record at ${step.value.position} is damaged (${step.value.status})`, { path: this.log.path });
      }
      const state = treeStateOf(p, Math.max(p.pageCount, pageCount));
      this.latest = state;
      this.published = state;
      this.history.add(snapshotOf(state));
    }
    this.syncedEnd = p.logEnd;
    this.log.cutUnpublished(p.logEnd);
    if (stale) this.publishShared();
  }

  /**
   * Re-reads the durable meta, its freelist and history chains and the log,
   * as at open: another handle may have checkpointed or replaced the log.
   */
  private reloadDurable(): void {
    const { meta, slot } = chooseMeta(this.file, this.pager.kernels);
    this.durable = meta;
    this.durableSlot = slot;
    this.reopenLog(this.logGeneration);
    this.history = new History(this.opts.historyTxns);
    this.historyPages = loadHistory(this.pager, meta, this.history);
    const { list, chain } = loadFreeList(this.pager, meta, 0);
    this.freeList = list;
    this.freelistPages = chain;
    this.commitsSinceCheckpoint = 0;
    this.pager.cache.clear();
    this.latest = {
      txnId: meta.txnId,
      root: meta.root,
      depth: meta.depth,
      entryCount: meta.entryCount,
      pageCount: meta.pageCount,
      recordPosition: lastRecordBefore(this.log, meta.logTail),
      logEnd: meta.logTail,
    };
    this.published = this.latest;
    this.syncedEnd = meta.logTail;
    if (this.history.get(meta.txnId) === undefined) this.history.add(snapshotOf(this.latest));
  }

  /** Opens the log file anew (another handle replaced it, or to see its current size). */
  private reopenLog(generation: number): void {
    const log = LogFile.open(this.logPath, this.durable.dbId, this.pager.kernels, this.opts.fs);
    this.log.close();
    this.log = log;
    this.logGeneration = generation;
  }

  /** Takes the writer lock (waiting up to timeoutMs) and this handle's writer state; WriteBusy if it stays busy. */
  private lockWriter(timeoutMs: number): void {
    if (this.coord.writerLocked) return;
    if (!this.coord.lockWriter(timeoutMs)) {
      throw new NorthstarError('WriteBusy', timeoutMs > 0 ? `another thread or process held the writer for ${timeoutMs} ms` : 'another thread or process holds the writer');
    }
    try {
      this.takeOver();
    } catch (err) {
      this.releaseWriterLock();
      throw err;
    }
  }

  /** Runs fn holding the writer lock, taken for it unless held already. */
  private withWriterLock<T>(fn: () => T, timeoutMs = 0): T {
    this.lockWriter(timeoutMs);
    try {
      return fn();
    } finally {
      this.releaseWriterLock();
    }
  }

  /** Lets other handles write, once this one has no write transaction and no commit waiting for its sync. */
  private releaseWriterLock(): void {
    if (this.writer === null && this.unsynced.length === 0 && !this.recovering && this.coord.writerLocked) this.coord.unlockWriter();
  }

  /** Makes `s` (and every unsynced commit before it) what new readers see. */
  private publishUpTo(s: TreeState, result: CommitResult | null): void {
    while (this.unsynced.length > 0 && this.unsynced[0]!.result.state.txnId <= s.txnId) {
      const u = this.unsynced.shift()!;
      this.publish(u.result.state, u.result.opCount);
    }
    if (result !== null && s.txnId > this.published.txnId) this.publish(s, result.opCount);
  }

  private publish(s: TreeState, opCount: number): void {
    this.published = s;
    this.history.add(snapshotOf(s));
    this.publishShared();
    this.emit('commit', { txnId: s.txnId, opCount, position: s.recordPosition } satisfies CommitEvent);
  }

  /** One asynchronous fdatasync of the log covering everything appended so far. */
  private startSync(): void {
    const end = this.log.end;
    this.syncing = this.log.datasyncAsync().then(
      () => {
        this.syncing = null;
        if (end > this.syncedEnd) this.syncedEnd = end;
        // A checkpoint may have synced further than this sync did.
        const durable = this.syncedEnd;
        const last = this.unsynced.filter((u) => u.result.state.logEnd <= durable).pop();
        if (last) this.publishUpTo(last.result.state, null);
        const waiting = this.syncWaiters;
        this.syncWaiters = [];
        for (const w of waiting) {
          if (w.position <= durable) w.resolve();
          else this.syncWaiters.push(w);
        }
        if (this.syncWaiters.length > 0) this.startSync();
        else if (!this.closed) this.releaseWriterLock();
      },
      (err: unknown) => {
        this.syncing = null;
        const e = err instanceof NorthstarError ? err : new NorthstarError('IoError', String(err), { cause: err });
        this.poison(e);
        const waiting = this.syncWaiters;
        this.syncWaiters = [];
        // Records a checkpoint's own log sync made durable are committed whatever this sync did.
        for (const w of waiting) {
          if (w.position <= this.syncedEnd) w.resolve();
          else w.reject(e);
        }
      },
    );
  }

  private checkpointDue(): boolean {
    return (
      this.latest.txnId !== this.durable.txnId &&
      (this.commitsSinceCheckpoint >= this.opts.checkpointCommits || this.latest.logEnd - this.durable.logTail >= this.opts.checkpointLogBytes)
    );
  }

  /**
   * The checkpoint protocol (spec §8.2): the log durable up to the latest
   * commit; the freelist and history chains written; the data file synced;
   * the meta written to the slot the current durable meta is not in; synced.
   */
  private writeCheckpoint(force = false): void {
    const s = this.latest;
    if (!force && s.txnId === this.durable.txnId && s.logEnd === this.durable.logTail) return;
    const pager = this.pager;
    // 1. Every record the meta will cover must be durable first.
    failpoint('beforeCheckpointLogSync');
    if (this.syncedEnd < s.logEnd && this.sync === 'full') this.log.datasync();
    this.syncedEnd = Math.max(this.syncedEnd, s.logEnd);
    this.publishUpTo(s, null);
    // This handle is the writer of record before it takes any page: should it die before it
    // publishes the new meta, the next writer rebuilds its free pages from whichever meta is
    // durable rather than reusing pages the new chains may hold (concurrency §5).
    this.publishShared();
    // 2. New freelist and history chains; the old chains are freed by this checkpoint.
    let pageCount = s.pageCount;
    const taken: number[] = [];
    const alloc = (): number => {
      const id = this.freeList.take();
      if (id !== undefined) {
        taken.push(id);
        return id;
      }
      return pageCount++;
    };
    const oldChains = this.freelistPages.concat(this.historyPages);
    const snapshots = this.history.all();
    const hcap = historyCapacity(pager.pageSize);
    const historyChain: number[] = [];
    for (let n = 0; n < snapshots.length; n += hcap) historyChain.push(alloc());
    const fcap = freelistCapacity(pager.pageSize);
    const freelistChain: number[] = [];
    const entryCount = (): number => this.freeList.freeCount + this.freeList.pendingCount + oldChains.length;
    while (freelistChain.length * fcap < entryCount()) freelistChain.push(alloc());
    const entries = this.freeList.entries();
    for (const id of oldChains) entries.push([id, s.txnId]);
    const ids = historyChain.concat(freelistChain);
    const pages = [
      ...chainPages(pager.pageSize, PageType.History, historyChain, hcap, snapshots.length, HISTORY_ENTRIES_OFFSET, HISTORY_ENTRY_SIZE, (page, next, from) =>
        writeHistoryPage(page, next, snapshots, from),
      ),
      ...chainPages(pager.pageSize, PageType.Freelist, freelistChain, fcap, entries.length, FREELIST_ENTRIES_OFFSET, FREELIST_ENTRY_SIZE, (page, next, from) =>
        writeFreelistPage(page, next, entries, from),
      ),
    ];
    try {
      for (const p of pages) {
        writePageTxnId(p, s.txnId);
        pager.kernels.pageSeal(p);
      }
      failpoint('midCheckpointPages');
      const order = ids.map((_, i) => i).sort((a, b) => ids[a]! - ids[b]!);
      pager.writePages(
        order.map((i) => ids[i]!),
        order.map((i) => pages[i]!),
      );
      pager.extendTo(pageCount * pager.pageSize);
      // 3. Every page the meta can reach is durable before the meta.
      failpoint('beforeCheckpointSync');
      if (this.sync === 'full') this.file.datasync();
    } catch (err) {
      this.freeList.giveBack(taken);
      throw err instanceof NorthstarError ? err : new NorthstarError('IoError', `checkpoint failed: ${String(err)}`, { cause: err });
    }
    // 4. The meta, into the other slot; 5. durable.
    const meta: Meta = {
      pageSize: pager.pageSize,
      txnId: s.txnId,
      root: s.root,
      freelist: freelistChain[0] ?? 0,
      logTail: s.logEnd,
      pageCount,
      entryCount: s.entryCount,
      depth: s.depth,
      dbId: this.durable.dbId,
      history: historyChain[0] ?? 0,
      checkpointSeq: (this.durable.checkpointSeq + 1) >>> 0,
    };
    const slot = this.durableSlot === META_PAGE_A ? META_PAGE_B : META_PAGE_A;
    try {
      // Counted before it happens (concurrency §2.4): a checkpoint that dies here still makes the next writer look.
      this.metaWritesSeen = this.coord.noteMetaWrite();
      failpoint('beforeMetaWrite');
      this.file.write(encodeMeta(meta, slot, pager.kernels), slot * pager.pageSize);
      failpoint('beforeMetaSync');
      if (this.sync === 'full') this.file.datasync();
      failpoint('afterMetaSync');
    } catch (err) {
      const e = err instanceof NorthstarError ? err : new NorthstarError('IoError', String(err), { cause: err });
      this.poison(e);
      throw e;
    }
    this.durable = meta;
    this.durableSlot = slot;
    this.latest = { ...s, pageCount };
    if (this.published.txnId === s.txnId) this.published = this.latest;
    this.freelistPages = freelistChain;
    this.historyPages = historyChain;
    this.freeList.addPending(s.txnId, oldChains);
    this.commitsSinceCheckpoint = 0;
    // The next writer, here or in another handle, starts from this meta (concurrency §5).
    this.publishShared();
  }

  /**
   * Replays the log records after the durable meta (spec §8.3): each becomes a
   * commit again (new pages, same txn id and operations). A torn tail is cut
   * off; damage followed by valid records is Corrupt.
   */
  private recover(): void {
    const log = this.log;
    const k = this.pager.kernels;
    let ops = new Uint32Array(4 * 1024);
    let replayed = 0;
    const it = log.scan(this.durable.logTail);
    let step = it.next();
    while (!step.done) {
      const rec = step.value;
      if (isCommitRecord(rec.bytes)) {
        if (rec.txnId !== this.latest.txnId + 1) {
          throw new NorthstarError('Corrupt', `${log.path}: record at ${rec.position} is txn ${rec.txnId}, expected ${this.latest.txnId + 1}`, {
            path: log.path,
          });
        }
        const opCount = readU32(rec.bytes, RECORD_HEADER_SIZE + COMMIT_OP_COUNT_OFFSET);
        if (ops.length < opCount * 4) ops = new Uint32Array(opCount * 4);
        k.recordDecode(rec.bytes, 0, ops);
        this.releasePages();
        const w = new WriteTxn(this, { position: rec.position, end: rec.position + rec.length });
        this.writer = w;
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
    this.syncedEnd = this.latest.logEnd;
    if (replayed > 0) this.writeCheckpoint();
  }

  private closeFiles(): void {
    this.closed = true;
    // A closed handle is nobody's to raise; dropping it here also lets it be collected
    // before the current task ends.
    raisesDue.delete(this);
    this.pager.cache.clear();
    this.pager.map?.close();
    try {
      this.coord.close();
    } finally {
      try {
        this.log.close();
      } finally {
        this.file.close();
      }
    }
  }
}

/**
 * Handles whose slot is due to be raised at the end of the current task
 * (spec/concurrency_v0.md §4.2). One microtask serves them all, and a handle
 * that closes leaves the set at once: a queued closure per handle would keep
 * every closed handle (its cache, its files) alive until the task ends, which
 * a long synchronous task opening many databases cannot afford.
 */
const raisesDue = new Set<Database>();
let raiseScheduled = false;

function queueRaise(db: Database): void {
  raisesDue.add(db);
  if (raiseScheduled) return;
  raiseScheduled = true;
  queueMicrotask(() => {
    raiseScheduled = false;
    const due = [...raisesDue];
    raisesDue.clear();
    for (const d of due) d.raiseSlot();
  });
}

/**
 * Creates the database files (spec/file_format_v1.md §8): the log first, so a
 * database file never exists without its log. Processes that open a new path
 * at once take turns (a directory lock); the first creates, the rest open.
 */
function create(abs: string, logPath: string, opts: Options): void {
  const files = opts.fs;
  const lock = files === nodeFileSystem ? new DirLock(`${abs}.lock.create`) : null;
  if (lock !== null && !lock.acquire(OPEN_LOCK_TIMEOUT_MS)) {
    throw new NorthstarError('WriteBusy', `${abs}: another process kept creating the database for ${OPEN_LOCK_TIMEOUT_MS} ms`);
  }
  try {
    if (files.exists(abs)) return;
    const dbId = randomInt(1, 2 ** 47);
    if (files.exists(logPath)) files.remove(logPath);
    LogFile.create(logPath, dbId, kernels, files, opts.sectorSize).close();
    const first = emptyMeta(opts.pageSize, dbId);
    first.logTail = LOG_HEADER_SIZE;
    const image = new Uint8Array(opts.pageSize * 2);
    image.set(encodeMeta(first, META_PAGE_A, kernels), 0);
    image.set(encodeMeta(first, META_PAGE_B, kernels), opts.pageSize);
    files.createAtomically(abs, image);
  } finally {
    lock?.release();
  }
}

/**
 * The pages of a freelist or history chain (spec §6) holding `total` entries,
 * `perPage` to a page, on the page ids of `chain`; `fill` writes the body.
 */
function chainPages(
  pageSize: number,
  type: PageType,
  chain: readonly number[],
  perPage: number,
  total: number,
  entriesOffset: number,
  entrySize: number,
  fill: (page: Uint8Array, next: number, from: number) => number,
): Uint8Array[] {
  const pages: Uint8Array[] = [];
  for (let j = 0, from = 0; j < chain.length; j++) {
    const page = Buffer.alloc(pageSize);
    const n = Math.min(perPage, total - from);
    initPageHeader(page, type, chain[j]!, entriesOffset - HEADER_SIZE + n * entrySize);
    from += fill(page, j + 1 < chain.length ? chain[j + 1]! : 0, from);
    pages.push(page);
  }
  return pages;
}

/** The tree state a published block describes (`pageCount`: the file high-water mark, if known better). */
function treeStateOf(p: PublishedState, pageCount = p.pageCount): TreeState {
  return { txnId: p.txnId, root: p.root, depth: p.depth, entryCount: p.entryCount, pageCount, recordPosition: p.recordPosition, logEnd: p.logEnd };
}

function isCommitRecord(record: Uint8Array): boolean {
  return (record[RECORD_TYPE_OFFSET]! | (record[RECORD_TYPE_OFFSET + 1]! << 8)) === RecordType.Commit;
}

/**
 * The commit records of the log from `from` with their pages sections
 * (spec/concurrency_v0.md §5); returns how the scan ended. A commit without a
 * section (written before sections existed) cannot be taken over from:
 * UnsupportedFormat.
 */
function* commitsWithPages(log: LogFile, from: number): Generator<{ rec: ScannedRecord; pages: PagesSection; root: number }, ScanEnd, void> {
  const it = log.scan(from);
  let step = it.next();
  for (; !step.done; step = it.next()) {
    const rec = step.value;
    if (!isCommitRecord(rec.bytes)) continue;
    const pages = readPagesSection(rec.bytes);
    if (pages === null) {
      throw new NorthstarError('UnsupportedFormat', `${log.path}: record ${rec.txnId} after the last checkpoint has no pages section (written by an older version); close every handle and reopen to recover`, {
        path: log.path,
      });
    }
    yield { rec, pages, root: readU64(rec.bytes, RECORD_HEADER_SIZE + COMMIT_ROOT_OFFSET) };
  }
  return step.value;
}

function snapshotOf(s: TreeState): Snapshot {
  return { txnId: s.txnId, root: s.root, entryCount: s.entryCount };
}

/** Records of the log from its start (headers only matter to callers here). */
function* scanLog(log: LogFile): Generator<{ txnId: number; position: number }> {
  const it = log.scan(log.base);
  for (let s = it.next(); !s.done; s = it.next()) yield { txnId: s.value.txnId, position: s.value.position };
}

/** Position of the record that ends at `end` (its trailer holds its length), or 0 at the start of the log. */
function lastRecordBefore(log: LogFile, end: number): number {
  if (end - TRAILER_SIZE < log.base) return 0;
  const t = log.read(end - TRAILER_SIZE, TRAILER_SIZE);
  if (t.length < TRAILER_SIZE) return 0;
  const len = readU32(t, TRAILER_LENGTH_OFFSET);
  return end - len >= log.base ? end - len : 0;
}

function checkOptions(options: OpenOptions): Options {
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
  const historyTxns = count(options.history?.txns, DEFAULT_HISTORY_TXNS, 'history.txns', 0);
  const checkpointCommits = count(options.checkpoint?.commits, DEFAULT_CHECKPOINT_COMMITS, 'checkpoint.commits', 1);
  const checkpointLogBytes = count(options.checkpoint?.logBytes, DEFAULT_CHECKPOINT_LOG_BYTES, 'checkpoint.logBytes', 1);
  const maxTxnBytes = options.maxTxnBytes === undefined ? undefined : count(options.maxTxnBytes, 0, 'maxTxnBytes', 1);
  const sectorSize = options.sectorSize ?? 0;
  if (!(LOG_SECTOR_SIZES as readonly number[]).includes(sectorSize)) {
    throw new NorthstarError('InvalidArgument', `sectorSize must be one of ${LOG_SECTOR_SIZES.join(', ')}`);
  }
  const fs = options.fileSystem ?? nodeFileSystem;
  const mmap = options.mmap ?? true;
  if (typeof mmap !== 'boolean') throw new NorthstarError('InvalidArgument', 'mmap must be a boolean');
  return { pageSize, sync, cacheSize, historyTxns, checkpointCommits, checkpointLogBytes, maxTxnBytes, sectorSize, fs, mmap };
}

/** Reads the freelist chain of the chosen meta (spec §6.1). */
function loadFreeList(pager: Pager, meta: Meta, floor: number): { list: FreeList; chain: number[] } {
  const ids: number[] = [];
  const txnIds: number[] = [];
  const chain = readChain(pager, meta, meta.freelist, PageType.Freelist, 'freelist', (page, id) => {
    const body = readFreelistPage(page);
    if (body === null) return null;
    for (let i = 0; i < body.ids.length; i++) {
      const f = body.ids[i]!;
      if (f < FIRST_DATA_PAGE || f >= meta.pageCount) {
        throw new NorthstarError('Corrupt', `${pager.file.path}: freelist page ${id} lists invalid page ${f}`, { pageId: id, path: pager.file.path });
      }
      ids.push(f);
      txnIds.push(body.txnIds[i]!);
    }
    return body.next;
  });
  return { list: FreeList.fromEntries(ids, txnIds, floor), chain };
}

/** Reads the history chain of the chosen meta into `history`; returns the chain's pages. */
function loadHistory(pager: Pager, meta: Meta, history: History): number[] {
  return readChain(pager, meta, meta.history, PageType.History, 'history', (page) => {
    const body = readHistoryPage(page);
    if (body === null) return null;
    for (const e of body.entries) if (e.txnId <= meta.txnId && e.root < meta.pageCount) history.add(e);
    return body.next;
  });
}

/** Walks a chain of pages of one type from `head`; `each` returns the next id, or null if the page is malformed. */
function readChain(pager: Pager, meta: Meta, head: number, type: number, what: string, each: (page: Uint8Array, id: number) => number | null): number[] {
  const chain: number[] = [];
  const seen = new Set<number>();
  let id = head;
  while (id !== 0) {
    if (id < FIRST_DATA_PAGE || id >= meta.pageCount || seen.has(id)) {
      throw new NorthstarError('Corrupt', `${pager.file.path}: ${what} chain reaches invalid page ${id}`, { pageId: id, path: pager.file.path });
    }
    seen.add(id);
    chain.push(id);
    const page = pager.readUncached(id);
    // The checkpoint that wrote the meta wrote its whole chain (spec §4.5, rule 13).
    if (pageTxnId(page) !== meta.txnId) {
      throw new NorthstarError('Corrupt', `${pager.file.path}: page ${id}: ${what} page written by txn ${pageTxnId(page)}, but the meta expects txn ${meta.txnId} (a stale or misplaced page)`, {
        pageId: id,
        path: pager.file.path,
      });
    }
    const next = pageTypeOf(page) === type ? each(page, id) : null;
    if (next === null) throw new NorthstarError('Corrupt', `${pager.file.path}: page ${id} is not a valid ${what} page`, { pageId: id, path: pager.file.path });
    id = next;
  }
  return chain;
}

/** Opens (creating if missing) the database at path. */
export function open(path: string, options?: OpenOptions): Database {
  return Database.open(path, options);
}

