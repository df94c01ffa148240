// One handle's view of the lock file (spec/concurrency_v0.md): its reader slot,
// the published latest commit, and the writer lock. Every Database handle has
// one; handles in other threads and processes coordinate only through it and
// the log.

import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { NorthstarError } from '../errors.js';
import {
  FLAG_FALLBACK,
  FLAG_READY,
  LOCK_FILE_WORDS,
  LOCK_MAGIC,
  LOCK_VERSION,
  OWNER_FALLBACK,
  OWNER_PID_SCALE,
  PUBLISHED_FIRST,
  PUBLISHED_WORDS,
  QUEUE_ABANDONED_MS,
  QUEUE_ENTRIES,
  QUEUE_ENTRY_WORDS,
  QUEUE_FIRST_WORD,
  QUEUE_HEARTBEAT,
  QUEUE_OWNER,
  QUEUE_STALE_MS,
  QUEUE_TICKET,
  SLOT_COUNT,
  SLOT_FLAGS,
  SLOT_OWNER,
  SLOT_TXN,
  SLOT_TXN_CHECK,
  SLOT_WORDS,
  SLOTS_FIRST_WORD,
  W_BOOT,
  W_DB_ID,
  W_HISTORY_FLOOR,
  W_META_WRITES,
  W_LOG_GENERATION,
  W_QUEUE_TICKET,
  W_MAGIC,
  W_CHANGES,
  W_WATCHERS,
  W_SEQ,
  W_TXN,
  W_VERSION,
  ownerIsFallback,
  ownerPid,
  queueWord,
  slotFlags,
  slotFlagsWord,
  slotWord,
  txnCheck,
} from './layout.js';
import { openStore, type StoreKind, type WordStore } from './store.js';
import type { ReaderSlot } from './layout.js';

export type { ReaderSlot } from './layout.js';

/** The latest commit as the writer published it (§2.2), in word order. */
export interface PublishedState {
  txnId: number;
  root: number;
  depth: number;
  entryCount: number;
  pageCount: number;
  logEnd: number;
  recordPosition: number;
  logGeneration: number;
  historyFloor: number;
  checkpointTxn: number;
  writer: number;
}


let bootIdCache: number | null = null;

/** A number that changes when the machine reboots (§2.1): Linux boot_id, else the boot time in minutes. */
export function bootId(): number {
  if (bootIdCache !== null) return bootIdCache;
  try {
    const id = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/-/g, '').slice(0, 12);
    bootIdCache = parseInt(id, 16) + 1;
  } catch {
    bootIdCache = Math.round((Date.now() / 1000 - os.uptime()) / 60);
  }
  return bootIdCache;
}

export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

export class Coordinator {
  readonly owner: number;
  readonly slot: number;
  /** The txn our slot shows (0 = no snapshot held). */
  private slotTxn = 0;
  private holdsWriter = false;
  private closed = false;
  private readonly block = new Float64Array(PUBLISHED_WORDS);
  private readonly slots = new Float64Array(SLOT_COUNT * SLOT_WORDS);
  private readonly queue = new Float64Array(QUEUE_ENTRIES * QUEUE_ENTRY_WORDS);
  /** The writer-queue entry this handle holds (§2.5), or -1. */
  private queueEntry = -1;
  /** The ticket this handle's entry shows (0: none). */
  private shownTicket = 0;

  private constructor(
    private readonly store: WordStore,
    owner: number,
    slot: number,
  ) {
    this.owner = owner;
    this.slot = slot;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get kind(): StoreKind {
    return this.store.kind;
  }

  /**
   * Opens the lock file of the database `dbId` at `dbPath` and claims a reader
   * slot (§3.1). A table left by an earlier boot or another database is reset
   * first, under the writer lock.
   */
  static open(dbPath: string, fsOwner: object | null, dbId: number, lockTimeoutMs: number): Coordinator {
    const store = openStore(dbPath, fsOwner);
    try {
      const fresh = (): boolean => store.load(W_MAGIC) === LOCK_MAGIC && store.load(W_BOOT) === bootId() && store.load(W_DB_ID) === dbId;
      if (!fresh()) {
        if (!lockWithin(store, lockTimeoutMs)) throw busy(dbPath, lockTimeoutMs);
        try {
          if (!fresh()) {
            for (let w = 0; w < LOCK_FILE_WORDS; w++) store.store(w, 0);
            store.store(W_VERSION, LOCK_VERSION);
            store.store(W_BOOT, bootId());
            store.store(W_DB_ID, dbId);
            store.store(W_MAGIC, LOCK_MAGIC);
          }
        } finally {
          store.unlockWriter();
        }
      }
      const flags = store.kind === 'file' ? FLAG_FALLBACK : 0;
      for (let attempt = 0; attempt < 3; attempt++) {
        const c = claim(store, flags);
        if (c !== null) {
          const coord = new Coordinator(store, c.owner, c.slot);
          coord.checkImplementations(dbPath);
          return coord;
        }
      }
      throw new NorthstarError('WriteBusy', `${dbPath}: all ${SLOT_COUNT} reader slots of the lock file are taken by live handles`);
    } catch (err) {
      store.close();
      throw err;
    }
  }

  /** True when another live handle has finished opening: it keeps the published state current. */
  othersReady(): boolean {
    this.store.loadMany(SLOTS_FIRST_WORD, this.slots);
    for (let i = 0; i < SLOT_COUNT; i++) {
      const owner = this.slots[i * SLOT_WORDS + SLOT_OWNER]!;
      if (owner === 0 || owner === this.owner) continue;
      if ((slotFlags(this.slots[i * SLOT_WORDS + SLOT_FLAGS]!, owner) & FLAG_READY) !== 0 && this.isAlive(ownerPid(owner))) return true;
    }
    return false;
  }

  markReady(): void {
    const w = slotWord(this.slot, SLOT_FLAGS);
    this.store.store(w, slotFlagsWord(this.owner, slotFlags(this.store.load(w), this.owner) | FLAG_READY));
  }

  /** The published txn id: one word, the fast path of beginRead (§4.1). */
  publishedTxn(): number {
    return this.store.load(W_TXN);
  }

  /**
   * The whole published block, consistent (seqlock, §2.2), or null when W_SEQ
   * stays odd: at once when this handle holds the writer lock (only the holder
   * publishes, so the publisher died between its two W_SEQ stores and the block
   * is half-written), else after `patienceMs`. The caller then rebuilds the
   * state from the files under the writer lock and publishes it.
   */
  readPublished(patienceMs: number): PublishedState | null {
    const b = this.block;
    let oddSince = 0;
    for (;;) {
      const s1 = this.store.load(W_SEQ);
      if (s1 % 2 === 0) {
        this.store.loadMany(PUBLISHED_FIRST, b);
        if (this.store.load(W_SEQ) === s1) break;
      } else if (this.holdsWriter) return null;
      else if (oddSince === 0) oddSince = Date.now();
      else if (Date.now() - oddSince >= patienceMs) return null;
      sleepMs(0);
    }
    return {
      txnId: b[0]!,
      root: b[1]!,
      depth: b[2]!,
      entryCount: b[3]!,
      pageCount: b[4]!,
      logEnd: b[5]!,
      recordPosition: b[6]!,
      logGeneration: b[7]!,
      historyFloor: b[8]!,
      checkpointTxn: b[9]!,
      writer: b[10]!,
    };
  }

  /** Publishes a new latest commit; only the writer-lock holder calls this (§2.2). */
  publish(p: PublishedState): void {
    const seq = this.store.load(W_SEQ);
    // Odd: the last publisher died between its two stores; this publish ends that.
    const odd = seq % 2 === 0 ? seq + 1 : seq + 2;
    this.store.store(W_SEQ, odd);
    const values = [p.txnId, p.root, p.depth, p.entryCount, p.pageCount, p.logEnd, p.recordPosition, p.logGeneration, p.historyFloor, p.checkpointTxn, p.writer];
    // A reader on the fast path that sees the new txn goes on to the seqlock read, which waits for the even W_SEQ.
    this.store.storeMany(PUBLISHED_FIRST, values);
    this.store.store(W_SEQ, odd + 1);
    this.store.signal(W_CHANGES, W_WATCHERS);
  }

  /**
   * Calls `onChange` on this thread soon after any handle, in any thread or
   * process, publishes or lets the writer go (§2.6); null where the store
   * cannot watch (then look on a timer). Close it to stop.
   */
  watchChanges(onChange: () => void): { close(): void } | null {
    return this.store.watch(W_CHANGES, onChange);
  }

  /**
   * Counts this handle among those listening to changes (true) or takes it
   * out (false), §2.6: publishes and writer releases bump and wake only while
   * some handle listens. Called in pairs, by changes.ts alone.
   */
  countListener(on: boolean): void {
    this.store.countWatchers(W_WATCHERS, on ? 1 : -1);
  }

  /** The log generation word alone (no seqlock): for a recovery to publish a later one. */
  publishedGeneration(): number {
    return this.store.load(W_LOG_GENERATION);
  }

  /** The oldest txn the writer keeps pages for (its history window); readers re-check it (§4.2). */
  historyFloor(): number {
    return this.store.load(W_HISTORY_FLOOR);
  }

  /** Meta writes so far (§2.4): unchanged since a writer last checked, the metas are as it saw them. */
  metaWrites(): number {
    return this.store.load(W_META_WRITES);
  }

  /** Counts a meta write about to happen (§2.4), under the writer lock; returns the new count. */
  noteMetaWrite(): number {
    const n = this.store.load(W_META_WRITES) + 1;
    this.store.store(W_META_WRITES, n);
    return n;
  }

  /** Sets the floor before the writer scans the slots (§4.3). */
  setHistoryFloor(txnId: number): void {
    // Most commits leave it where it was: a load is cheaper than a store of the same value.
    if (this.store.load(W_HISTORY_FLOOR) !== txnId) this.store.store(W_HISTORY_FLOOR, txnId);
  }

  get readerTxn(): number {
    return this.slotTxn;
  }

  /** Shows `txnId` (0: none) as the oldest snapshot this handle holds (§4.2). */
  setReaderTxn(txnId: number): void {
    if (txnId === this.slotTxn) return;
    this.slotTxn = txnId;
    if (this.store.kind !== 'file') {
      // One atomic word: a reader of the table never sees it half-written.
      this.store.store(slotWord(this.slot, SLOT_TXN), txnId);
      return;
    }
    this.store.store(slotWord(this.slot, SLOT_TXN_CHECK), 0);
    this.store.store(slotWord(this.slot, SLOT_TXN), txnId);
    this.store.store(slotWord(this.slot, SLOT_TXN_CHECK), txnCheck(txnId));
  }

  /**
   * The oldest snapshot any other live handle holds, and the slots seen. Slots
   * of dead processes are reclaimed on the way (§4.3).
   */
  otherReaders(): { oldest: number | null; slots: ReaderSlot[] } {
    let oldest: number | null = null;
    const slots: ReaderSlot[] = [];
    for (let attempt = 0; ; attempt++) {
      this.store.loadMany(SLOTS_FIRST_WORD, this.slots);
      let torn = false;
      oldest = null;
      slots.length = 0;
      // One kill(pid, 0) per process per scan: the handles of a process's worker threads share its pid.
      const alive = new Map<number, boolean>();
      for (let i = 0; i < SLOT_COUNT; i++) {
        const o = i * SLOT_WORDS;
        const owner = this.slots[o + SLOT_OWNER]!;
        if (owner === 0 || owner === this.owner) continue;
        const pid = ownerPid(owner);
        let live = alive.get(pid);
        if (live === undefined) alive.set(pid, (live = this.isAlive(pid)));
        if (!live) {
          if (this.store.compareExchange(slotWord(i, SLOT_OWNER), owner, 0)) continue;
        }
        const txn = this.slots[o + SLOT_TXN]!;
        const check = this.slots[o + SLOT_TXN_CHECK]!;
        if (this.store.kind === 'file' && check !== txnCheck(txn)) {
          // Mid-update (file fallback): read again; a slot being set is never older than its last value.
          torn = true;
          continue;
        }
        if (txn === 0) continue;
        slots.push({ pid, txnId: txn });
        if (oldest === null || txn < oldest) oldest = txn;
      }
      if (!torn || attempt >= 100) return { oldest, slots };
      sleepMs(0);
    }
  }

  /**
   * Takes the writer lock, waiting up to timeoutMs (0: try once), blocking
   * this thread while it waits (Atomics.wait): for scripts and for open().
   * It waits its turn in the writer queue (§5.2) like every other waiter.
   */
  lockWriter(timeoutMs: number): boolean {
    if (this.tryLockWriter(this.shownTicket)) return true;
    if (timeoutMs === 0) return false;
    const ticket = this.takeTicket();
    try {
      return pollWithin(timeoutMs, () => {
        this.showTicket(ticket);
        return this.tryLockWriter(ticket);
      });
    } finally {
      this.showTicket(0);
    }
  }

  /**
   * Takes the writer lock if it is free and no live waiter holds a ticket
   * before `ticket` (0: this handle is not queued, so any live waiter comes
   * first). Never waits.
   */
  tryLockWriter(ticket: number): boolean {
    if (this.holdsWriter) return true;
    if (!this.isFirstInQueue(ticket)) return false;
    this.holdsWriter = this.store.tryLockWriter();
    return this.holdsWriter;
  }

  /**
   * Takes the writer lock if it is free, whoever is queued: only for repairing
   * a half-written published block (§2.2), which every waiter needs first.
   */
  lockWriterOutOfTurn(): boolean {
    if (!this.holdsWriter) this.holdsWriter = this.store.tryLockWriter();
    return this.holdsWriter;
  }

  /** A new ticket for the writer queue (§5.2): the number after the last one handed out. */
  takeTicket(): number {
    for (;;) {
      const last = this.store.load(W_QUEUE_TICKET);
      if (this.store.compareExchange(W_QUEUE_TICKET, last, last + 1)) return last + 1;
    }
  }

  /**
   * Shows `ticket` in this handle's queue entry as the ticket of its first
   * waiter, with the time, so others see it is still looking (§2.5); 0 shows
   * that it waits no more. A waiter calls this on every look. With every
   * entry taken the handle waits unqueued: it then goes when it finds the lock
   * free and no queued waiter.
   */
  showTicket(ticket: number): void {
    if (ticket === 0) {
      if (this.shownTicket !== 0 && this.ownsQueueEntry()) this.store.store(queueWord(this.queueEntry, QUEUE_TICKET), 0);
      this.shownTicket = 0;
      return;
    }
    if (!this.ownsQueueEntry()) this.queueEntry = this.claimQueueEntry();
    if (this.queueEntry >= 0) {
      this.store.store(queueWord(this.queueEntry, QUEUE_HEARTBEAT), Date.now());
      if (this.shownTicket !== ticket || this.store.load(queueWord(this.queueEntry, QUEUE_TICKET)) !== ticket) {
        this.store.store(queueWord(this.queueEntry, QUEUE_TICKET), ticket);
      }
    }
    this.shownTicket = ticket;
  }

  /**
   * True when no live waiter of another handle shows a ticket before `ticket`
   * (0: none at all). Entries of dead processes are freed on the way; one
   * whose waiter has not looked for QUEUE_STALE_MS is passed over (its thread
   * is blocked or gone), and freed after QUEUE_ABANDONED_MS.
   */
  isFirstInQueue(ticket: number): boolean {
    // Nobody ever queued on this table: the common case costs one load.
    if (this.store.load(W_QUEUE_TICKET) === 0) return true;
    const q = this.queue;
    this.store.loadMany(QUEUE_FIRST_WORD, q);
    const now = Date.now();
    for (let i = 0; i < QUEUE_ENTRIES; i++) {
      const o = i * QUEUE_ENTRY_WORDS;
      const owner = q[o + QUEUE_OWNER]!;
      const t = q[o + QUEUE_TICKET]!;
      if (owner === 0 || owner === this.owner || t === 0) continue;
      const silent = now - q[o + QUEUE_HEARTBEAT]!;
      if (!this.isAlive(ownerPid(owner)) || silent > QUEUE_ABANDONED_MS) {
        this.store.compareExchange(queueWord(i, QUEUE_OWNER), owner, 0);
        continue;
      }
      if (silent > QUEUE_STALE_MS) continue;
      if (ticket === 0 || t < ticket) return false;
    }
    return true;
  }

  private ownsQueueEntry(): boolean {
    return this.queueEntry >= 0 && this.store.load(queueWord(this.queueEntry, QUEUE_OWNER)) === this.owner;
  }

  /** A free queue entry, now this handle's, or -1 when all are taken. */
  private claimQueueEntry(): number {
    for (let i = 0; i < QUEUE_ENTRIES; i++) {
      const w = queueWord(i, QUEUE_OWNER);
      if (this.store.load(w) === 0 && this.store.compareExchange(w, 0, this.owner)) {
        this.store.store(queueWord(i, QUEUE_TICKET), 0);
        return i;
      }
    }
    return -1;
  }

  /** Gives the queue entry back. */
  private freeQueueEntry(): void {
    if (!this.ownsQueueEntry()) return;
    this.store.store(queueWord(this.queueEntry, QUEUE_TICKET), 0);
    this.store.compareExchange(queueWord(this.queueEntry, QUEUE_OWNER), this.owner, 0);
    this.queueEntry = -1;
    this.shownTicket = 0;
  }

  get writerLocked(): boolean {
    return this.holdsWriter;
  }

  unlockWriter(): void {
    if (!this.holdsWriter) return;
    this.holdsWriter = false;
    this.store.unlockWriter();
    this.store.signal(W_CHANGES, W_WATCHERS);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.unlockWriter();
      this.freeQueueEntry();
      this.freeSlot();
    } finally {
      this.store.close();
    }
  }

  /**
   * Gives the slot back: the store stays open. The owner word goes to 0 by a
   * plain store, not a compare-and-swap (§2.3): while this handle lives nobody
   * else writes it (a claimer swaps only a 0, a reclaimer only a dead owner),
   * and in the file fallback a compare-and-swap costs the claim lock, whose
   * directory made up a quarter of an open + close.
   */
  private freeSlot(): void {
    this.store.store(slotWord(this.slot, SLOT_TXN), 0);
    this.store.store(slotWord(this.slot, SLOT_FLAGS), 0);
    this.store.store(slotWord(this.slot, SLOT_OWNER), 0);
  }

  /** A mixed open would mean two kinds of writer lock that do not exclude each other (§3.2). */
  private checkImplementations(dbPath: string): void {
    const mine = ownerIsFallback(this.owner);
    this.store.loadMany(SLOTS_FIRST_WORD, this.slots);
    for (let i = 0; i < SLOT_COUNT; i++) {
      const owner = this.slots[i * SLOT_WORDS + SLOT_OWNER]!;
      if (owner === 0 || owner === this.owner) continue;
      if (ownerIsFallback(owner) !== mine && this.isAlive(ownerPid(owner))) {
        // Only the slot: Coordinator.open closes the store it opened when this throws.
        this.freeSlot();
        const other = mine ? 'the native addon' : 'the TypeScript fallback (NORTHSTAR_NATIVE=0 or no addon)';
        throw new NorthstarError('InvalidArgument', `${dbPath} is open in process ${ownerPid(owner)} with ${other}; every handle on one database must use the same implementation`);
      }
    }
  }

  /**
   * Asked afresh every time (kill(pid, 0): under a microsecond for a live pid): a
   * remembered "dead" could reclaim the slot of a new process that got the pid
   * since, and a remembered "alive" would keep a dead reader's pages from reuse
   * past the next scan (§4.3).
   */
  private isAlive(pid: number): boolean {
    return this.store.kind === 'memory' ? true : processAlive(pid);
  }
}

function busy(dbPath: string, ms: number): NorthstarError {
  return new NorthstarError('WriteBusy', `${dbPath}: the writer lock stayed busy for ${ms} ms`);
}

/** The writer lock, polling with backoff up to timeoutMs, whoever is queued (for resetting a stale table). */
function lockWithin(store: WordStore, timeoutMs: number): boolean {
  return store.tryLockWriter() || (timeoutMs > 0 && pollWithin(timeoutMs, () => store.tryLockWriter()));
}

/** Tries `attempt` until it succeeds or `timeoutMs` has passed, sleeping (blocking) 1 ms doubling to 20 ms between tries. */
function pollWithin(timeoutMs: number, attempt: () => boolean): boolean {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
    if (attempt()) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    sleepMs(Math.min(wait, left));
  }
}

/** Claims a free slot or one of a dead process (§3.1); null when every slot is live. */
function claim(store: WordStore, flags: number): { owner: number; slot: number } | null {
  // The kind goes into the owner id, so the compare-and-swap that claims the slot also shows it.
  const kind = (flags & FLAG_FALLBACK) !== 0 ? OWNER_FALLBACK : 0;
  const owner = process.pid * OWNER_PID_SCALE + randomInt(1, OWNER_PID_SCALE / 2) * 2 + kind;
  for (let i = 0; i < SLOT_COUNT; i++) {
    const w = slotWord(i, SLOT_OWNER);
    let current = store.load(w);
    if (current !== 0 && store.kind !== 'memory' && !processAlive(ownerPid(current))) {
      if (store.compareExchange(w, current, 0)) current = 0;
    }
    if (current === 0 && store.compareExchange(w, 0, owner)) {
      store.store(slotWord(i, SLOT_TXN_CHECK), 0);
      store.store(slotWord(i, SLOT_TXN), 0);
      store.store(slotWord(i, SLOT_TXN_CHECK), txnCheck(0));
      store.store(slotWord(i, SLOT_FLAGS), slotFlagsWord(owner, flags));
      return { owner, slot: i };
    }
  }
  return null;
}
