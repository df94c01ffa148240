// Pages in and out of the database file (spec §2, §8, §9). Every page read
// from the file is verified before its bytes are trusted; verified pages are
// cached. Callers check the page type they expected.

import { NorthstarError } from '../errors.js';
import { BRANCH_CELL_HEADER, LEAF_CELL_HEADER, NODE_CELL_START_OFFSET, NODE_COUNT_OFFSET, PageStatus, PageType, TYPE_OFFSET } from '../format/constants.js';
import { readU16, readU32 } from '../format/bytes.js';
import type { DbFile } from '../io/file.js';
import type { Kernels } from '../native/kernels.js';
import { PageCache } from './cache.js';
import { buildHints, hintedBranchSearch, hintedLeafSearch } from './hints.js';
import { PageMap, type PageMapping } from './map.js';

const STATUS_NAMES: Record<number, string> = {
  [PageStatus.BadMagic]: 'bad magic',
  [PageStatus.BadHeaderChecksum]: 'header checksum mismatch',
  [PageStatus.UnsupportedVersion]: 'unsupported page format version',
  [PageStatus.BadPageType]: 'unknown page type',
  [PageStatus.WrongPageId]: 'page id does not match its position',
  [PageStatus.BadPayloadLength]: 'payload length out of range',
  [PageStatus.BadPageChecksum]: 'page checksum mismatch',
};

export function pageStatusName(status: number): string {
  return STATUS_NAMES[status] ?? `status ${status}`;
}

/** Most spare page buffers kept for the writer's copies (4 MiB at 16 KiB pages). */
const POOL_PAGES = 256;

/** Marks a cached node that keeps no hints. */
const NO_HINTS = new Uint32Array(0);
/** Searches of a cached node before it gets hints (spec §9.2). */
const HINT_AFTER_SEARCHES = 4;

export class Pager {
  readonly cache: PageCache;
  /** Bytes the data file is known to reach (this pager wrote or found them; the file never shrinks: §9.3). */
  private reach = 0;
  /** buildHints' allocator: the cache's spare hint arrays first. */
  private readonly takeHints = (words: number): Uint32Array => this.cache.takeHints(words);
  /** Read-only mapping of the file the pages are viewed in, or null: pread into a new buffer per page. */
  readonly map: PageMap | null;
  /** nodeDecode output for layout checks: four u32 per cell, enough for any node of this page size. */
  private readonly decodeScratch: Uint32Array;

  constructor(
    readonly file: DbFile,
    readonly pageSize: number,
    readonly kernels: Kernels,
    cacheBytes: number,
    /** Where page bytes come from without a pread (spec §9.3): the file's descriptor and the addon's FileMapping, when mapping. */
    mapping: PageMapping | null = null,
  ) {
    this.cache = new PageCache(Math.max(16, Math.floor(cacheBytes / pageSize)));
    this.map = mapping === null ? null : new PageMap(mapping.fd, pageSize, mapping.Mapping);
    this.decodeScratch = new Uint32Array(4 * Math.ceil(pageSize / 2));
  }

  /**
   * The verified bytes of page `id`, from the cache or the file. The buffer is
   * shared and must never be modified; it stays valid after eviction.
   */
  read(id: number): Uint8Array {
    const hit = this.cache.get(id);
    if (hit !== undefined) return hit;
    const page = this.readUncached(id);
    this.cache.put(id, page);
    return page;
  }

  /** Spare page buffers: written pages whose cache entry is now a view of the mapped file (§9.3). */
  private readonly pool: Buffer[] = [];

  /** A page buffer for the writer to fill, recycled when one is spare (its bytes are garbage). */
  takePage(): Buffer {
    return this.pool.pop() ?? Buffer.allocUnsafeSlow(this.pageSize);
  }

  /**
   * After a commit wrote page `id` from `page` (a buffer no one else holds):
   * caches a view of the mapped file in its place and keeps `page` for
   * takePage(); without a mapping, or when the mapping cannot show the page,
   * caches `page` itself. Branches and leaves only; others are dropped.
   */
  cacheWritten(id: number, page: Buffer): void {
    const t = page[TYPE_OFFSET];
    if (t !== PageType.Leaf && t !== PageType.Branch) {
      this.cache.delete(id);
      return;
    }
    const view = this.map === null ? null : this.map.page(id);
    if (view === null) {
      this.cache.put(id, page);
      return;
    }
    this.cache.put(id, view, page);
    if (this.pool.length < POOL_PAGES) this.pool.push(page);
  }

  /** The page type of the page readNode() returned last. */
  nodeType = 0;

  /**
   * read(id) when txn `txn` wrote it and it is a branch or leaf, else null
   * (the caller names the problem from the bytes: ts/btree/read.ts nodePage).
   * Checks the header fields the cache noted at put, so the page's own header
   * line is not touched on a hit (spec §9.1).
   */
  readNode(id: number, txn: number): Uint8Array | null {
    const p = this.read(id);
    const cache = this.cache;
    const s = cache.last; // read() leaves the slot of p there, on a hit and after a put
    const t = cache.types[s]!;
    if (cache.txns[s] !== txn || (t !== PageType.Leaf && t !== PageType.Branch)) return null;
    this.nodeType = t;
    return p;
  }

  /**
   * leafSearch(page, key) for a verified leaf page: through the page's search
   * hints when `page` is the one the last read() returned (spec §9.2), else
   * the kernel.
   */
  searchLeaf(page: Uint8Array, key: Uint8Array): number {
    const h = this.hintsOf(page, true);
    return h === undefined ? this.kernels.leafSearch(page, key) : hintedLeafSearch(page, h, key);
  }

  /** branchSearch(page, key), as searchLeaf for a verified branch page. */
  searchBranch(page: Uint8Array, key: Uint8Array): number {
    const h = this.hintsOf(page, false);
    return h === undefined ? this.kernels.branchSearch(page, key) : hintedBranchSearch(page, h, key);
  }

  /** An Int32Array over `page` if the last read() returned it (copyOutWords in ts/btree/read.ts); made once per cached page. */
  wordsOf(page: Uint8Array): Int32Array | undefined {
    const cache = this.cache;
    const s = cache.lastSlotOf(page);
    if (s < 0) return undefined;
    let w = cache.wordsAt(s);
    if (w === undefined) {
      if ((page.byteOffset & 3) !== 0 || (page.length & 3) !== 0) return undefined;
      w = new Int32Array(page.buffer, page.byteOffset, page.length >> 2);
      cache.setWords(s, w);
    }
    return w;
  }

  /**
   * Reads page `id` into the cache ahead of need when it is a branch or leaf,
   * with its search hints built now (a page read ahead replaces one that was
   * in use: spec/concurrency_v0.md §4.1). Throws as readUncached does.
   */
  readAhead(id: number): void {
    const page = this.readUncached(id);
    const t = page[TYPE_OFFSET];
    if (t !== PageType.Branch && t !== PageType.Leaf) return;
    const cache = this.cache;
    cache.put(id, page);
    this.buildHintsAt(cache.last, page, t === PageType.Leaf);
  }

  /** The hints of `page` if the last read() returned it and it is a node of that kind, built on its HINT_AFTER_SEARCHES-th search. */
  private hintsOf(page: Uint8Array, leaf: boolean): Uint32Array | undefined {
    const cache = this.cache;
    const s = cache.lastSlotOf(page);
    if (s < 0 || cache.types[s] !== (leaf ? PageType.Leaf : PageType.Branch)) return undefined;
    const h = cache.hintsAt(s);
    if (h !== undefined) return h === NO_HINTS ? undefined : h;
    // Built on a node's HINT_AFTER_SEARCHES-th search: a page read for a few
    // searches (cold reads) is searched faster by the kernel than hints are built.
    if (cache.countSearch(s) < HINT_AFTER_SEARCHES) return undefined;
    return this.buildHintsAt(s, page, leaf);
  }

  private buildHintsAt(s: number, page: Uint8Array, leaf: boolean): Uint32Array | undefined {
    // Nodes of more cells than a quarter of the page in 4-byte hints keep none.
    const built = readU16(page, NODE_COUNT_OFFSET) <= this.pageSize / 16 ? buildHints(page, leaf, this.takeHints) : NO_HINTS;
    this.cache.setHints(s, built);
    return built === NO_HINTS ? undefined : built;
  }

  /** Reads and verifies page `id` without caching it (overflow chains, verify). */
  readUncached(id: number): Uint8Array {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new NorthstarError('Corrupt', `${this.file.path}: reference to invalid page id ${id}`, { pageId: id, path: this.file.path });
    }
    // A view of the mapped file, or (no mapping, or past its end) a copy by pread.
    let page = this.map === null ? null : this.map.page(id);
    if (page === null) {
      page = Buffer.allocUnsafeSlow(this.pageSize);
      const n = this.file.read(page, id * this.pageSize);
      if (n !== this.pageSize) {
        throw new NorthstarError('Corrupt', `${this.file.path}: page ${id} lies beyond the end of the file`, { pageId: id, path: this.file.path });
      }
    }
    const status = this.kernels.pageVerify(page, id);
    if (status !== PageStatus.Ok) {
      throw new NorthstarError('Corrupt', `${this.file.path}: page ${id}: ${pageStatusName(status)}`, { pageId: id, path: this.file.path });
    }
    // A node whose checksums pass but whose cells point outside it (a crafted
    // file or a writer bug) is refused here, once per read from the file, so
    // the kernels never meet it on the hot path (they would throw RangeError).
    const t = page[TYPE_OFFSET];
    if (t === PageType.Leaf || t === PageType.Branch) {
      let problem: string | null = null;
      try {
        const count = this.kernels.nodeDecode(page, this.decodeScratch);
        // Cells lie in [cellStart, pageSize) (spec §4.1); the kernels only check the buffer's bounds.
        const cellStart = readU32(page, NODE_CELL_START_OFFSET);
        const header = t === PageType.Leaf ? LEAF_CELL_HEADER : BRANCH_CELL_HEADER;
        for (let i = 0; i < count && problem === null; i++) {
          if (this.decodeScratch[i * 4]! - header < cellStart) problem = `cell ${i} lies below the cell area`;
        }
      } catch (err) {
        problem = (err as Error).message;
      }
      if (problem !== null) {
        throw new NorthstarError('Corrupt', `${this.file.path}: page ${id}: bad node layout: ${problem}`, { pageId: id, path: this.file.path });
      }
    }
    return page;
  }

  /**
   * Writes sealed pages, one write each; pages[i] belongs to ids[i].
   *
   * Never a vectored write of a run: Linux sizes the page cache's folios by
   * the write that fills them, so one writev of a 4 MiB run leaves 4 MiB
   * folios, and every later rewrite of one page inside such a folio dirties
   * and writes back the whole folio. Measured on this project's machine
   * (ext4, Linux 6.18): 100-put commits on a freshly loaded 1M-key database
   * ran at 386-428/s with runs coalesced and 806-946/s with a write per page,
   * with fewer device bytes per commit. Bulk loads pay for it: coalescing
   * only runs of fresh pages (past the file's end) into writes of up to 8 or
   * 64 pages gave sorted loads of 1.6-1.9M and 1.8-2.3M keys/s against
   * 1.5-1.7M one page at a time, and 100-put commits afterwards 630-690/s and
   * 570-600/s against 790-800/s (one run each, in the same process, noisy):
   * the small random commits of the task queue come first. Spec
   * file_format_v1.md §8.1 step 2.
   */
  writePages(ids: readonly number[], pages: readonly Uint8Array[]): void {
    const size = this.pageSize;
    let end = this.reach;
    for (let i = 0; i < ids.length; i++) {
      const pos = ids[i]! * size;
      this.file.write(pages[i]!, pos);
      // A write past the end extends the file.
      if (pos + size > end) end = pos + size;
    }
    this.reach = end;
  }

  /**
   * Makes the file at least `bytes` long, never shorter. Asks the file its
   * size only when `bytes` lies past what this pager wrote or found: the size
   * is asked with fstat, which also reads the change time, and on Linux 6.13+
   * a read change time makes the next write dirty the inode, so the commit's
   * fdatasync of the log writes one more block (spec/file_format_v1.md §8.5).
   */
  extendTo(bytes: number): void {
    if (bytes <= this.reach) return;
    const size = this.file.size();
    if (size < bytes) this.file.truncate(bytes);
    this.reach = Math.max(size, bytes);
  }
}
