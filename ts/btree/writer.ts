// The write transaction's copy-on-write view of the tree (spec §4.7, §8).
//
// Contract: a page reachable from a committed root is never modified. The
// first change to such a page copies it to a newly allocated page id ("dirty");
// dirty pages are edited in place by the node kernels until commit seals and
// writes them. Ids allocated here are never visible to any snapshot before
// commit, so freeing one returns it to this transaction at once; a committed
// page freed here becomes pending at commit (spec §6.1).
//
// Child txn ids (spec §4.2, §4.5 rule 13): every page this transaction writes
// carries its txn id from the moment it is allocated (commit seals it with the
// same id), and whenever a parent is pointed at such a page its reference
// names that txn. Cells moved between nodes (split, merge, redistribution)
// keep the txn ids they carry.

import { compareBytes, readU64, writeU64 } from '../format/bytes.js';
import {
  HEADER_SIZE,
  NODE_SLOTS_OFFSET,
  OVERFLOW_DATA_OFFSET,
  OVERFLOW_NEXT_OFFSET,
  OVERFLOW_REF_PAGE,
  OVERFLOW_REF_SIZE,
  OVERFLOW_REF_TXN,
  PageType,
  SLOT_SIZE,
  VALUE_OVERFLOW_BIT,
  LEAF_CELL_HEADER,
  MAX_TREE_DEPTH,
} from '../format/constants.js';
import {
  appendLeafCell,
  branchFootprint,
  branchKeyLength,
  branchKeyOffset,
  cellFootprint,
  childAt,
  childTxnAt,
  initNode,
  initPageHeader,
  inlineFootprint,
  leafKeyLength,
  leafKeyOffset,
  leafVlenField,
  maxInlineFootprint,
  nodeCount,
  nodeUsed,
  pageTxnId,
  pageTypeOf,
  setChildAt,
  slotOffset,
  writePageId,
  writePageTxnId,
} from '../format/page.js';
import type { Kernels } from '../native/kernels.js';
import type { Pager } from '../pager/pager.js';
import { checkWrittenBy, corrupt, findLeaf, leafGet, leafKey, nodePage, treeGet, type PageSource } from './read.js';

/** Hands out page ids for new pages (free list first, then the end of the file). */
export type AllocatePage = () => number;

/** Paths a transaction keeps (fingers): one per region of keys it writes in turn (a queue writes about five). */
const FINGERS = 8;
/** Misses in a row after which toFinger tries only the current finger (and all of them every 32nd time). */
const FINGER_MISSES = 64;

/**
 * A root-to-leaf path of the transaction's pages and, while `valid`, the keys
 * its leaf holds: exactly the keys k with sep(lo) <= k < sep(hi), where sep(l)
 * is the separator next to the child the path takes at branch level l (the one
 * before it for lo, the one after it for hi; -1: no bound on that side).
 *
 * A descent fills one (copying the path's committed pages, so every page on it
 * is the transaction's own). It stays valid while the tree's shape does: a put
 * or delete inside a leaf moves no separator, and a split, merge or
 * redistribution drops every finger. Keys written close together (an index's
 * head, ids in order, the same counter) then skip the descent: two key
 * compares instead of a search per level. A leaf found through a finger is
 * always the one a descent would find.
 */
class Finger {
  readonly ids: number[] = [];
  readonly pages: Buffer[] = [];
  readonly idx: number[] = [];
  lo = -1;
  hi = -1;
  valid = false;

  /** Whether `key`'s position is in this path's leaf (the finger is valid). */
  holds(key: Uint8Array): boolean {
    if (this.lo >= 0) {
      const p = this.pages[this.lo]!;
      const c = this.idx[this.lo]! - 1;
      if (compareBytes(p, branchKeyOffset(p, c), branchKeyLength(p, c), key) > 0) return false;
    }
    if (this.hi >= 0) {
      const p = this.pages[this.hi]!;
      const c = this.idx[this.hi]!;
      if (compareBytes(p, branchKeyOffset(p, c), branchKeyLength(p, c), key) <= 0) return false;
    }
    return true;
  }
}

export class TreeWriter implements PageSource {
  readonly kernels: Kernels;
  readonly pageSize: number;
  readonly path: string;
  root: number;
  /** Txn id that wrote the root page: the base snapshot's until the root is copied, then this transaction's. */
  rootTxn: number;
  depth: number;
  entryCount: number;
  /** Bumped by every change; open scans of this transaction re-seek when it moves. */
  version = 0;
  /** Pages allocated by this transaction, by id. */
  readonly dirty = new Map<number, Buffer>();
  /** Committed pages this transaction made unreachable that the durable meta may reach. */
  readonly freedCommitted: number[] = [];
  /** Committed pages this transaction made unreachable, written after the durable checkpoint. */
  readonly freedYoung: number[] = [];
  /** Pages allocated and freed again by this transaction: reusable now. */
  readonly reusable: number[] = [];

  /** The fingers, most recently used first; fingers[0] is the current path (see Finger). */
  private readonly fingers: Finger[] = [];
  private readonly sizes: number[] = [];
  private readonly usable: number;
  private readonly inlineMax: number;
  private scratchNode: Buffer | null = null;
  private readonly overflowRef = Buffer.alloc(OVERFLOW_REF_SIZE);

  constructor(
    private readonly pager: Pager,
    root: number,
    rootTxn: number,
    depth: number,
    entryCount: number,
    /** The txn id this transaction commits as: every page it writes carries it. */
    readonly txnId: number,
    private readonly allocate: AllocatePage,
    /** Txn id of the durable checkpoint: pages written at or before it are protected (spec §6.1). */
    private readonly protectedUpTo: number,
  ) {
    this.kernels = pager.kernels;
    this.pageSize = pager.pageSize;
    this.path = pager.file.path;
    this.root = root;
    this.rootTxn = rootTxn;
    this.depth = depth;
    this.entryCount = entryCount;
    this.usable = this.pageSize - NODE_SLOTS_OFFSET;
    this.inlineMax = maxInlineFootprint(this.pageSize);
    for (let i = 0; i < FINGERS; i++) this.fingers.push(new Finger());
  }

  page(id: number): Uint8Array {
    return this.dirty.get(id) ?? this.pager.read(id);
  }

  overflowPage(id: number): Uint8Array {
    return this.dirty.get(id) ?? this.pager.readUncached(id);
  }

  get changed(): boolean {
    return this.version !== 0;
  }

  /** Point lookup through this transaction's changes (treeGet), through a finger's leaf when one holds the key. */
  get(key: Uint8Array): Buffer | undefined {
    if (this.root === 0) return undefined;
    return this.toFinger(key) ? leafGet(this, this.pathPages[this.depth - 1]!, key) : treeGet(this, this.root, this.rootTxn, key);
  }

  /** Inserts or replaces key → value. Sizes were validated by the caller (spec §7). */
  put(key: Uint8Array, value: Uint8Array): void {
    this.version++;
    let inline: Uint8Array = value;
    let vlenField = value.length;
    if (inlineFootprint(key.length, value.length) > this.inlineMax) {
      writeU64(this.overflowRef, OVERFLOW_REF_PAGE, this.writeOverflow(value));
      writeU64(this.overflowRef, OVERFLOW_REF_TXN, this.txnId);
      inline = this.overflowRef;
      vlenField = VALUE_OVERFLOW_BIT + value.length;
    }
    const k = this.kernels;
    if (this.root === 0) {
      const leaf = this.newNode(PageType.Leaf);
      k.leafInsert(leaf, 0, key, inline, vlenField);
      this.root = this.lastAllocated;
      this.rootTxn = this.txnId;
      this.depth = 1;
      this.entryCount = 1;
      return;
    }
    const d = this.depth - 1;
    const current = this.fingers[0]!;
    if (current.valid && current.hi < 0) {
      // Sorted loads and time-ordered keys: a key past the last one of the rightmost
      // leaf goes at its end, without a descent (the path is still the last one's).
      const leaf = current.pages[d]!;
      const n = nodeCount(leaf);
      if (n > 0 && compareBytes(leaf, leafKeyOffset(leaf, n - 1), leafKeyLength(leaf, n - 1), key) < 0) {
        this.entryCount++;
        if (!appendLeafCell(leaf, key, inline, vlenField) && !k.leafInsert(leaf, n, key, inline, vlenField)) this.splitLeaf(d, n, key, inline, vlenField);
        return;
      }
    }
    if (!this.toFinger(key)) this.descendForWrite(key);
    const leaf = this.pathPages[d]!;
    const r = k.leafSearch(leaf, key);
    const i = r >>> 1;
    if ((r & 1) === 1) {
      this.freeValueAt(leaf, i);
      k.nodeRemove(leaf, i);
    } else {
      this.entryCount++;
    }
    if (!k.leafInsert(leaf, i, key, inline, vlenField)) this.splitLeaf(d, i, key, inline, vlenField);
  }

  /** Deletes key; returns whether it was present. */
  del(key: Uint8Array): boolean {
    if (this.root === 0) return false;
    const d = this.depth - 1;
    let r: number;
    if (this.toFinger(key)) {
      // The key's leaf is the last descent's, already this transaction's page.
      r = this.kernels.leafSearch(this.pathPages[d]!, key);
      if ((r & 1) === 0) return false;
    } else {
      // Probe read-only first so a missing key copies no pages; the copies then follow the
      // probe's child indexes (a copy has its source's cells), without searching again.
      r = this.kernels.leafSearch(findLeaf(this, this.root, this.rootTxn, key, this.probeIdx), key);
      if ((r & 1) === 0) return false;
      this.descendForWrite(key, this.probeIdx);
    }
    this.version++;
    const leaf = this.pathPages[d]!;
    const i = r >>> 1;
    this.freeValueAt(leaf, i);
    this.kernels.nodeRemove(leaf, i);
    this.entryCount--;
    if (d > 0 && !this.underfull(leaf)) return true; // rebalance(d) would return at once
    // Merges and redistribution change the tree's shape under the paths.
    this.dropFingers();
    this.rebalance(d);
    return true;
  }

  // ---- copy-on-write descent ---------------------------------------------------

  /** Descents from the root so far (puts and dels the finger served made none). */
  descents = 0;

  /** Child index at each branch level of del's read-only probe (findLeaf's path), root first. */
  private readonly probeIdx: number[] = [];

  /**
   * Fills the path for key, copying every committed page on it. `along`: the
   * child index to take at each branch (a probe's, for this key), instead of
   * searching each branch.
   */
  private descendForWrite(key: Uint8Array, along: readonly number[] | null = null): void {
    this.descents++;
    // The path goes to the finger used longest ago (the last in the list), which becomes the first.
    const f = this.toFront(FINGERS - 1);
    f.valid = false;
    const k = this.kernels;
    const ids = f.ids;
    const pages = f.pages;
    const idx = f.idx;
    let p = this.dirty.get(this.root);
    if (p === undefined) p = this.copyRoot();
    let level = 0;
    ids[0] = this.root;
    pages[0] = p;
    while (pageTypeOf(p) === PageType.Branch) {
      if (level + 1 >= MAX_TREE_DEPTH) throw corrupt(this, ids[level]!, `tree deeper than ${MAX_TREE_DEPTH} levels (a cycle)`);
      const c = along === null ? k.branchSearch(p, key) : along[level]!;
      idx[level] = c;
      p = this.writableChild(p, ids[level]!, c);
      level++;
      ids[level] = this.lastAllocated;
      pages[level] = p;
    }
    idx[level] = -1;
    if (level + 1 !== this.depth) {
      throw corrupt(this, ids[level]!, `leaf at depth ${level + 1}, tree depth is ${this.depth}`);
    }
    // The finger's bounds: the deepest ancestors that bound the leaf's keys from below and above.
    let lo = -1;
    let hi = -1;
    for (let l = level - 1; l >= 0 && (lo < 0 || hi < 0); l--) {
      const c = idx[l]!;
      if (lo < 0 && c > 0) lo = l;
      if (hi < 0 && c < nodeCount(pages[l]!)) hi = l;
    }
    f.lo = lo;
    f.hi = hi;
    f.valid = true;
  }

  /** Moves fingers[j] to the front, the current path, without allocating; returns it. */
  private toFront(j: number): Finger {
    const fingers = this.fingers;
    const f = fingers[j]!;
    for (; j > 0; j--) fingers[j] = fingers[j - 1]!;
    fingers[0] = f;
    return f;
  }

  // The current path: page id, page and child index (branches) at each level, root first.
  private get pathIds(): number[] {
    return this.fingers[0]!.ids;
  }

  private get pathPages(): Buffer[] {
    return this.fingers[0]!.pages;
  }

  private get pathIdx(): number[] {
    return this.fingers[0]!.idx;
  }

  /**
   * Makes the finger whose leaf holds `key`'s position the current path, if a
   * finger has it (the most recently used first); false when none does.
   */
  private toFinger(key: Uint8Array): boolean {
    const fingers = this.fingers;
    // Keys in no particular order (random puts) miss every finger: after a long run of
    // misses only the current finger is tried, and all of them once every 32 lookups.
    const n = this.fingerMisses < FINGER_MISSES || (this.fingerMisses & 31) === 0 ? FINGERS : 1;
    for (let j = 0; j < n; j++) {
      const f = fingers[j]!;
      if (!f.valid) break; // the valid ones come first
      if (!f.holds(key)) continue;
      if (j > 0) this.toFront(j);
      this.fingerMisses = 0;
      return true;
    }
    this.fingerMisses++;
    return false;
  }

  /** Finger lookups that found none since the last that did. */
  private fingerMisses = 0;

  /** After a split, merge or redistribution: no finger's path is known to be the tree's any more. */
  private dropFingers(): void {
    for (const f of this.fingers) f.valid = false;
  }

  /** Copies the committed root (commit always rewrites the root: spec §4.5, rule 13). */
  private copyRoot(): Buffer {
    const old = this.root;
    const src = nodePage(this, old, this.rootTxn);
    const p = this.copyPage(src);
    this.root = this.lastAllocated;
    this.rootTxn = this.txnId;
    this.freePage(old, src);
    return p;
  }

  /**
   * Makes sure the root is a page this transaction writes. Recovery calls it
   * before committing a replayed record that changed nothing, so that the
   * snapshot's root is still written by the snapshot's txn.
   */
  touchRoot(): void {
    if (this.root !== 0 && !this.dirty.has(this.root)) {
      this.version++;
      this.copyRoot();
    }
  }

  /** Id of the page returned by the last writableChild/copyPage/newNode. */
  private lastAllocated = 0;

  /** Child c of dirty branch `parent`, copied if committed (the parent then points at the copy). */
  private writableChild(parent: Buffer, parentId: number, c: number): Buffer {
    const id = childAt(parent, c);
    if (id < 2) throw corrupt(this, parentId, `child ${c} has invalid page id ${id}`);
    const d = this.dirty.get(id);
    if (d !== undefined) {
      this.lastAllocated = id;
      return d;
    }
    const src = nodePage(this, id, childTxnAt(parent, c));
    const copy = this.copyPage(src);
    this.freePage(id, src);
    setChildAt(parent, c, this.lastAllocated, this.txnId);
    return copy;
  }

  private copyPage(src: Uint8Array): Buffer {
    const id = this.allocate();
    const copy = this.pager.takePage();
    copy.set(src);
    writePageId(copy, id);
    writePageTxnId(copy, this.txnId);
    this.dirty.set(id, copy);
    this.lastAllocated = id;
    return copy;
  }

  private newNode(type: typeof PageType.Leaf | typeof PageType.Branch): Buffer {
    const id = this.allocPage();
    const page = this.pager.takePage().fill(0);
    initNode(page, type, id);
    writePageTxnId(page, this.txnId);
    this.dirty.set(id, page);
    this.lastAllocated = id;
    return page;
  }

  private allocPage(): number {
    return this.reusable.pop() ?? this.allocate();
  }

  /**
   * Frees a page: at once if this transaction allocated it, else pending at
   * commit. `page` (its bytes) tells when a committed page was written: one
   * written after the durable checkpoint is not protected by its meta.
   */
  freePage(id: number, page?: Uint8Array): void {
    if (this.dirty.delete(id)) this.reusable.push(id);
    else if (page !== undefined && pageTxnId(page) > this.protectedUpTo) this.freedYoung.push(id);
    else this.freedCommitted.push(id);
  }

  // ---- overflow values (spec §5) -------------------------------------------------

  private writeOverflow(value: Uint8Array): number {
    const per = this.pageSize - OVERFLOW_DATA_OFFSET;
    const n = Math.ceil(value.length / per);
    const ids: number[] = [];
    for (let j = 0; j < n; j++) ids.push(this.allocPage());
    for (let j = 0; j < n; j++) {
      const chunk = value.subarray(j * per, Math.min(value.length, (j + 1) * per));
      const page = Buffer.alloc(this.pageSize);
      initPageHeader(page, PageType.Overflow, ids[j]!, 8 + chunk.length);
      writePageTxnId(page, this.txnId);
      writeU64(page, OVERFLOW_NEXT_OFFSET, j + 1 < n ? ids[j + 1]! : 0);
      page.set(chunk, OVERFLOW_DATA_OFFSET);
      this.dirty.set(ids[j]!, page);
    }
    return ids[0]!;
  }

  /** Frees the overflow chain of leaf cell i, if its value has one. */
  private freeValueAt(leaf: Uint8Array, i: number): void {
    const vlen = leafVlenField(leaf, i);
    if (vlen < VALUE_OVERFLOW_BIT) return;
    const per = this.pageSize - OVERFLOW_DATA_OFFSET;
    const ref = slotOffset(leaf, i) + LEAF_CELL_HEADER + leafKeyLength(leaf, i);
    let id = readU64(leaf, ref + OVERFLOW_REF_PAGE);
    const txn = readU64(leaf, ref + OVERFLOW_REF_TXN);
    for (let n = Math.ceil((vlen - VALUE_OVERFLOW_BIT) / per); n > 0; n--) {
      if (id < 2) throw corrupt(this, id, 'overflow chain ends early');
      const p = this.overflowPage(id);
      checkWrittenBy(this, p, id, txn);
      if (pageTypeOf(p) !== PageType.Overflow) throw corrupt(this, id, 'expected an overflow page');
      const next = readU64(p, OVERFLOW_NEXT_OFFSET);
      this.freePage(id, p);
      id = next;
    }
  }

  // ---- splits ------------------------------------------------------------------------

  /** Leaf at path depth d is full: split it and insert the cell (spec §4.7). */
  private splitLeaf(d: number, i: number, key: Uint8Array, inline: Uint8Array, vlenField: number): void {
    this.dropFingers();
    const k = this.kernels;
    const leaf = this.pathPages[d]!;
    const count = nodeCount(leaf);
    // Appending at the end (sorted loads): keep the left leaf full. Otherwise the
    // split point nearest the byte midpoint.
    let at = count;
    if (i < count) {
      const sizes = this.sizes;
      sizes.length = 0;
      for (let j = 0; j < count; j++) {
        if (j === i) sizes.push(LEAF_CELL_HEADER + key.length + inline.length + SLOT_SIZE);
        sizes.push(cellFootprint(leaf, j));
      }
      at = this.chooseSplit(false);
    }
    const right = this.newNode(PageType.Leaf);
    const rightId = this.lastAllocated;
    let ok: boolean;
    if (i < at) {
      k.nodeSplit(leaf, right, at - 1);
      ok = k.leafInsert(leaf, i, key, inline, vlenField);
    } else {
      // at === count (append): no cell moves, so skip the split's compaction.
      if (at < count) k.nodeSplit(leaf, right, at);
      ok = k.leafInsert(right, i - at, key, inline, vlenField);
    }
    if (!ok) throw corrupt(this, this.pathIds[d]!, 'split left no room for the new cell');
    this.insertChild(d - 1, leafKey(right, 0), rightId);
  }

  /**
   * Adds (sep → child) to the branch at path depth `level`, right after the child
   * the path went through; level -1 grows a new root. `child` is a page this
   * transaction wrote, so its reference carries this txn id.
   */
  private insertChild(level: number, sep: Uint8Array, child: number): void {
    if (level < 0) {
      const oldRoot = this.root;
      const oldRootTxn = this.rootTxn;
      const root = this.newNode(PageType.Branch);
      setChildAt(root, 0, oldRoot, oldRootTxn);
      this.kernels.branchInsert(root, 0, sep, child, this.txnId);
      this.root = this.lastAllocated;
      this.rootTxn = this.txnId;
      this.depth++;
      return;
    }
    const idx = this.pathIdx[level]!;
    if (!this.kernels.branchInsert(this.pathPages[level]!, idx, sep, child, this.txnId)) this.splitBranch(level, idx, sep, child);
  }

  /**
   * Branch at path depth `level` is full: split it around a middle separator and
   * insert (sep → child), child being a page this transaction wrote.
   */
  private splitBranch(level: number, idx: number, key: Uint8Array, child: number): void {
    const k = this.kernels;
    const node = this.pathPages[level]!;
    const count = nodeCount(node);
    const sizes = this.sizes;
    sizes.length = 0;
    for (let j = 0; j < count; j++) {
      if (j === idx) sizes.push(branchFootprint(key.length));
      sizes.push(cellFootprint(node, j));
    }
    if (idx === count) sizes.push(branchFootprint(key.length));
    const p = this.chooseSplit(true);
    const right = this.newNode(PageType.Branch);
    const rightId = this.lastAllocated;
    let sep: Uint8Array;
    if (p === idx) {
      k.nodeSplit(node, right, idx);
      setChildAt(right, 0, child, this.txnId);
      sep = key;
    } else {
      k.nodeSplit(node, right, p < idx ? p : p - 1);
      sep = this.popFirstSeparator(right);
      const ok = p < idx ? k.branchInsert(right, idx - p - 1, key, child, this.txnId) : k.branchInsert(node, idx, key, child, this.txnId);
      if (!ok) throw corrupt(this, this.pathIds[level]!, 'split left no room for the new separator');
    }
    this.insertChild(level - 1, sep, rightId);
  }

  /** Removes cell 0 of a branch, making its child (and that child's txn) the leftmost; returns a copy of its key. */
  private popFirstSeparator(branch: Buffer): Buffer {
    const o = branchKeyOffset(branch, 0);
    const sep = Buffer.copyBytesFrom(branch, o, branchKeyLength(branch, 0));
    setChildAt(branch, 0, childAt(branch, 1), childTxnAt(branch, 1));
    this.kernels.nodeRemove(branch, 0);
    return sep;
  }

  /**
   * Split point over this.sizes nearest the byte midpoint at which both halves
   * fit. Leaves: left gets [0, at). Branches (pushUp): left [0, p), p moves up,
   * right (p, n).
   */
  private chooseSplit(pushUp: boolean): number {
    const sizes = this.sizes;
    const n = sizes.length;
    let total = 0;
    for (const s of sizes) total += s;
    let best = -1;
    let bestDiff = Infinity;
    let left = 0;
    const lo = 1;
    const hi = pushUp ? n - 2 : n - 1;
    for (let j = 0; j < lo; j++) left += sizes[j]!;
    for (let at = lo; at <= hi; at++) {
      const right = total - left - (pushUp ? sizes[at]! : 0);
      if (left <= this.usable && right <= this.usable) {
        const diff = Math.abs(left - right);
        if (diff < bestDiff) {
          bestDiff = diff;
          best = at;
        }
      }
      left += sizes[at]!;
    }
    if (best < 0) throw corrupt(this, 0, `no split point for ${n} cells of ${total} bytes`);
    return best;
  }

  // ---- merges and redistribution ---------------------------------------------------

  /** Spec §4.7: a node with no cells, or using less than a quarter of its usable bytes. */
  private underfull(node: Uint8Array): boolean {
    return nodeCount(node) === 0 || nodeUsed(node) < this.usable / 4;
  }

  /** Restores the fill rules of spec §4.7 from path depth `level` upwards after a delete. */
  private rebalance(level: number): void {
    const k = this.kernels;
    for (;;) {
      if (level === 0) {
        this.collapseRoot();
        return;
      }
      const node = this.pathPages[level]!;
      if (!this.underfull(node)) return;
      const parent = this.pathPages[level - 1]!;
      const parentId = this.pathIds[level - 1]!;
      const c = this.pathIdx[level - 1]!;
      if (nodeCount(parent) === 0) throw corrupt(this, parentId, 'non-root branch without separators');
      // Pair the node with its left neighbour, or its right one if it is leftmost.
      const leftIdx = c > 0 ? c - 1 : 0;
      let left: Buffer;
      let right: Buffer;
      let leftId: number;
      let rightId: number;
      if (c > 0) {
        left = this.writableChild(parent, parentId, leftIdx);
        leftId = this.lastAllocated;
        right = node;
        rightId = this.pathIds[level]!;
      } else {
        left = node;
        leftId = this.pathIds[level]!;
        right = this.writableChild(parent, parentId, 1);
        rightId = this.lastAllocated;
      }
      const leaf = pageTypeOf(node) === PageType.Leaf;
      const sepKey = Buffer.copyBytesFrom(parent, branchKeyOffset(parent, leftIdx), branchKeyLength(parent, leftIdx));
      const need = nodeUsed(left) + nodeUsed(right) + (leaf ? 0 : branchFootprint(sepKey.length));
      if (need <= this.usable) {
        if (!leaf) k.branchInsert(left, nodeCount(left), sepKey, childAt(right, 0), childTxnAt(right, 0));
        if (!k.nodeMerge(left, right)) throw corrupt(this, leftId, 'merge did not fit');
        k.nodeRemove(parent, leftIdx);
        this.freePage(rightId);
        void leftId;
        level--;
        continue;
      }
      const newSep = this.redistribute(left, leftId, right, rightId, leaf, sepKey);
      k.nodeRemove(parent, leftIdx);
      if (!k.branchInsert(parent, leftIdx, newSep, rightId, this.txnId)) {
        this.pathIdx[level - 1] = leftIdx;
        this.splitBranch(level - 1, leftIdx, newSep, rightId);
      }
      return;
    }
  }

  /** Empty leaf root → empty tree; branch root without separators → its only child. */
  private collapseRoot(): void {
    for (let level = 0; ; level++) {
      if (level >= MAX_TREE_DEPTH) throw corrupt(this, this.root, `tree deeper than ${MAX_TREE_DEPTH} levels (a cycle)`);
      const root = this.dirty.get(this.root) ?? nodePage(this, this.root, this.rootTxn);
      if (nodeCount(root) > 0) return;
      const old = this.root;
      if (pageTypeOf(root) === PageType.Leaf) {
        this.root = 0;
        this.depth = 0;
      } else {
        this.root = childAt(root, 0);
        this.rootTxn = childTxnAt(root, 0);
        this.depth--;
      }
      this.freePage(old, root);
      if (this.root === 0) return;
    }
  }

  /** Spreads the cells of two siblings evenly by bytes; returns the new separator. */
  private redistribute(left: Buffer, leftId: number, right: Buffer, rightId: number, leaf: boolean, sepKey: Uint8Array): Uint8Array {
    const k = this.kernels;
    const type = leaf ? PageType.Leaf : PageType.Branch;
    const t = (this.scratchNode ??= Buffer.alloc(this.pageSize * 2));
    t.fill(0);
    initNode(t, type, 0);
    k.nodeMerge(t, left);
    if (!leaf) k.branchInsert(t, nodeCount(t), sepKey, childAt(right, 0), childTxnAt(right, 0));
    k.nodeMerge(t, right);
    const leftmost = leaf ? 0 : childAt(left, 0);
    const leftmostTxn = leaf ? 0 : childTxnAt(left, 0);
    left.fill(0, HEADER_SIZE);
    right.fill(0, HEADER_SIZE);
    initNode(left, type, leftId);
    initNode(right, type, rightId);
    writePageTxnId(left, this.txnId);
    writePageTxnId(right, this.txnId);
    const sizes = this.sizes;
    sizes.length = 0;
    const n = nodeCount(t);
    for (let j = 0; j < n; j++) sizes.push(cellFootprint(t, j));
    const at = this.chooseSplit(!leaf);
    k.nodeSplit(t, right, at);
    let sep: Uint8Array;
    if (leaf) sep = leafKey(right, 0);
    else sep = this.popFirstSeparator(right);
    k.nodeSplit(t, left, 0);
    if (!leaf) setChildAt(left, 0, leftmost, leftmostTxn);
    return sep;
  }
}

