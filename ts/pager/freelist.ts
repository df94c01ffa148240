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
  /** Reusable now, kept sorted descending so pop() hands out the lowest id. */
  private free: number[] = [];
  private pending: Pending[] = [];

  get freeCount(): number {
    return this.free.length;
  }

  get pendingCount(): number {
    let n = 0;
    for (const p of this.pending) n += p.ids.length;
    return n;
  }

  /** A reusable page id, or undefined. Only the write transaction calls this. */
  take(): number | undefined {
    return this.free.pop();
  }

  /** Returns ids to the reusable list (unused allocations, pages never committed). */
  giveBack(ids: readonly number[]): void {
    if (ids.length === 0) return;
    for (const id of ids) this.free.push(id);
    this.free.sort((a, b) => b - a);
  }

  /**
   * Drops ids that a commit wrote, wherever they are listed (spec/concurrency_v0.md
   * §5): rebuilding another handle's state, a page pending here may have been
   * released and reused by that handle.
   */
  remove(ids: readonly number[]): void {
    if (ids.length === 0) return;
    const gone = new Set(ids);
    if (this.free.length > 0) this.free = this.free.filter((id) => !gone.has(id));
    for (const p of this.pending) if (p.ids.some((id) => gone.has(id))) p.ids = p.ids.filter((id) => !gone.has(id));
  }

  /**
   * Records pages commit txnId made unreachable. `protectedByMeta`: some
   * durable meta may still reach them (written at or before the checkpoint).
   */
  addPending(txnId: number, ids: readonly number[], protectedByMeta = true): void {
    if (ids.length > 0) this.pending.push({ txnId, ids: ids.slice(), protected: protectedByMeta });
  }

  /**
   * Moves to the reusable list every page freed by a commit F with
   * F <= readerFloor (no snapshot can reach it) and, for protected pages,
   * F <= checkpoint (the durable meta cannot reach it) — spec §6.1.
   */
  release(readerFloor: number, checkpoint: number = readerFloor): void {
    let moved = false;
    const keep: Pending[] = [];
    for (const p of this.pending) {
      if (p.txnId <= readerFloor && (!p.protected || p.txnId <= checkpoint)) {
        for (const id of p.ids) this.free.push(id);
        moved = true;
      } else keep.push(p);
    }
    if (moved) {
      this.pending = keep;
      this.free.sort((a, b) => b - a);
    }
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
