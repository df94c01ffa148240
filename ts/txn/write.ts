// The single write transaction. Changes live in dirty pages (ts/btree/writer.ts)
// until commit() writes them in the order of spec §8.

import { NorthstarError } from '../errors.js';
import { ScanIterator, type ScanHost } from '../btree/cursor.js';
import { treeGet } from '../btree/read.js';
import { TreeWriter } from '../btree/writer.js';
import { PageType } from '../format/constants.js';
import { initPageHeader, writePageTxnId } from '../format/page.js';
import { FREELIST_ENTRIES_OFFSET, FREELIST_ENTRY_SIZE, HEADER_SIZE } from '../format/constants.js';
import { freelistCapacity, writeFreelistPage, type FreeList } from '../pager/freelist.js';
import { encodeMeta, metaSlot, type Meta } from '../pager/meta.js';
import type { Pager } from '../pager/pager.js';
import { toKey, toRange, toValue, type Bytes, type ScanOptions } from './args.js';

/** What the write transaction needs from its database. */
export interface WriteHost {
  readonly pager: Pager;
  readonly meta: Meta;
  readonly freeList: FreeList;
  /** Pages of the committed freelist chain. */
  readonly freelistPages: readonly number[];
  readonly sync: 'full' | 'none';
  readonly maxKeySize: number;
  checkOpen(): void;
  /** Makes commit `meta` the latest snapshot. Called only after the meta is written (and synced). */
  publish(meta: Meta, freelistPages: number[], dirty: ReadonlyMap<number, Buffer>, freed: readonly number[], reusable: readonly number[]): void;
  /** Releases the writer slot; called exactly once per transaction. */
  writerDone(): void;
  /** The file's durable state is unknown: refuse writes until reopen. */
  poison(err: NorthstarError): void;
}

export class WriteTxn implements Disposable {
  private readonly tree: TreeWriter;
  private state: 'open' | 'committed' | 'aborted' | 'failed' = 'open';
  /** Page ids taken from the database's free list (given back on abort). */
  private readonly taken: number[] = [];
  private pageCount: number;
  private broken: unknown = null;

  constructor(private readonly host: WriteHost) {
    const m = host.meta;
    this.pageCount = m.pageCount;
    this.tree = new TreeWriter(host.pager, m.root, m.depth, m.entryCount, () => this.allocate());
  }

  /** The txn id this transaction commits as. */
  get txnId(): number {
    return this.host.meta.txnId + 1;
  }

  put(key: Bytes, value: Bytes): void {
    this.checkOpen();
    const k = toKey(key, this.host.maxKeySize);
    const v = toValue(value);
    try {
      this.tree.put(k, v);
    } catch (err) {
      throw this.broke(err);
    }
  }

  /** Deletes key; returns whether it existed. */
  del(key: Bytes): boolean {
    this.checkOpen();
    const k = toKey(key, this.host.maxKeySize);
    try {
      return this.tree.del(k);
    } catch (err) {
      throw this.broke(err);
    }
  }

  /** Reads through this transaction's own changes. */
  get(key: Bytes): Buffer | undefined {
    this.checkOpen();
    return treeGet(this.tree, this.tree.root, toKey(key, this.host.maxKeySize));
  }

  /**
   * Scans this transaction's view. Changing the transaction while a scan is
   * open is allowed: the scan continues after the last key it returned.
   */
  scan(options?: ScanOptions): IterableIterator<[Buffer, Buffer]> {
    this.checkOpen();
    const host: ScanHost = {
      checkOpen: () => this.checkOpen(),
      source: () => this.tree,
      root: () => this.tree.root,
      version: () => this.tree.version,
    };
    return new ScanIterator(host, toRange(options));
  }

  /**
   * Makes the changes durable (sync 'full') and visible; returns the new txn id.
   * A transaction without changes commits nothing and returns the current txn id.
   * On failure nothing is visible, the database stays usable at its last commit
   * (or, after a failure writing the meta, refuses writes until reopened).
   */
  commit(): number {
    this.checkOpen();
    if (this.broken !== null) {
      this.abort();
      throw new NorthstarError('InvalidArgument', 'transaction failed earlier and was aborted', { cause: this.broken });
    }
    const host = this.host;
    const tree = this.tree;
    if (!tree.changed) {
      this.finish('committed');
      return host.meta.txnId;
    }
    const pager = host.pager;
    const txnId = this.txnId;
    let metaStarted = false;
    try {
      // 1. The freelist chain for the new state (spec §6): the old chain's pages are freed by this commit.
      const freed = tree.freedCommitted.concat(host.freelistPages);
      const chain = this.writeFreelist(txnId, freed);
      // 2. Seal every dirty page with the new txn id.
      const ids = [...tree.dirty.keys()].sort((a, b) => a - b);
      const pages = ids.map((id) => tree.dirty.get(id)!);
      for (const p of pages) {
        writePageTxnId(p, txnId);
        pager.kernels.pageSeal(p);
      }
      // 3. Write them; 4. make them durable before any meta can point at them.
      pager.writePages(ids, pages);
      // The file must hold pageCount pages before a meta records it (spec §3, rule 2):
      // pages allocated at the end and freed again by this transaction are never written.
      const end = this.pageCount * pager.pageSize;
      if (pager.file.size() < end) pager.file.truncate(end);
      if (host.sync === 'full') pager.file.datasync();
      // 5. Write meta T mod 2; 6. make it durable.
      const meta: Meta = {
        pageSize: pager.pageSize,
        txnId,
        root: tree.root,
        freelist: chain[0] ?? 0,
        logTail: host.meta.logTail,
        pageCount: this.pageCount,
        entryCount: tree.entryCount,
        depth: tree.depth,
      };
      metaStarted = true;
      pager.file.write(encodeMeta(meta, metaSlot(txnId), pager.kernels), metaSlot(txnId) * pager.pageSize);
      if (host.sync === 'full') pager.file.datasync();
      // 7. Publish.
      host.publish(meta, chain, tree.dirty, freed, tree.reusable);
      this.finish('committed');
      return txnId;
    } catch (err) {
      const e = err instanceof NorthstarError ? err : new NorthstarError('IoError', `commit failed: ${String(err)}`, { cause: err });
      if (metaStarted) host.poison(e);
      this.rollback();
      this.finish('failed');
      throw e;
    }
  }

  /** Discards every change. Safe to call after commit (no-op). */
  abort(): void {
    if (this.state !== 'open') return;
    this.rollback();
    this.finish('aborted');
  }

  [Symbol.dispose](): void {
    this.abort();
  }

  get isClosed(): boolean {
    return this.state !== 'open';
  }

  // ---- internals -----------------------------------------------------------

  private allocate(): number {
    const id = this.host.freeList.take();
    if (id !== undefined) {
      this.taken.push(id);
      return id;
    }
    return this.pageCount++;
  }

  /** Returns every page id this transaction took; pages past the old end are simply unused. */
  private rollback(): void {
    this.host.freeList.giveBack(this.taken);
    this.taken.length = 0;
  }

  private finish(state: 'committed' | 'aborted' | 'failed'): void {
    this.state = state;
    this.host.writerDone();
  }

  /**
   * Builds the freelist chain listing every free and pending page after this
   * commit (spec §6). Its own pages are allocated first, which can only shrink
   * the list; a chain page may end up with spare room.
   */
  private writeFreelist(txnId: number, freed: readonly number[]): number[] {
    const host = this.host;
    const tree = this.tree;
    const pageSize = host.pager.pageSize;
    const cap = freelistCapacity(pageSize);
    const chain: number[] = [];
    const entryCount = (): number => host.freeList.freeCount + host.freeList.pendingCount + tree.reusable.length + freed.length;
    while (chain.length * cap < entryCount()) chain.push(tree.reusable.pop() ?? this.allocate());
    const entries: Array<[number, number]> = host.freeList.entries();
    for (const id of tree.reusable) entries.push([id, 0]);
    for (const id of freed) entries.push([id, txnId]);
    let from = 0;
    for (let j = 0; j < chain.length; j++) {
      const page = Buffer.alloc(pageSize);
      const n = Math.min(cap, entries.length - from);
      initPageHeader(page, PageType.Freelist, chain[j]!, FREELIST_ENTRIES_OFFSET - HEADER_SIZE + n * FREELIST_ENTRY_SIZE);
      from += writeFreelistPage(page, j + 1 < chain.length ? chain[j + 1]! : 0, entries, from);
      tree.dirty.set(chain[j]!, page);
    }
    return chain;
  }

  /** A tree change failed half-way: the transaction is fit only for abort. */
  private broke(err: unknown): unknown {
    this.broken = err;
    return err;
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new NorthstarError('Closed', `write transaction is ${this.state}`);
    this.host.checkOpen();
  }
}
