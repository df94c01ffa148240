// One open handle's engine: the files, the pager, the free list, retained
// history, the snapshot registry and this handle's view of the lock file. It
// is internal: the public `Database` (database.ts) holds one in a private
// field, and transactions reach it only through the WriteHost and ReadHost
// interfaces they declare. The protocols that act on it live a file each, in
// spec order: open.ts (create, adopt or recover), snapshots.ts, writer.ts
// (taking the writer), groupcommit.ts, checkpoint.ts, recovery.ts, follow.ts
// (other handles' commits), truncate.ts, close.ts.

import { EventEmitter } from 'node:events';
import { asIoError, ErrorCode, NorthstarError } from '../errors.js';
import { maxKeySize } from '../format/page.js';
import type { DbFile } from '../io/file.js';
import type { LogFile } from '../log/file.js';
import { RecordBuilder } from '../log/record.js';
import type { Kernels } from '../native/kernels.js';
import { FreeList } from '../pager/freelist.js';
import { History } from '../pager/history.js';
import { chooseMeta, type Meta } from '../pager/meta.js';
import { Pager } from '../pager/pager.js';
import { mappingFor } from '../pager/map.js';
import type { PageSource } from '../btree/read.js';
import type { CartridgeInfo } from '../cartridge/info.js';
import type { CommitResult, ReadHost, TreeState, WriteHost } from '../txn/host.js';
import type { WriteTxn } from '../txn/write.js';
import type { Coordinator } from '../shared/coordinator.js';
import { loadFreeList, loadHistory } from './chains.js';
import { writeCheckpoint, checkpointDue, startCheckpoint, type LogCut, type PendingCheckpoint } from './checkpoint.js';
import { dropRetiredLog } from './truncate.js';
import { publishUpTo, startLogSync, syncLogUpTo, type Unsynced, type SyncWaiter } from './groupcommit.js';
import { snapshotOf, stateOfMeta } from './logscan.js';
import type { Options } from './options.js';
import { queueRaise, showReaders } from './snapshots.js';
import { releaseWriterLock, type WriterWaiter } from './writer.js';

/** Emits nothing to nobody: the events target until the Database facade takes over. */
const NO_LISTENERS = new EventEmitter();

export class Engine implements WriteHost, ReadHost {
  readonly path: string;
  readonly logPath: string;
  readonly sync: Options['sync'];
  readonly pager: Pager;
  readonly maxKeySize: number;
  readonly source: PageSource;
  readonly file: DbFile;
  readonly opts: Options;
  /** This handle's slot and view of the lock file (spec/concurrency_v0.md). */
  readonly coord: Coordinator;
  /** The record builder every write transaction of this handle reuses. */
  readonly recordBuilder: RecordBuilder;
  /** Where 'commit' events go: the Database facade once it exists. */
  events: EventEmitter = NO_LISTENERS;

  /** The log file this handle has open (replaced when another handle replaces the file). */
  log: LogFile;
  /** Latest commit in the log: the base of the next write transaction. */
  latest!: TreeState;
  /** Latest commit readers see: durable (or sync 'none'). Published blocks may lack depth (history snapshots). */
  published!: TreeState;
  /** The meta the data file holds durably (last checkpoint) and its slot. */
  durable!: Meta;
  durableSlot!: number;
  /**
   * The oldest snapshot the durable meta's history chain lists (its own txn
   * when none): after a crash, recovery offers time travel back to it, so a
   * page the durable meta may reach (written at or before its checkpoint) and
   * freed by a commit after this txn stays unused until a newer meta is
   * durable, even once this handle's history has let that snapshot go
   * (releasePages, spec/file_format_v1.md §6.1).
   */
  durableHistoryFloor = 0;
  /** The pages of the durable meta's history chain (freed by the next checkpoint). */
  historyPages!: number[];
  /** The free pages and the durable meta's freelist chain, once read (freeList); null: not yet read. */
  #freeList: FreeList | null = null;
  #freelistPages: number[] = [];
  history!: History;

  // ---- snapshots (snapshots.ts) ----
  /** Live read transactions of this handle, by snapshot txn id. */
  readonly readers = new Map<number, number>();
  liveReaders = 0;
  /** The oldest snapshot this handle's readers hold; undefined when it must be recomputed. */
  oldestCache: number | null | undefined = null;

  // ---- the writer (writer.ts, groupcommit.ts) ----
  writer: WriteTxn | null = null;
  /** beginWriteAsync calls of this handle waiting for the writer, in the order they were made. */
  readonly writerWaiters: WriterWaiter[] = [];
  /** The timer of the next look for the writer on the waiters' behalf, and its current delay. */
  writerTimer: NodeJS.Timeout | null = null;
  writerBackoff = 0;
  /** While waiters listen for other handles' changes (changes.ts): the listener that looks for the writer for them. */
  writerListener: (() => void) | null = null;
  /** Commits whose record is in the log but whose sync has not completed (commitAsync). */
  unsynced: Unsynced[] = [];
  syncing: Promise<void> | null = null;
  syncWaiters: SyncWaiter[] = [];
  /** Log position up to which the log is known durable. */
  syncedEnd!: number;
  /** recover() is replaying: its commits keep the writer lock (concurrency §3.1), else another opener would recover too. */
  recovering = false;

  // ---- checkpoints (checkpoint.ts) ----
  commitsSinceCheckpoint = 0;
  /** A checkpoint whose data-file syncs run on the thread pool (startCheckpoint); it holds the writer lock. */
  checkpointing: PendingCheckpoint | null = null;
  /** Checkpoints this handle opened at or wrote, oldest first: where log retention may cut (truncate.ts, spec §8.7). */
  logCuts!: LogCut[];

  // ---- other handles (follow.ts) ----
  /** The log file generation this handle has open (bumped when truncateLog replaces the file). */
  logGeneration = 0;
  /** W_META_WRITES when this handle last read the metas or wrote one (concurrency §2.4); -1: never. */
  metaWritesSeen = -1;
  /** Pages read ahead by catch-ups (stats().cache.prefetched). */
  prefetched = 0;
  /** Catch-ups done (stats().catchUps). */
  catchUps = 0;
  /** The lock file's change watch (changes.ts): undefined until first needed, null where the store cannot watch. */
  changeWatch: { close(): void } | null | undefined = undefined;
  /** Who hears of changes the watch sees (changes.ts). */
  readonly changeListeners = new Set<() => void>();
  /** Cartridges served for this handle (ts/cartridge/serve.ts), for db.cartridges(). */
  readonly cartridges = new Set<{ info(): CartridgeInfo }>();

  closed = false;
  /** Set when the log's durable content is unknown: writes are refused until reopen. */
  poisoned: NorthstarError | null = null;
  /**
   * Replication's hold on this handle (ts/replication/): `writeFence` refuses
   * the public write calls (a replica, a deposed primary: NotPrimary);
   * `commitGate` runs after a commitAsync's record is durable and before it
   * resolves (quorum mode waits there for the stream's acknowledgement);
   * `logHold` is the log position retention must not drop records from (the
   * first commit not yet published), or null.
   */
  writeFence: NorthstarError | null = null;
  commitGate: ((txnId: number) => Promise<void>) | null = null;
  logHold: (() => number | null) | null = null;

  constructor(path: string, file: DbFile, log: LogFile, meta: Meta, slot: number, opts: Options, k: Kernels, coord: Coordinator) {
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
    this.startFrom(meta, slot);
  }

  /**
   * Takes durable meta `meta` (in `slot`) and the open log as the whole state,
   * as at open (reloadDurable again when another handle replaced the log or
   * rebuilt the trees): its history and free-page chains, read again (the free
   * pages on first use), nothing committed or checkpointed since.
   */
  startFrom(meta: Meta, slot: number): void {
    this.durable = meta;
    this.durableSlot = slot;
    this.history = new History(this.opts.historyTxns);
    const loaded = loadHistory(this.pager, meta, this.history);
    this.historyPages = loaded.chain;
    this.durableHistoryFloor = loaded.oldest;
    this.forgetFreeList();
    this.commitsSinceCheckpoint = 0;
    this.logCuts = [{ txnId: meta.txnId, position: meta.logTail }];
    this.latest = stateOfMeta(meta, this.log);
    this.published = this.latest;
    this.syncedEnd = meta.logTail;
    if (this.history.get(meta.txnId) === undefined) this.history.add(snapshotOf(this.latest));
  }

  // ---- free pages (spec §6.1) ---------------------------------------------------

  /**
   * The free pages: the durable meta's freelist chain, read on first use, and
   * what commits freed since. Read when first used rather than at open: a
   * chain of a few hundred thousand entries costs tens of milliseconds, and
   * a handle that never writes never needs it. The writer first uses it
   * under the writer lock after takeOver(), when `durable` is the current
   * meta and no checkpoint has freed (let alone reused) its chain's pages.
   */
  get freeList(): FreeList {
    return this.#freeList ?? this.readFreeList();
  }

  set freeList(list: FreeList) {
    this.#freeList = list;
  }

  /** The pages of the durable meta's freelist chain (freed by the next checkpoint). */
  get freelistPages(): number[] {
    if (this.#freeList === null) this.readFreeList();
    return this.#freelistPages;
  }

  set freelistPages(chain: number[]) {
    this.#freelistPages = chain;
  }

  /** Forgets the free pages; the next use reads them from the chain of `durable` (reloadDurable). */
  forgetFreeList(): void {
    this.#freeList = null;
    this.#freelistPages = [];
    this.freeListAt = null;
  }

  /**
   * The commit the free pages (read and in use) account for: its txn, the
   * log position after its record, and the page count then. A writer taking
   * over after another handle wrote applies only the records after it,
   * instead of rebuilding from the durable meta (takeOver; concurrency §5).
   * null: not known (rebuild). The state of that commit itself, not a copy.
   */
  freeListAt: { txnId: number; logEnd: number; pageCount: number } | null = null;
  /** Take-overs after another handle wrote: applied incrementally, or rebuilt from the durable meta (tests). */
  readonly takeOvers = { incremental: 0, rebuilt: 0 };

  /**
   * Reads the chain of `durable`. Pages freed by a commit after retained
   * history's oldest stay pending (floor 0); the writer's releasePages()
   * frees what no snapshot reaches. Outside the writer lock (stats()) the
   * chain may be gone: another handle checkpointed since `durable` was read
   * and reused its pages. The list then reads empty, uncached, until the
   * next takeOver() reloads from the new meta.
   */
  private readFreeList(): FreeList {
    let read: { list: FreeList; chain: number[] };
    try {
      read = loadFreeList(this.pager, this.durable, 0);
    } catch (err) {
      if (this.coord.writerLocked || !durableMoved(this)) throw err;
      return new FreeList();
    }
    this.#freeList = read.list;
    this.#freelistPages = read.chain;
    return read.list;
  }

  // ---- hooks for the transactions (WriteHost, ReadHost) ------------------------

  checkOpen(): void {
    if (this.closed) throw new NorthstarError(ErrorCode.Closed, 'database is closed');
  }

  /**
   * The public write calls' check: writes are refused after a failed sync or
   * checkpoint until reopen recovers, then by replication's fence (a replica,
   * a deposed primary).
   */
  checkWritable(): void {
    const refused = this.writesRefused() ?? this.writeFence;
    if (refused !== null) throw refused;
  }

  /** The error a write meets while the handle is poisoned, else null. */
  writesRefused(): NorthstarError | null {
    return this.poisoned && new NorthstarError('IoError', `writes refused until reopen: ${this.poisoned.message}`, { cause: this.poisoned });
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
    if (!this.closed) showReaders(this);
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
    this.freeListAt = s;
    this.commitsSinceCheckpoint++;
    if (durable) {
      this.syncedEnd = s.logEnd;
      publishUpTo(this, s, result);
    } else {
      this.unsynced.push({ result });
    }
  }

  syncLogUpTo(position: number): Promise<void> {
    return syncLogUpTo(this, position);
  }

  startLogSync(): void {
    startLogSync(this);
  }

  /**
   * What a commitAsync that freed `freedPages` pages waits for after its sync
   * (spec §8.2, "a large commit waits"): the checkpoint under way, when that
   * commit alone freed a quarter of `checkpoint.freedBytes` or more; else null.
   */
  checkpointWait(freedPages: number): Promise<void> | null {
    if (freedPages * this.pager.pageSize * 4 < this.opts.checkpointFreedBytes) return null;
    return this.checkpointing?.ended ?? null;
  }

  afterCommit(txnId: number): Promise<number> | number {
    const gate = this.commitGate;
    return gate === null ? txnId : gate(txnId).then(() => txnId);
  }

  /**
   * The write transaction ended. A checkpoint due now runs on this thread
   * after commit() (a synchronous form, like its log sync), and with its
   * syncs on the thread pool after commitAsync() (startCheckpoint), one at a
   * time.
   */
  writerDone(async = false): void {
    this.writer = null;
    if (!this.closed && !this.poisoned && this.checkpointing === null && checkpointDue(this)) {
      try {
        if (async) startCheckpoint(this, () => dropRetiredLog(this));
        else {
          writeCheckpoint(this);
          dropRetiredLog(this);
        }
      } catch (err) {
        // The commit itself is durable in the log; a failed checkpoint only
        // delays the data file. Refuse writes until reopen recovers.
        this.poison(asIoError(err));
      }
    }
    releaseWriterLock(this);
  }

  poison(err: NorthstarError): void {
    this.poisoned ??= err;
  }

  get logDurableEnd(): number {
    return this.sync === 'none' ? -1 : this.syncedEnd;
  }

  /**
   * The newest meta that reaches pages already written: the durable one, or
   * the one an asynchronous checkpoint is writing. A page written up to it
   * and freed later is protected (reusable only after a checkpoint past its
   * freeing commit is durable), also while that meta is still pending: should
   * it become durable, its tree must still be intact (spec §8.2).
   */
  get checkpointTxnId(): number {
    return this.checkpointing?.meta.txnId ?? this.durable.txnId;
  }
}

/** Whether the data file's durable meta is no longer the one `e` read (another handle checkpointed). */
function durableMoved(e: Engine): boolean {
  const now = chooseMeta(e.file, e.pager.kernels).meta;
  return now.txnId !== e.durable.txnId || now.checkpointSeq !== e.durable.checkpointSeq;
}
