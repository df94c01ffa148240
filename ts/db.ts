// The database handle: opens the file, owns the pager, the free list and the
// snapshot registry, and hands out transactions (API contract: README "API").

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { ErrorCode, NorthstarError } from './errors.js';
import { DEFAULT_PAGE_SIZE, PAGE_SIZES, PageType, META_PAGE_A, META_PAGE_B } from './format/constants.js';
import { maxKeySize, pageTypeOf } from './format/page.js';
import { createFileAtomically, NodeFile, type DbFile, type IoStats } from './io/file.js';
import { implementation, kernels, type Implementation, type Kernels } from './native/kernels.js';
import { FreeList, readFreelistPage } from './pager/freelist.js';
import { chooseMeta, emptyMeta, encodeMeta, type Meta } from './pager/meta.js';
import { Pager } from './pager/pager.js';
import type { PageSource } from './btree/read.js';
import { verifyDatabase, type VerifyReport } from './btree/verify.js';
import { ReadTxn, type ReadHost } from './txn/read.js';
import { WriteTxn, type WriteHost } from './txn/write.js';

export type SyncMode = 'full' | 'none';

export interface OpenOptions {
  /** Page size for a new file: 4096, 8192, 16384 (default) or 32768. An existing file keeps its own. */
  pageSize?: number;
  /** 'full' (default): each commit is durable when commit() returns. 'none': no fdatasync (tests, bulk loads). */
  sync?: SyncMode;
  /** Bytes of page data the page cache holds at most (default 256 MiB; never fewer than 16 pages). */
  cacheSize?: number;
}

export interface BeginReadOptions {
  /** Snapshot of this commit. Only the latest commit is available until the commit log lands. */
  txnId?: number;
}

export interface DatabaseStats {
  implementation: Implementation;
  path: string;
  pageSize: number;
  sync: SyncMode;
  txnId: number;
  entries: number;
  depth: number;
  /** Pages the committed state spans (file high-water mark). */
  pageCount: number;
  fileSize: number;
  freePages: number;
  /** Pages freed by commits that live snapshots may still read. */
  pendingPages: number;
  freelistPages: number;
  maxKeySize: number;
  readers: { live: number; oldestTxnId: number | null };
  writer: boolean;
  cache: { limitBytes: number; capacityPages: number; pages: number; hits: number; misses: number; evictions: number };
  io: IoStats;
}

export const DEFAULT_CACHE_SIZE = 256 * 1024 * 1024;

/** Paths open in this process: a second handle would corrupt the file. */
const openPaths = new Set<string>();

export class Database implements WriteHost, ReadHost, Disposable {
  readonly path: string;
  readonly sync: SyncMode;
  readonly pager: Pager;
  readonly maxKeySize: number;
  readonly source: PageSource;
  meta: Meta;
  freeList: FreeList;
  freelistPages: number[];
  private readonly file: DbFile;
  private readonly cacheBytes: number;
  private readonly readers = new Map<number, number>();
  private liveReaders = 0;
  private writer: WriteTxn | null = null;
  private closed = false;
  private poisoned: NorthstarError | null = null;

  private constructor(path: string, file: DbFile, meta: Meta, sync: SyncMode, cacheBytes: number, k: Kernels) {
    this.path = path;
    this.file = file;
    this.meta = meta;
    this.sync = sync;
    this.cacheBytes = cacheBytes;
    this.pager = new Pager(file, meta.pageSize, k, cacheBytes);
    this.maxKeySize = maxKeySize(meta.pageSize);
    const pager = this.pager;
    this.source = {
      kernels: k,
      pageSize: meta.pageSize,
      path,
      page: (id) => pager.read(id),
      overflowPage: (id) => pager.readUncached(id),
    };
    const { list, chain } = loadFreeList(pager, meta);
    this.freeList = list;
    this.freelistPages = chain;
  }

  /** Opens (creating if missing) the database at path. */
  static open(path: string, options: OpenOptions = {}): Database {
    if (typeof path !== 'string' || path.length === 0) throw new NorthstarError('InvalidArgument', 'path must be a non-empty string');
    const opts = checkOptions(options);
    const abs = nodePath.resolve(path);
    if (openPaths.has(abs)) {
      throw new NorthstarError('InvalidArgument', `${path} is already open in this process; share the handle`, { path });
    }
    if (!fs.existsSync(abs)) {
      const first = emptyMeta(opts.pageSize);
      const image = new Uint8Array(opts.pageSize * 2);
      image.set(encodeMeta(first, META_PAGE_A, kernels), 0);
      image.set(encodeMeta(first, META_PAGE_B, kernels), opts.pageSize);
      createFileAtomically(abs, image);
    }
    const file = NodeFile.open(abs);
    try {
      const { meta } = chooseMeta(file, kernels);
      const db = new Database(abs, file, meta, opts.sync, opts.cacheSize, kernels);
      openPaths.add(abs);
      return db;
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** The latest committed txn id. */
  get txnId(): number {
    return this.meta.txnId;
  }

  /** Snapshot of the latest commit. */
  beginRead(options: BeginReadOptions = {}): ReadTxn {
    this.checkOpen();
    const meta = this.meta;
    if (options.txnId !== undefined && options.txnId !== meta.txnId) {
      throw new NorthstarError('SnapshotNotFound', `snapshot ${options.txnId} is not retained (latest is ${meta.txnId})`);
    }
    this.readers.set(meta.txnId, (this.readers.get(meta.txnId) ?? 0) + 1);
    this.liveReaders++;
    return new ReadTxn(this, meta.txnId, meta.root);
  }

  /** The write transaction; a second live one → WriteBusy. */
  beginWrite(): WriteTxn {
    this.checkOpen();
    if (this.poisoned) throw new NorthstarError('IoError', `writes refused until reopen: ${this.poisoned.message}`, { cause: this.poisoned });
    if (this.writer) throw new NorthstarError('WriteBusy', 'another write transaction is live');
    this.freeList.release(this.oldestLiveSnapshot());
    const w = new WriteTxn(this);
    this.writer = w;
    return w;
  }

  stats(): DatabaseStats {
    this.checkOpen();
    const c = this.pager.cache;
    let oldest: number | null = null;
    for (const t of this.readers.keys()) if (oldest === null || t < oldest) oldest = t;
    return {
      implementation,
      path: this.path,
      pageSize: this.meta.pageSize,
      sync: this.sync,
      txnId: this.meta.txnId,
      entries: this.meta.entryCount,
      depth: this.meta.depth,
      pageCount: this.meta.pageCount,
      fileSize: this.file.size(),
      freePages: this.freeList.freeCount,
      pendingPages: this.freeList.pendingCount,
      freelistPages: this.freelistPages.length,
      maxKeySize: this.maxKeySize,
      readers: { live: this.liveReaders, oldestTxnId: oldest },
      writer: this.writer !== null,
      cache: { limitBytes: this.cacheBytes, capacityPages: c.capacity, pages: c.size, hits: c.hits, misses: c.misses, evictions: c.evictions },
      io: { ...this.file.stats },
    };
  }

  /** Walks the whole file and reports every problem found (spec §4.5). */
  verify(): VerifyReport {
    this.checkOpen();
    return verifyDatabase(this.pager, this.meta);
  }

  /** Aborts a live writer, ends every reader and closes the file. */
  close(): void {
    if (this.closed) return;
    this.writer?.abort();
    this.closed = true;
    openPaths.delete(this.path);
    this.pager.cache.clear();
    this.file.close();
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
    if (n <= 1) this.readers.delete(txnId);
    else this.readers.set(txnId, n - 1);
    this.liveReaders--;
  }

  publish(meta: Meta, chain: number[], dirty: ReadonlyMap<number, Buffer>, freed: readonly number[], reusable: readonly number[]): void {
    this.meta = meta;
    this.freelistPages = chain;
    const cache = this.pager.cache;
    for (const [id, page] of dirty) {
      const t = pageTypeOf(page);
      if (t === PageType.Leaf || t === PageType.Branch) cache.put(id, page);
      else cache.delete(id);
    }
    this.freeList.giveBack(reusable);
    this.freeList.addPending(meta.txnId, freed);
  }

  writerDone(): void {
    this.writer = null;
  }

  poison(err: NorthstarError): void {
    this.poisoned = err;
  }

  /** The oldest txn id any live snapshot (or the writer's base) can read. */
  private oldestLiveSnapshot(): number {
    let oldest = this.meta.txnId;
    for (const t of this.readers.keys()) if (t < oldest) oldest = t;
    return oldest;
  }
}

function checkOptions(options: OpenOptions): { pageSize: number; sync: SyncMode; cacheSize: number } {
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
  return { pageSize, sync, cacheSize };
}

/** Reads the freelist chain of the chosen meta: all of it is reusable at open (spec §6.1). */
function loadFreeList(pager: Pager, meta: Meta): { list: FreeList; chain: number[] } {
  const ids: number[] = [];
  const chain: number[] = [];
  const seen = new Set<number>();
  let id = meta.freelist;
  while (id !== 0) {
    if (id < 2 || id >= meta.pageCount || seen.has(id)) {
      throw new NorthstarError('Corrupt', `${pager.file.path}: freelist chain reaches invalid page ${id}`, { pageId: id, path: pager.file.path });
    }
    seen.add(id);
    chain.push(id);
    const page = pager.readUncached(id);
    const body = pageTypeOf(page) === PageType.Freelist ? readFreelistPage(page) : null;
    if (body === null) throw new NorthstarError('Corrupt', `${pager.file.path}: page ${id} is not a valid freelist page`, { pageId: id, path: pager.file.path });
    for (const f of body.ids) {
      if (f < 2 || f >= meta.pageCount) {
        throw new NorthstarError('Corrupt', `${pager.file.path}: freelist page ${id} lists invalid page ${f}`, { pageId: id, path: pager.file.path });
      }
      ids.push(f);
    }
    id = body.next;
  }
  return { list: FreeList.fromEntries(ids), chain };
}

/** Opens (creating if missing) the database at path. */
export function open(path: string, options?: OpenOptions): Database {
  return Database.open(path, options);
}
