// Where a claim finds ready tasks (spec/task_queue_v0.md §5, and
// spec/cartridge_v1.md §7 item 5 for the cartridge): the head of each type's ready
// index, in claim order (highest priority, then ready earliest, then enqueued
// earliest). Two sources give the same heads:
//
// - the tree: one seek into the ready index per type, and one per step;
// - a ReadyView (a cartridge brought up to the transaction's base txn):
//   its entries merged with the ready keys this transaction placed, each
//   candidate re-checked by a get of its ready key in the transaction. A view
//   is exact at the base txn, so the only stale candidates are tasks this
//   transaction took out of the index (claimed, cancelled), which the
//   re-check skips; the only missing ones are tasks it put in, which `placed`
//   holds. A stale or missing view therefore costs time, never a duplicate or
//   a skipped task.
//
// The contract that makes the second exact: every ready key a claim
// transaction adds goes through QueueTxn.place() of that transaction (the
// batcher runs claims only in its own transactions, never beside a solo
// call that could enqueue through another QueueTxn).

import type { QueueTxn } from './transitions.js';
import { MAX_PRIORITY, TAG_READY } from './keys.js';

/** One ready task as a view gives it: rank is MAX_PRIORITY − priority, so claim order is ascending (rank, readyAt, id). */
export interface ReadyEntry {
  rank: number;
  readyAt: number;
  id: number;
}

/** The ready tasks of every queue as of one committed txn. */
export interface ReadyView {
  /** The types of queue `queue` with at least one ready task. */
  types(queue: string): string[];
  /** The ready tasks of (queue, type) in claim order. */
  walk(queue: string, type: string): IterableIterator<ReadyEntry>;
}

/** Something that can give a ReadyView (a CartridgeService). */
export interface ReadySource {
  /** A view exact at committed txn `txnId`, or null when it has none (the claim then reads the tree). */
  viewAt(txnId: number): ReadyView | null;
}

/** The head of one type's ready tasks as this transaction sees them. */
export interface Head {
  type: Buffer;
  key: Buffer;
  priority: number;
  readyAt: number;
  id: number;
  /**
   * Tree heads: the range end of this type's ready keys, or null once the
   * read-ahead reached it (nothing follows `ahead`). View heads: null.
   */
  lt: Buffer | null;
  walk: Walk | null;
  /**
   * Tree heads: the ready keys of this type after this one, as one scan read
   * them (at most LOOKAHEAD), so that the next heads cost no seek. They stay
   * exact while the head does: claims take heads only in order, and every
   * other change to a type's ready keys (place, unplace) forgets its head.
   */
  ahead: Buffer[] | null;
}

/** Ready keys a tree head reads past itself in one scan: a claim of many tasks, or a batch of claims, seeks once per this many. */
const LOOKAHEAD = 32;

/** A type's view entries merged with the entries this transaction placed. */
interface Walk {
  type: Buffer;
  base: Iterator<ReadyEntry>;
  baseNext: ReadyEntry | null;
  placed: ReadyEntry[];
  p: number;
}

/** Claim order of two ready entries: the byte order of their ready keys within a type. */
export function compareReadyEntries(a: ReadyEntry, b: ReadyEntry): number {
  return a.rank - b.rank || a.readyAt - b.readyAt || a.id - b.id;
}

/** The first head of `type` in this transaction, or null when it has no ready task. */
export function firstHead(tx: QueueTxn, type: Buffer): Head | null {
  const view = tx.readyView();
  if (view === null) {
    const { gte, lt } = tx.q.keys.readyOfType(type);
    return headAfter(tx, type, { gte, lt });
  }
  const name = type.toString('utf8');
  const base = view.walk(tx.q.name, name);
  const s = base.next();
  const placed = [...(tx.placed.get(name) ?? [])].sort(compareReadyEntries);
  return walkNext(tx, { type, base, baseNext: s.done ? null : s.value, placed, p: 0 });
}

/** The head after `h` of its type, or null when `h` was the last. */
export function nextHead(tx: QueueTxn, h: Head): Head | null {
  if (h.walk !== null) return walkNext(tx, h.walk);
  const ahead = h.ahead!;
  if (ahead.length > 0) return treeHead(tx, h.type, ahead.shift()!, h.lt, ahead);
  return h.lt === null ? null : headAfter(tx, h.type, { gt: h.key, lt: h.lt });
}

/** The types with ready tasks: from the view and this transaction's placed entries, or one seek per type in the tree. */
export function readyTypes(tx: QueueTxn): Buffer[] {
  if (tx.typesKnown) return [...tx.heads.values()].filter((h): h is Head => h !== null).map((h) => h.type);
  const view = tx.readyView();
  const types = view === null ? treeTypes(tx) : viewTypes(tx, view);
  // Every type with ready tasks is now in `types` (its head read by claim).
  tx.typesKnown = true;
  for (const name of [...tx.heads.keys()]) if (!types.some((t) => t.toString('utf8') === name)) tx.heads.delete(name);
  return types;
}

/** Whether head a runs before head b: higher priority, then ready earlier, then enqueued earlier. */
export function before(a: Head, b: Head): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.readyAt !== b.readyAt) return a.readyAt < b.readyAt;
  return a.id < b.id;
}

/** The first ready key of `type` in `range`, with the keys after it read ahead. */
function headAfter(tx: QueueTxn, type: Buffer, range: { gte: Buffer; lt: Buffer } | { gt: Buffer; lt: Buffer }): Head | null {
  const keys: Buffer[] = [];
  for (const [k] of tx.w.scan({ ...range, limit: LOOKAHEAD + 1 })) keys.push(k);
  if (keys.length === 0) return null;
  const first = keys.shift()!;
  // Fewer than asked for: the scan reached the type's end, and the heads after `keys` need no seek.
  return treeHead(tx, type, first, keys.length < LOOKAHEAD ? null : range.lt, keys);
}

function treeHead(tx: QueueTxn, type: Buffer, key: Buffer, lt: Buffer | null, ahead: Buffer[]): Head {
  const [priority, readyAt, id] = tx.q.keys.readyFieldsOf(key);
  return { type, key, priority, readyAt, id, lt, walk: null, ahead };
}

/** The next entry of `walk` whose ready key this transaction still holds (the re-check), or null. */
function walkNext(tx: QueueTxn, walk: Walk): Head | null {
  for (;;) {
    const b = walk.baseNext;
    const pl = walk.p < walk.placed.length ? walk.placed[walk.p]! : null;
    let e: ReadyEntry;
    if (b === null && pl === null) return null;
    const order = b === null ? 1 : pl === null ? -1 : compareReadyEntries(b, pl);
    if (order <= 0) {
      e = b!;
      const s = walk.base.next();
      walk.baseNext = s.done ? null : s.value;
      if (order === 0) walk.p++; // placed again after being taken out: one task, one head
    } else {
      e = pl!;
      walk.p++;
    }
    const priority = MAX_PRIORITY - e.rank;
    const key = tx.q.keys.ready(walk.type, priority, e.readyAt, e.id);
    if (tx.w.get(key) !== undefined) return { type: walk.type, key, priority, readyAt: e.readyAt, id: e.id, lt: null, walk, ahead: null };
  }
}

function treeTypes(tx: QueueTxn): Buffer[] {
  const keys = tx.q.keys;
  const { gte, lt } = keys.table(TAG_READY);
  const types: Buffer[] = [];
  let from = gte;
  for (;;) {
    let found: Buffer | null = null;
    for (const [k] of tx.w.scan({ gte: from, lt, limit: 1 })) found = keys.readyTypeOf(k);
    if (found === null) return types;
    types.push(found);
    from = keys.readyOfType(found).lt;
  }
}

function viewTypes(tx: QueueTxn, view: ReadyView): Buffer[] {
  const names = new Set(view.types(tx.q.name));
  for (const name of tx.placed.keys()) names.add(name);
  return [...names].map((n) => Buffer.from(n, 'utf8'));
}
