// What transactions need from their database: the engine (ts/db/engine.ts)
// implements these. Internal: kept apart from the transaction classes so the
// package's published types reach neither the engine nor the pager.

import type { NorthstarError } from '../errors.js';
import type { PageSource } from '../btree/read.js';
import type { LogFile } from '../log/file.js';
import type { RecordBuilder } from '../log/record.js';
import type { FreeList } from '../pager/freelist.js';
import type { Pager } from '../pager/pager.js';

/** What a read transaction needs from its database. */
export interface ReadHost {
  readonly source: PageSource;
  readonly maxKeySize: number;
  /** Called once when the transaction closes. */
  releaseSnapshot(txnId: number): void;
  /** Throws Closed when the database is closed. */
  checkOpen(): void;
}

/** The latest committed state: what the next write transaction starts from. */
export interface TreeState {
  txnId: number;
  root: number;
  depth: number;
  entryCount: number;
  pageCount: number;
  /** Log position of this commit's record (0 before the first record). */
  recordPosition: number;
  /** Log position just after this commit's record. */
  logEnd: number;
}

/** One commit handed to the database once its record is in the log. */
export interface CommitResult {
  state: TreeState;
  /** Committed pages this commit made unreachable that the durable meta may reach (pending, spec §6.1). */
  freed: readonly number[];
  /** Committed pages this commit made unreachable, written after the durable checkpoint. */
  freedYoung: readonly number[];
  /** Pages the transaction allocated and freed again: reusable now. */
  reusable: readonly number[];
  /** The pages written, by id (nodes go to the page cache). */
  dirty: ReadonlyMap<number, Buffer>;
  opCount: number;
}

/** What the write transaction needs from its database. */
export interface WriteHost {
  readonly pager: Pager;
  readonly latest: TreeState;
  /** Txn id of the newest checkpoint's meta, durable or being written: pages written up to it are protected. */
  readonly checkpointTxnId: number;
  readonly freeList: FreeList;
  readonly log: LogFile;
  readonly maxKeySize: number;
  /** 'full': commit() fdatasyncs the log; 'none': never. */
  readonly sync: 'full' | 'none';
  /** Log position up to which the log is known durable (-1 in sync 'none': never). */
  readonly logDurableEnd: number;
  /** The record builder, reused by every write transaction. */
  readonly recordBuilder: RecordBuilder;
  checkOpen(): void;
  /**
   * The commit's record is in the log. `durable` says whether a sync covering
   * it has completed (always true in sync 'none'); if not, the database makes
   * it visible when its sync completes.
   */
  committed(result: CommitResult, durable: boolean): void;
  /** Resolves once the log is durable up to `position` (group commit). */
  syncLogUpTo(position: number): Promise<void>;
  /** Starts a log sync on the thread pool now, unless one is running (commitAsync, spec §8.1). */
  startLogSync(): void;
  /** What a commitAsync that freed `freedPages` pages waits for once durable (a checkpoint under way), or null (spec §8.2). */
  checkpointWait(freedPages: number): Promise<void> | null;
  /** What a commitAsync of `txnId` waits for once its record is durable (replication's quorum), or the txn id at once. */
  afterCommit(txnId: number): Promise<number> | number;
  /**
   * Releases the writer slot; called exactly once per transaction. `async`:
   * the transaction was committed by commitAsync, so a checkpoint it makes
   * due syncs on the thread pool.
   */
  writerDone(async?: boolean): void;
  /** The log's durable content is unknown: refuse writes until reopen. */
  poison(err: NorthstarError): void;
}
