// Range scans (spec §4.6): a cursor keeps the path from the root instead of
// leaf sibling links. Each step yields caller-owned copies of key and value.

import { LEAF_CELL_HEADER, LEAF_CELL_VLEN, MAX_TREE_DEPTH, NODE_CELL_START_OFFSET, PageType, VALUE_OVERFLOW_BIT } from '../format/constants.js';
import { bufferView, compareBytes, readU32 } from '../format/bytes.js';
import { childTxnAt, nodeCount, pageTypeOf, slotOffset } from '../format/page.js';
import { childOf, corrupt, leafValue, nodePage, type PageSource } from './read.js';

/** Normalised scan bounds: keys k with lower <(=) k <(=) upper. */
export interface ScanRange {
  lower: Uint8Array | undefined;
  lowerInclusive: boolean;
  upper: Uint8Array | undefined;
  upperInclusive: boolean;
  reverse: boolean;
  limit: number;
}

/** What the cursor needs from its transaction on every step. */
export interface ScanHost {
  /** Throws Closed when the transaction has ended. */
  checkOpen(): void;
  /** Page source and root as of now. */
  source(): PageSource;
  root(): number;
  /** Txn id that wrote the root page (the snapshot's own txn: spec §4.5, rule 13). */
  rootTxn(): number;
  /** Changes whenever the transaction's tree changes (write transactions); constant for readers. */
  version(): number;
  /**
   * True when the tree never changes under the scan (a read transaction):
   * it never re-seeks, so it keeps no copy of the last key it returned.
   */
  readonly fixed?: boolean;
}

/** Smallest key greater than every key with this prefix, or undefined (all 0xFF). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  let i = prefix.length - 1;
  while (i >= 0 && prefix[i] === 0xff) i--;
  if (i < 0) return undefined;
  const end = new Uint8Array(prefix.subarray(0, i + 1)); // a copy: Buffer#slice would alias the caller's bytes
  end[i]! += 1;
  return end;
}

function keyCmp(page: Uint8Array, i: number, key: Uint8Array): number {
  const o = slotOffset(page, i);
  return compareBytes(page, o + LEAF_CELL_HEADER, page[o]! | (page[o + 1]! << 8), key);
}

export class ScanIterator implements IterableIterator<[Buffer, Buffer]> {
  /** Path from the root: page bytes, ids and the child (branch) or cell (leaf) index. */
  private readonly pages: Uint8Array[] = [];
  private readonly ids: number[] = [];
  private readonly idx: number[] = [];
  private started = false;
  private done = false;
  private emitted = 0;
  /**
   * Private copy of the last key returned, where a re-seek resumes: the returned
   * buffer belongs to the caller, who may change it. Reused across steps.
   */
  private lastKey = new Uint8Array(64);
  private lastKeyLength = -1;
  private seenVersion = 0;
  private copiedLeaf: Uint8Array | null = null;
  private copy: ArrayBuffer | null = null;
  private copyBase = 0;

  constructor(
    private readonly host: ScanHost,
    private readonly range: ScanRange,
  ) {}

  [Symbol.iterator](): this {
    return this;
  }

  return(): IteratorResult<[Buffer, Buffer]> {
    this.finish();
    return { value: undefined, done: true };
  }

  next(): IteratorResult<[Buffer, Buffer]> {
    if (this.done) return { value: undefined, done: true };
    this.host.checkOpen();
    if (this.emitted >= this.range.limit) return this.finish();
    if (!this.started || this.host.version() !== this.seenVersion) this.seek();
    const src = this.host.source();
    const ok = this.range.reverse ? this.toPrev(src) : this.toNext(src);
    if (!ok) return this.finish();
    const d = this.pages.length - 1;
    const leaf = this.pages[d]!;
    const i = this.idx[d]!;
    const r = this.range;
    if (!r.reverse && r.upper !== undefined) {
      const c = keyCmp(leaf, i, r.upper);
      if (c > 0 || (c === 0 && !r.upperInclusive)) return this.finish();
    }
    if (r.reverse && r.lower !== undefined) {
      const c = keyCmp(leaf, i, r.lower);
      if (c < 0 || (c === 0 && !r.lowerInclusive)) return this.finish();
    }
    const [key, value] = this.entry(src, leaf, i);
    this.idx[d] = r.reverse ? i - 1 : i + 1;
    this.emitted++;
    if (this.host.fixed !== true) {
      if (this.lastKey.length < key.length) this.lastKey = new Uint8Array(key.length);
      this.lastKey.set(key);
      this.lastKeyLength = key.length;
    }
    return { value: [key, value], done: false };
  }

  /**
   * Caller-owned copies of cell i: views into one private copy of the leaf's
   * cell area, made when the cursor first yields from that leaf (one copy per
   * leaf instead of two per row; measured ~2x faster on 1,000-row scans).
   */
  private entry(src: PageSource, leaf: Uint8Array, i: number): [Buffer, Buffer] {
    if (this.copiedLeaf !== leaf) {
      const base = readU32(leaf, NODE_CELL_START_OFFSET);
      const copy = new Uint8Array(leaf.length - base);
      copy.set(leaf.subarray(base));
      this.copiedLeaf = leaf;
      this.copy = copy.buffer;
      this.copyBase = base;
    }
    const o = slotOffset(leaf, i);
    const klen = leaf[o]! | (leaf[o + 1]! << 8);
    const vlen = readU32(leaf, o + LEAF_CELL_VLEN);
    const k = o + LEAF_CELL_HEADER - this.copyBase;
    const key = bufferView(this.copy!, k, klen);
    if (vlen < VALUE_OVERFLOW_BIT) return [key, bufferView(this.copy!, k + klen, vlen)];
    return [key, leafValue(src, leaf, i)];
  }

  /** Adds a page to the path; a path deeper than any real tree is a cycle in the file. */
  private push(src: PageSource, p: Uint8Array, id: number): void {
    if (this.pages.length >= MAX_TREE_DEPTH) throw corrupt(src, id, `tree deeper than ${MAX_TREE_DEPTH} levels (a cycle)`);
    this.pages.push(p);
    this.ids.push(id);
  }

  private finish(): IteratorResult<[Buffer, Buffer]> {
    this.done = true;
    this.pages.length = 0;
    return { value: undefined, done: true };
  }

  /**
   * Positions the path at the first candidate: the range start, or just past the
   * last key returned when the tree changed under a write transaction's scan.
   */
  private seek(): void {
    this.started = true;
    this.seenVersion = this.host.version();
    this.copiedLeaf = null;
    this.pages.length = 0;
    this.ids.length = 0;
    this.idx.length = 0;
    const r = this.range;
    const root = this.host.root();
    if (root === 0) {
      this.done = true;
      return;
    }
    let key: Uint8Array | undefined;
    let inclusive: boolean;
    if (this.lastKeyLength >= 0) {
      key = this.lastKey.subarray(0, this.lastKeyLength);
      inclusive = false;
    } else if (r.reverse) {
      key = r.upper;
      inclusive = r.upperInclusive;
    } else {
      key = r.lower;
      inclusive = r.lowerInclusive;
    }
    const src = this.host.source();
    const k = src.kernels;
    let id = root;
    let txn = this.host.rootTxn();
    for (;;) {
      const p = nodePage(src, id, txn);
      this.push(src, p, id);
      if (pageTypeOf(p) === PageType.Branch) {
        const c = key === undefined ? (r.reverse ? nodeCount(p) : 0) : k.branchSearch(p, key);
        this.idx.push(c);
        id = childOf(src, p, id, c);
        txn = childTxnAt(p, c);
        continue;
      }
      let i: number;
      if (key === undefined) i = r.reverse ? nodeCount(p) - 1 : 0;
      else {
        const s = k.leafSearch(p, key);
        const found = (s & 1) === 1;
        i = s >>> 1;
        if (r.reverse) i = found && inclusive ? i : i - 1;
        else if (found && !inclusive) i++;
      }
      this.idx.push(i);
      return;
    }
  }

  /** Moves the path forward to a leaf cell that exists; false at the end of the tree. */
  private toNext(src: PageSource): boolean {
    if (this.done || this.pages.length === 0) return false;
    let d = this.pages.length - 1;
    if (this.idx[d]! < nodeCount(this.pages[d]!)) return true;
    // Climb to the first ancestor with a child to the right, then descend leftmost.
    for (;;) {
      d--;
      if (d < 0) return false;
      const c = this.idx[d]! + 1;
      if (c <= nodeCount(this.pages[d]!)) {
        this.idx[d] = c;
        break;
      }
    }
    this.pages.length = d + 1;
    this.ids.length = d + 1;
    this.idx.length = d + 1;
    let id = childOf(src, this.pages[d]!, this.ids[d]!, this.idx[d]!);
    let txn = childTxnAt(this.pages[d]!, this.idx[d]!);
    for (;;) {
      const p = nodePage(src, id, txn);
      this.push(src, p, id);
      this.idx.push(0);
      if (pageTypeOf(p) !== PageType.Branch) break;
      id = childOf(src, p, id, 0);
      txn = childTxnAt(p, 0);
    }
    return this.toNext(src);
  }

  /** Moves the path backward to a leaf cell that exists; false at the start of the tree. */
  private toPrev(src: PageSource): boolean {
    if (this.done || this.pages.length === 0) return false;
    let d = this.pages.length - 1;
    if (this.idx[d]! >= 0) return true;
    for (;;) {
      d--;
      if (d < 0) return false;
      const c = this.idx[d]! - 1;
      if (c >= 0) {
        this.idx[d] = c;
        break;
      }
    }
    this.pages.length = d + 1;
    this.ids.length = d + 1;
    this.idx.length = d + 1;
    let id = childOf(src, this.pages[d]!, this.ids[d]!, this.idx[d]!);
    let txn = childTxnAt(this.pages[d]!, this.idx[d]!);
    for (;;) {
      const p = nodePage(src, id, txn);
      this.push(src, p, id);
      if (pageTypeOf(p) !== PageType.Branch) {
        this.idx.push(nodeCount(p) - 1);
        break;
      }
      const c = nodeCount(p);
      this.idx.push(c);
      id = childOf(src, p, id, c);
      txn = childTxnAt(p, c);
    }
    return this.toPrev(src);
  }
}
