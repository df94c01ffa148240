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

/** Pages freed by one commit, waiting for older snapshots to close. */
interface Pending {
  txnId: number;
  ids: number[];
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

  /** Records the pages commit txnId made unreachable. */
  addPending(txnId: number, ids: readonly number[]): void {
    if (ids.length > 0) this.pending.push({ txnId, ids: ids.slice() });
  }

  /** Moves to the reusable list every page freed by a commit F with F <= oldestLive. */
  release(oldestLive: number): void {
    let moved = false;
    while (this.pending.length > 0 && this.pending[0]!.txnId <= oldestLive) {
      for (const id of this.pending.shift()!.ids) this.free.push(id);
      moved = true;
    }
    if (moved) this.free.sort((a, b) => b - a);
  }

  /** Every entry, as [pageId, txnId that freed it (0 = reusable)], for the on-disk chain. */
  entries(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const id of this.free) out.push([id, 0]);
    for (const p of this.pending) for (const id of p.ids) out.push([id, p.txnId]);
    return out;
  }

  /** Loads entries read at open: no snapshot is live then, so all are reusable. */
  static fromEntries(entries: readonly number[]): FreeList {
    const list = new FreeList();
    list.giveBack(entries);
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
