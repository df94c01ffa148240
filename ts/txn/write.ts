// The single write transaction. Changes live in dirty pages (ts/btree/writer.ts)
// and, op by op, in the commit record (ts/log/record.ts) until commit() makes
// them durable in the order of spec/file_format_v1.md §8.1: the record to the
// log, the pages to the data file without a sync, then one fdatasync of the log
// (commitAsync: started on the thread pool before the pages are written).

import { asIoError, NorthstarError } from '../errors.js';
import { ScanIterator, type ScanHost } from '../btree/cursor.js';
import { TreeWriter } from '../btree/writer.js';
import { writePageTxnId } from '../format/page.js';
import { failpoint } from '../io/failpoint.js';
import { RecordBuilder } from '../log/record.js';
import { RECORD_FLAG_UNSYNCED_BEFORE } from '../format/record.js';
import { toKey, toRange, toValue, type Bytes, type ScanOptions } from './args.js';
import type { WriteHost } from './host.js';

/** Only create() has it: a user's `new WriteTxn(...)` throws. */
const CREATE = Symbol('WriteTxn.create');

export class WriteTxn implements Disposable {
  readonly #tree: TreeWriter;
  readonly #record: RecordBuilder;
  #state: 'open' | 'committed' | 'aborted' | 'failed' = 'open';
  /** Page ids taken from the database's free list (given back on abort). */
  readonly #taken: number[] = [];
  #pageCount: number;
  #broken: unknown = null;

  readonly #host: WriteHost;
  /**
   * Recovery applies the record already in the log at this position; the
   * transaction then builds no record and commit() appends nothing.
   */
  readonly #replaying: { position: number; end: number } | null;

  private constructor(token: symbol, host: WriteHost, replaying: { position: number; end: number } | null) {
    if (token !== CREATE) throw new TypeError('WriteTxn has no public constructor: use db.beginWrite(), beginWriteAsync() or write()');
    this.#host = host;
    this.#replaying = replaying;
    const s = host.latest;
    this.#pageCount = s.pageCount;
    this.#tree = new TreeWriter(host.pager, s.root, s.txnId, s.depth, s.entryCount, s.txnId + 1, () => this.#allocate(), host.checkpointTxnId);
    this.#record = host.recordBuilder;
    if (replaying === null) this.#record.reset(s.txnId + 1);
  }

  /**
   * @internal The database's engine hands out the write transaction; users
   * call db.beginWrite(), beginWriteAsync() or write(). `replaying`: recovery.
   */
  static create(host: WriteHost, replaying: { position: number; end: number } | null = null): WriteTxn {
    return new WriteTxn(CREATE, host, replaying);
  }

  /** The txn id this transaction commits as. */
  get txnId(): number {
    return this.#host.latest.txnId + 1;
  }

  put(key: Bytes, value: Bytes): void {
    this.#checkOpen();
    const k = toKey(key, this.#host.maxKeySize);
    const v = toValue(value);
    // The record first: a transaction too large for its record fails here, before the tree changes.
    if (this.#replaying === null) this.#record.put(k, v);
    try {
      this.#tree.put(k, v);
    } catch (err) {
      throw this.#broke(err);
    }
  }

  /** Deletes key; returns whether it existed. */
  del(key: Bytes): boolean {
    this.#checkOpen();
    const k = toKey(key, this.#host.maxKeySize);
    try {
      const existed = this.#tree.del(k);
      if (existed && this.#replaying === null) this.#record.del(k);
      return existed;
    } catch (err) {
      throw this.#broke(err);
    }
  }

  /** Reads through this transaction's own changes. */
  get(key: Bytes): Buffer | undefined {
    this.#checkOpen();
    return this.#tree.get(toKey(key, this.#host.maxKeySize));
  }

  /**
   * Scans this transaction's view. Changing the transaction while a scan is
   * open is allowed: the scan continues after the last key it returned.
   */
  scan(options?: ScanOptions): IterableIterator<[Buffer, Buffer]> {
    this.#checkOpen();
    const host: ScanHost = {
      checkOpen: () => this.#checkOpen(),
      source: () => this.#tree,
      root: () => this.#tree.root,
      rootTxn: () => this.#tree.rootTxn,
      version: () => this.#tree.version,
    };
    return new ScanIterator(host, toRange(options));
  }

  /**
   * Makes the changes durable (sync 'full': one fdatasync of the log) and
   * visible; returns the new txn id. A transaction without changes commits
   * nothing and returns the current txn id. On failure nothing is visible and
   * the database stays at its last commit (after a failed log sync, it refuses
   * writes until reopened: the record's fate is unknown).
   */
  commit(): number {
    const txnId = this.#write();
    if (txnId < 0) return this.#host.latest.txnId;
    return txnId;
  }

  /**
   * As commit(), but resolves once the record is durable: commits issued while
   * a log sync is in flight share the next one (group commit). The changes are
   * visible to new readers when the promise resolves.
   */
  commitAsync(): Promise<number> {
    let txnId: number;
    const freed = this.#tree.freedCommitted.length + this.#tree.freedYoung.length;
    try {
      txnId = this.#write(true);
    } catch (err) {
      return Promise.reject(err);
    }
    if (txnId < 0) return Promise.resolve(this.#host.latest.txnId);
    const host = this.#host;
    // A large commit's freed pages are reusable only after the checkpoint it started:
    // the caller's next transaction waits for it instead of growing the file (spec §8.2).
    const checkpoint = host.checkpointWait(freed);
    const durable = host.syncLogUpTo(host.latest.logEnd);
    return (checkpoint === null ? durable : durable.then(() => checkpoint)).then(() => host.afterCommit(txnId));
  }

  /** Discards every change. Safe to call after commit (no-op). */
  abort(): void {
    if (this.#state !== 'open') return;
    this.#rollback();
    this.#finish('aborted');
  }

  [Symbol.dispose](): void {
    this.abort();
  }

  get isClosed(): boolean {
    return this.#state !== 'open';
  }

  /**
   * The commit protocol (spec §8). Returns the new txn id, or -1 when there was
   * nothing to commit. `deferSync`: leave the log sync to syncLogUpTo.
   */
  #write(deferSync = false): number {
    this.#checkOpen();
    if (this.#broken !== null) {
      this.abort();
      throw new NorthstarError('InvalidArgument', 'transaction failed earlier and was aborted', { cause: this.#broken });
    }
    const host = this.#host;
    const tree = this.#tree;
    if (!tree.changed) {
      if (this.#replaying === null) {
        this.#finish('committed');
        return -1;
      }
      // A snapshot's root is always written by its own commit (spec §4.5, rule 13).
      tree.touchRoot();
    }
    const pager = host.pager;
    const base = host.latest;
    const txnId = base.txnId + 1;
    const log = host.log;
    const logEnd = log.end;
    let appended = false;
    try {
      const ids = [...tree.dirty.keys()].sort((a, b) => a - b);
      // 1. Append the commit record (ops, new root, the pages section).
      let recordPosition: number;
      let recordEnd: number;
      // Whether this commit syncs the log (a replayed record is durable already; sync 'none' never).
      const syncs = this.#replaying === null && host.sync === 'full';
      if (this.#replaying === null) {
        // The first record of a log points at itself (spec/commit_record_v0.md §1).
        const prev = base.recordPosition === 0 ? log.nextAppendPosition() : base.recordPosition;
        appended = true;
        // Flag a record appended while an earlier one is unsynced (group commit): recovery
        // then knows damage before it is a crash pattern (spec/commit_record_v0.md §7, rule 3a).
        const flags = logEnd > host.logDurableEnd ? RECORD_FLAG_UNSYNCED_BEFORE : 0;
        // The pages section tells other handles which cached pages went stale and
        // how the free pages changed (spec/commit_record_v0.md, spec/concurrency_v0.md §5).
        const section = {
          pageCount: this.#pageCount,
          entryCount: tree.entryCount,
          depth: tree.depth,
          written: ids,
          freed: tree.freedCommitted,
          freedYoung: tree.freedYoung,
        };
        recordPosition = log.append(this.#record.seal(prev, tree.root, pager.kernels, flags, section));
        recordEnd = log.end;
        // commitAsync: the log sync runs on the thread pool while this thread writes the pages.
        if (syncs && deferSync) host.startLogSync();
      } else {
        recordPosition = this.#replaying.position;
        recordEnd = this.#replaying.end;
      }
      // 2. Seal every dirty page with the new txn id; 3. write them to free pages of the
      //    data file, unsynced: nothing durable points at them until a checkpoint, and
      //    the log rebuilds them (spec §8.3); nothing reads them before step 5.
      const pages = ids.map((id) => tree.dirty.get(id)!);
      for (const p of pages) {
        writePageTxnId(p, txnId);
        pager.kernels.pageSeal(p);
      }
      failpoint('beforePageWrite');
      pager.writePages(ids, pages);
      failpoint('afterPageWrite');
      pager.extendTo(this.#pageCount * pager.pageSize);
      // 4. commit(): one fdatasync of the log, the commit point.
      if (syncs && !deferSync) log.datasync();
      const durable = !(syncs && deferSync);
      // 5. Publish.
      host.committed(
        {
          state: {
            txnId,
            root: tree.root,
            depth: tree.depth,
            entryCount: tree.entryCount,
            pageCount: this.#pageCount,
            recordPosition,
            logEnd: recordEnd,
          },
          freed: tree.freedCommitted,
          freedYoung: tree.freedYoung,
          reusable: tree.reusable,
          dirty: tree.dirty,
          opCount: this.#replaying === null ? this.#record.opCount : 0,
        },
        durable,
      );
      this.#finish('committed', deferSync);
      failpoint('afterCommitPublish');
      return txnId;
    } catch (err) {
      const e = asIoError(err, 'commit failed');
      if (appended) {
        // The record may be partly or wholly in the log: cut it off, or, if even
        // that fails, refuse writes until reopen decides from the log itself.
        try {
          log.truncateTail(logEnd);
        } catch {
          host.poison(e);
        }
      }
      this.#rollback();
      this.#finish('failed');
      throw e;
    }
  }

  #allocate(): number {
    const id = this.#host.freeList.take();
    if (id !== undefined) {
      this.#taken.push(id);
      return id;
    }
    return this.#pageCount++;
  }

  /** Returns every page id this transaction took; pages past the old end are simply unused. */
  #rollback(): void {
    this.#host.freeList.giveBack(this.#taken);
    this.#taken.length = 0;
  }

  /** `deferSync`: commitAsync's, whose checkpoint, if one is due, syncs on the thread pool. */
  #finish(state: 'committed' | 'aborted' | 'failed', deferSync = false): void {
    this.#state = state;
    this.#host.writerDone(deferSync);
  }

  /** A tree change failed half-way: the transaction is fit only for abort. */
  #broke(err: unknown): unknown {
    this.#broken = err;
    return err;
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new NorthstarError('Closed', `write transaction is ${this.#state}`);
    this.#host.checkOpen();
  }

  /** @internal Applies one decoded op during recovery (no record is built). */
  applyReplayed(type: number, key: Uint8Array, value: Uint8Array): void {
    if (type === 0) this.#tree.put(key, value);
    else this.#tree.del(key);
  }
}
