// Free-page bookkeeping (spec §6). A page freed by commit F may be reused once
// no live snapshot is older than F; the in-memory lists here and the freelist
// chain on disk hold the same set after every commit.

import { readU32, readU64, writeU32, writeU64 } from '../format/bytes.js';
import {
  FREELIST_COUNT_OFFSET,
  FREELIST_ENTRIES_OFFSET,
  FREELIST_ENTRY_SIZE,
  FREELIST_NEXT_OFFSET,
} from '../format/constants.js';

/** Entries one freelist page of this size holds. */
export function freelistCapacity(pageSize: number): number {
  return Math.floor((pageSize - FREELIST_ENTRIES_OFFSET) / FREELIST_ENTRY_SIZE);
}

/** Pages freed by one commit, waiting for older snapshots (and, if protected, a checkpoint). */
interface Pending {
  txnId: number;
  ids: number[];
  /** Reachable from the durable meta: reusable only once a checkpoint at or after txnId is durable. */
  protected: boolean;
}

export class FreeList {
  /**
   * Reusable now: a binary min-heap, so take() hands out the lowest id and the
   * file stays compact. (It was an array re-sorted on every release: with a
   * few thousand free pages that sort was a quarter of a 4-put commit's CPU.)
   */
  private free: number[] = [];
  /** Ascending by txn id (commits add in order; release and remove keep the order). */
  private pending: Pending[] = [];
  /**
   * pending[0, waitingHead) are protected entries freed after checkpoint
   * `waitingFor`: release() with that checkpoint skips them (spec §6.1).
   */
  private waitingHead = 0;
  private waitingFor = -1;
  /** Ids in `pending`, kept so the history budget check per commit is O(1). */
  private pendingIds = 0;
  /**
   * The pending entry that lists each pending page id, so remove() finds the
   * ids it drops without walking `pending`: a take-over applies every record
   * another handle committed, and most pages such a record wrote are pending
   * here (that handle released and reused them before this one looked); with
   * the default history the walk went through ~1,000 entries per record
   * (measured at remove()). An id listed twice (never, in a sound list) makes
   * `unindexed` true for good: remove() then walks, as before.
   */
  private entryOf = new Map<number, Pending>();
  private unindexed = false;
  /** Ids of the protected entries in `pending`. */
  private protectedIds = 0;
  /** Ids in `pending` that count against history (see historyCut) as of checkpoint `countedAt`. */
  private countedIds = 0;
  private countedAt = -1;

  /** Whether an entry's pages are held by history alone once the checkpoint is `countedAt`. */
  private counts(p: Pending): boolean {
    return !p.protected || p.txnId <= this.countedAt;
  }

  get freeCount(): number {
    return this.free.length;
  }

  get pendingCount(): number {
    return this.pendingIds;
  }

  /**
   * The history budget (spec/file_format_v1.md §6.2): the lowest txn id T
   * such that the pages freed by commits after T number at most `maxPages`,
   * counting only pages that retained history alone keeps from reuse (pages a
   * durable meta reaches, freed after `checkpoint`, wait for the next
   * checkpoint whatever the history). History that starts at T keeps at most
   * `maxPages` pages; null when all of it fits.
   */
  historyCut(maxPages: number, checkpoint: number): number | null {
    if (this.pendingIds <= maxPages) return null;
    this.countFor(checkpoint);
    if (this.countedIds <= maxPages) return null;
    let held = 0;
    const pending = this.pending;
    for (let i = pending.length - 1; i >= 0; i--) {
      const p = pending[i]!;
      if (!this.counts(p)) continue;
      held += p.ids.length;
      if (held > maxPages) return p.txnId;
    }
    return null;
  }

  /**
   * Pages freed after `checkpoint` that a durable meta reaches: only a later
   * checkpoint lets them be reused (spec §8.2, `checkpoint.freedBytes`). The
   * protected ids less those freed at or before `checkpoint`: a walk of the
   * entries up to it only (few: the writer releases them once readers pass),
   * and not countFor, whose one cached checkpoint is historyCut's (another
   * argument on every commit made both walk every entry, each commit).
   */
  awaitingCheckpoint(checkpoint: number): number {
    let n = this.protectedIds;
    for (const p of this.pending) {
      if (p.txnId > checkpoint) break;
      if (p.protected) n -= p.ids.length;
    }
    return n;
  }

  /**
   * Of those (protected, freed after `after`), the pages freed at or before
   * `upTo`: what a checkpoint whose history chain starts at `upTo` would let
   * the writer reuse (spec §6.1, §8.2). A walk of the entries in that range,
   * made only when `atLeast` pages could be there at all.
   */
  releasableByCheckpoint(after: number, upTo: number, atLeast: number): number {
    if (this.awaitingCheckpoint(after) < atLeast) return 0;
    let n = 0;
    for (const p of this.pending) {
      if (p.txnId > upTo) break;
      if (p.protected && p.txnId > after) n += p.ids.length;
    }
    return n;
  }

  /** Makes countedIds count for `checkpoint`: one pass when it moved, then kept up per change. */
  private countFor(checkpoint: number): void {
    if (checkpoint === this.countedAt) return;
    this.countedAt = checkpoint;
    this.countedIds = 0;
    for (const p of this.pending) if (this.counts(p)) this.countedIds += p.ids.length;
  }

  /** The lowest reusable page id, or undefined. Only the write transaction calls this. */
  take(): number | undefined {
    const h = this.free;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) this.siftDown(0, last);
    return top;
  }

  private push(id: number): void {
    this.free.push(id);
    this.siftUp(this.free.length - 1, id);
  }

  /** Returns ids to the reusable list (unused allocations, pages never committed). */
  giveBack(ids: readonly number[]): void {
    for (const id of ids) this.push(id);
  }

  /** Removes free[i] from the heap: the last id goes there, then up (it may be smaller than i's parent) or down. */
  private removeAt(i: number): void {
    const h = this.free;
    const last = h.pop()!;
    if (i === h.length) return;
    if (this.siftUp(i, last) === i) this.siftDown(i, last);
  }

  /** Puts `id` at hole `i` or above it, moving larger parents down; returns where it went. */
  private siftUp(i: number, id: number): number {
    const h = this.free;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]! <= id) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = id;
    return i;
  }

  /** Puts `id` at hole `i` or below it, moving smaller children up. */
  private siftDown(i: number, id: number): void {
    const h = this.free;
    const m = h.length;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= m) break;
      if (c + 1 < m && h[c + 1]! < h[c]!) c++;
      if (h[c]! >= id) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = id;
  }

  /**
   * Drops ids that a commit wrote, wherever they are listed (spec/concurrency_v0.md
   * §5): rebuilding another handle's state, a page pending here may have been
   * released and reused by that handle. Measured on 12 ids, half pending at the
   * front of 1,000 entries of 12 and half among 2,000 free ones (3 runs of 600
   * calls): 244-277 µs walking `pending` and re-sorting the heap, 22-23 µs with
   * the index and removals in place.
   */
  remove(ids: readonly number[]): void {
    if (ids.length === 0) return;
    // A commit writes a few pages, and the heap loses each where it sits: no rebuild.
    for (const id of ids) for (let i = this.free.indexOf(id); i >= 0; i = this.free.indexOf(id)) this.removeAt(i);
    if (this.unindexed) {
      const gone = new Set(ids);
      for (const p of this.pending) {
        if (!p.ids.some((id) => gone.has(id))) continue;
        const kept = p.ids.filter((id) => !gone.has(id));
        this.dropped(p, p.ids.length - kept.length);
        p.ids = kept;
      }
      return;
    }
    for (const id of ids) {
      const p = this.entryOf.get(id);
      if (p === undefined) continue;
      this.entryOf.delete(id);
      p.ids.splice(p.ids.indexOf(id), 1);
      this.dropped(p, 1);
    }
  }

  /** `n` ids of entry `p` left `pending`. */
  private dropped(p: Pending, n: number): void {
    this.pendingIds -= n;
    if (p.protected) this.protectedIds -= n;
    if (this.counts(p)) this.countedIds -= n;
  }

  /**
   * Records pages commit txnId made unreachable. `protectedByMeta`: some
   * durable meta may still reach them (written at or before the checkpoint).
   */
  addPending(txnId: number, ids: readonly number[], protectedByMeta = true): void {
    if (ids.length === 0) return;
    const pending = this.pending;
    const entry = { txnId, ids: ids.slice(), protected: protectedByMeta };
    // Keep the order by txn id: a checkpoint's old chains may follow pages a later commit freed.
    let i = pending.length;
    while (i > 0 && pending[i - 1]!.txnId > txnId) i--;
    if (i === pending.length) pending.push(entry);
    else pending.splice(i, 0, entry);
    if (i < this.waitingHead) this.waitingHead = i;
    if (!this.unindexed) {
      for (const id of entry.ids) {
        if (this.entryOf.has(id)) {
          this.unindexed = true;
          this.entryOf.clear();
          break;
        }
        this.entryOf.set(id, entry);
      }
    }
    this.pendingIds += ids.length;
    if (protectedByMeta) this.protectedIds += ids.length;
    if (this.counts(entry)) this.countedIds += ids.length;
  }

  /**
   * Moves to the reusable list every page freed by a commit F with
   * F <= readerFloor (no snapshot can reach it) and, for protected pages,
   * F <= checkpoint (the durable meta cannot reach it) — spec §6.1.
   */
  release(readerFloor: number, checkpoint: number = readerFloor): void {
    const pending = this.pending;
    // Ascending by txn id: past the floor nothing is releasable, and the walk stops there
    // (it went through every entry, history's too, on every commit). The entries before
    // waitingHead wait for a checkpoint after `waitingFor`: skipped until there is one.
    let i = checkpoint === this.waitingFor ? this.waitingHead : 0;
    let kept = i;
    for (; i < pending.length; i++) {
      const p = pending[i]!;
      if (p.txnId > readerFloor) break;
      if (!p.protected || p.txnId <= checkpoint) {
        for (const id of p.ids) this.push(id);
        if (!this.unindexed) for (const id of p.ids) this.entryOf.delete(id);
        this.dropped(p, p.ids.length);
      } else pending[kept++] = p;
    }
    this.waitingHead = kept;
    this.waitingFor = checkpoint;
    dropRange(pending, kept, i);
  }

  /**
   * Marks protected every pending entry freed by a commit in (after, upTo]:
   * a checkpoint at `upTo` whose history chain lists snapshots back to
   * `after` reaches those pages through them, however young they were when
   * freed (spec §6.1). Called before that meta is written.
   */
  protectFreed(after: number, upTo: number): void {
    let changed = false;
    for (const p of this.pending) {
      if (p.txnId > after && p.txnId <= upTo && !p.protected) {
        p.protected = true;
        this.protectedIds += p.ids.length;
        changed = true;
      }
    }
    if (!changed) return;
    // Recount and rescan from the start: an entry before waitingHead may wait now.
    this.countedAt = -1;
    this.waitingHead = 0;
    this.waitingFor = -1;
  }

  /** Every entry, as [pageId, txnId that freed it (0 = reusable)], for the on-disk chain. */
  entries(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const id of this.free) out.push([id, 0]);
    for (const p of this.pending) for (const id of p.ids) out.push([id, p.txnId]);
    return out;
  }

  /**
   * Loads entries read at open. No reader is live then, but retained history
   * is: a page freed by a commit after `floor` stays pending.
   */
  static fromEntries(ids: readonly number[], txnIds: readonly number[], floor: number): FreeList {
    const list = new FreeList();
    const pending = new Map<number, number[]>();
    const free: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const t = txnIds[i]!;
      if (t <= floor) free.push(ids[i]!);
      else {
        const p = pending.get(t);
        if (p) p.push(ids[i]!);
        else pending.set(t, [ids[i]!]);
      }
    }
    list.giveBack(free);
    for (const t of [...pending.keys()].sort((a, b) => a - b)) list.addPending(t, pending.get(t)!);
    return list;
  }
}

/** Writes up to capacity entries from `from` into a freelist page body; returns the count written. */
export function writeFreelistPage(page: Uint8Array, next: number, entries: ReadonlyArray<[number, number]>, from: number): number {
  const n = Math.min(freelistCapacity(page.length), entries.length - from);
  writeU64(page, FREELIST_NEXT_OFFSET, next);
  writeU32(page, FREELIST_COUNT_OFFSET, n);
  for (let i = 0; i < n; i++) {
    const [id, txn] = entries[from + i]!;
    writeU64(page, FREELIST_ENTRIES_OFFSET + i * FREELIST_ENTRY_SIZE, id);
    writeU64(page, FREELIST_ENTRIES_OFFSET + i * FREELIST_ENTRY_SIZE + 8, txn);
  }
  return n;
}

/** Reads one freelist page: its next link and entries (page ids, -1 for a non-safe id). */
export function readFreelistPage(page: Uint8Array): { next: number; ids: number[]; txnIds: number[] } | null {
  const count = readU32(page, FREELIST_COUNT_OFFSET);
  if (count > freelistCapacity(page.length)) return null;
  const ids: number[] = [];
  const txnIds: number[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(readU64(page, FREELIST_ENTRIES_OFFSET + i * FREELIST_ENTRY_SIZE));
    txnIds.push(readU64(page, FREELIST_ENTRIES_OFFSET + i * FREELIST_ENTRY_SIZE + 8));
  }
  return { next: readU64(page, FREELIST_NEXT_OFFSET), ids, txnIds };
}

/**
 * Removes `array[from, to)`, keeping the order: moves the `from` entries
 * before the range up over it, then shifts the front off. V8 trims an array's
 * front in place on shift(), so this costs O(from + removed); a splice, or a
 * loop moving the entries after the range down, costs O(length). With the
 * default history of 1,000 commits `pending` holds ~1,000 entries and the
 * release of each commit removes one or two of them near the front: measured
 * at 3-4 µs per commit with either of those, about 0.2 µs with this.
 */
export function dropRange<T>(array: T[], from: number, to: number): void {
  const gone = to - from;
  if (gone <= 0) return;
  for (let j = from - 1; j >= 0; j--) array[j + gone] = array[j]!;
  for (let n = 0; n < gone; n++) array.shift();
}
