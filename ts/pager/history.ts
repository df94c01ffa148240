// Retained snapshots for time travel (spec/file_format_v1.md §6.2): the root of
// each of the last `history.txns` commits. A retained snapshot counts as live
// for page reuse (§6.1), so opening one is a lookup, never a replay. Persisted
// as a chain of history pages at every checkpoint.

import { readU32, readU64, writeU32, writeU64 } from '../format/bytes.js';
import { HISTORY_COUNT_OFFSET, HISTORY_ENTRIES_OFFSET, HISTORY_ENTRY_SIZE, HISTORY_NEXT_OFFSET } from '../format/constants.js';
import { dropRange } from './freelist.js';

/** The committed state a snapshot reads. */
export interface Snapshot {
  txnId: number;
  root: number;
  entryCount: number;
}

export function historyCapacity(pageSize: number): number {
  return Math.floor((pageSize - HISTORY_ENTRIES_OFFSET) / HISTORY_ENTRY_SIZE);
}

export class History {
  /** Ascending by txn id. */
  private entries: Snapshot[] = [];

  constructor(
    /** How many of the latest commits stay readable (0 = none). */
    readonly keep: number,
  ) {}

  get size(): number {
    return this.entries.length;
  }

  /** Oldest retained txn id, or null. */
  get oldest(): number | null {
    return this.entries.length > 0 ? this.entries[0]!.txnId : null;
  }

  /** Records a new commit and forgets those beyond the window. */
  add(s: Snapshot): void {
    if (this.keep === 0) return;
    const last = this.entries[this.entries.length - 1];
    if (last !== undefined && last.txnId >= s.txnId) {
      // Recovery replays commits already known: the replayed root replaces the old.
      while (this.entries.length > 0 && this.entries[this.entries.length - 1]!.txnId >= s.txnId) this.entries.pop();
    }
    this.entries.push(s);
    if (this.entries.length > this.keep) dropRange(this.entries, 0, this.entries.length - this.keep);
  }

  get(txnId: number): Snapshot | undefined {
    const e = this.entries;
    let lo = 0;
    let hi = e.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const t = e[mid]!.txnId;
      if (t === txnId) return e[mid];
      if (t < txnId) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }

  /** Forgets every snapshot older than txnId. */
  dropBefore(txnId: number): void {
    let i = 0;
    while (i < this.entries.length && this.entries[i]!.txnId < txnId) i++;
    dropRange(this.entries, 0, i);
  }

  all(): readonly Snapshot[] {
    return this.entries;
  }
}

/** Writes up to capacity entries from `from`; returns how many were written. */
export function writeHistoryPage(page: Uint8Array, next: number, entries: readonly Snapshot[], from: number): number {
  const n = Math.min(historyCapacity(page.length), entries.length - from);
  writeU64(page, HISTORY_NEXT_OFFSET, next);
  writeU32(page, HISTORY_COUNT_OFFSET, n);
  for (let i = 0; i < n; i++) {
    const e = entries[from + i]!;
    const o = HISTORY_ENTRIES_OFFSET + i * HISTORY_ENTRY_SIZE;
    writeU64(page, o, e.txnId);
    writeU64(page, o + 8, e.root);
    writeU64(page, o + 16, e.entryCount);
  }
  return n;
}

export function readHistoryPage(page: Uint8Array): { next: number; entries: Snapshot[] } | null {
  const count = readU32(page, HISTORY_COUNT_OFFSET);
  if (count > historyCapacity(page.length)) return null;
  const entries: Snapshot[] = [];
  for (let i = 0; i < count; i++) {
    const o = HISTORY_ENTRIES_OFFSET + i * HISTORY_ENTRY_SIZE;
    entries.push({ txnId: readU64(page, o), root: readU64(page, o + 8), entryCount: readU64(page, o + 16) });
  }
  return { next: readU64(page, HISTORY_NEXT_OFFSET), entries };
}
