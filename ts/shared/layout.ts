// The lock file `<db>.lock` (spec/concurrency_v0.md §2): 64-bit words shared by
// every handle on one database, in every thread and process. Word indexes, not
// byte offsets: word w is the little-endian i64 at byte 8 × w. Every value is
// an integer below 2^53. An all-zero file is a valid empty table.

/** "NSLK": set by the first opener of a boot (§2.1). */
export const LOCK_MAGIC = 0x4e534c4b;
export const LOCK_VERSION = 0;

// §2.1 Header.
export const W_MAGIC = 0;
export const W_VERSION = W_MAGIC + 1;
/** Identifies the machine boot that wrote the table: a table from an earlier boot is stale whole. */
export const W_BOOT = W_VERSION + 1;
/** Database id (meta) the published state belongs to. */
export const W_DB_ID = W_BOOT + 1;

// §2.2 Published state: written only by the writer-lock holder, under a seqlock.
/** Odd while the holder is writing the block below; bumped by 2 per publish. */
export const W_SEQ = 8;
export const W_TXN = W_SEQ + 1;
export const W_ROOT = W_TXN + 1;
export const W_DEPTH = W_ROOT + 1;
export const W_ENTRIES = W_DEPTH + 1;
export const W_PAGE_COUNT = W_ENTRIES + 1;
/** Log position just past the last published commit's record. */
export const W_LOG_END = W_PAGE_COUNT + 1;
/** Log position of the last published commit's record (0 before the first). */
export const W_RECORD_POSITION = W_LOG_END + 1;
/** Bumped whenever the log file is replaced (truncateLog): handles reopen it. */
export const W_LOG_GENERATION = W_RECORD_POSITION + 1;
/** Oldest txn whose pages the writer keeps (its history window, §4). */
export const W_HISTORY_FLOOR = W_LOG_GENERATION + 1;
/** Txn id of the durable checkpoint (the meta the data file holds). */
export const W_CHECKPOINT_TXN = W_HISTORY_FLOOR + 1;
/** Owner id of the handle that published this state. */
export const W_WRITER = W_CHECKPOINT_TXN + 1;
export const PUBLISHED_FIRST = W_TXN;
export const PUBLISHED_WORDS = W_WRITER - W_TXN + 1;

// §2.4 Meta writes: outside the seqlock block, written only by the writer-lock holder.
/** Bumped before every write of a meta page (a checkpoint): a writer that saw no bump since it last checked skips re-reading the metas (§5). */
export const W_META_WRITES = 20;

// §2.6 Change word: outside the seqlock block.
/**
 * Bumped, with a wake-up of every handle watching it in any process, after
 * every publish and every release of the writer lock (Coordinator.signalChange):
 * a handle waiting for the writer or for a commit sleeps on it instead of
 * looking on a timer. Only its changes matter, never its value.
 */
export const W_CHANGES = 22;
/**
 * How many handles, in every process, listen to W_CHANGES now (changes.ts):
 * one added before a handle's first listener, one taken away after its last.
 * A signaller that reads 0 here after its change skips the bump and the
 * wake-up (a futex syscall, about a tenth of a small commit's CPU).
 */
export const W_WATCHERS = 23;

// §2.5 Writer queue: who waits for the writer lock, in the order they asked (§5.2).
/** The last ticket handed out; a waiter takes the next by compare-and-swap. */
export const W_QUEUE_TICKET = 21;
export const QUEUE_FIRST_WORD = 64;
export const QUEUE_ENTRY_WORDS = 3;
/** Owner id of the waiting handle; 0 = free. */
export const QUEUE_OWNER = 0;
/** The ticket of the handle's first waiter (lowest ticket first); 0 = not waiting now. */
export const QUEUE_TICKET = 1;
/** Date.now() when the waiter last looked: an entry silent for QUEUE_STALE_MS is passed over. */
export const QUEUE_HEARTBEAT = 2;
export const QUEUE_ENTRIES = 128;
/** A waiter that has not looked for this long (its thread blocked or gone) no longer holds the others back. */
export const QUEUE_STALE_MS = 5000;
/** An entry silent this long belongs to a thread that is gone without closing (a terminated worker): it is freed. */
export const QUEUE_ABANDONED_MS = 60_000;

// §2.3 Reader slots.
export const SLOTS_FIRST_WORD = 512;
export const SLOT_WORDS = 4;
export const SLOT_OWNER = 0;
/** Oldest snapshot the slot's handle holds, 0 = none. */
export const SLOT_TXN = 1;
/** `CHECK_XOR ^ txn` (low 32 bits) … lets a reader of the table tell a torn slot write (file fallback). */
export const SLOT_TXN_CHECK = 2;
export const SLOT_FLAGS = 3;
export const SLOT_COUNT = 1024;
export const LOCK_FILE_WORDS = SLOTS_FIRST_WORD + SLOT_COUNT * SLOT_WORDS;
export const LOCK_FILE_SIZE = LOCK_FILE_WORDS * 8;

/** Slot flag: the handle finished opening (it has adopted or published a state). */
export const FLAG_READY = 1;
/** Slot flag: the handle uses the file fallback (its writer lock is a DirLock, not flock); as OWNER_FALLBACK, for tools. */
export const FLAG_FALLBACK = 2;

/** Owner ids: pid × 2^24 + a 24-bit nonce (unique among live slots), random but for bit 0. */
export const OWNER_PID_SCALE = 2 ** 24;
/**
 * Owner-id bit 0: the handle uses the file fallback. The implementation check
 * (§3.2) reads it here, not in SLOT_FLAGS: the claim's compare-and-swap writes
 * it with the owner, while the flags word follows a moment later, so a check
 * racing a claim would read a fallback slot's flags as native.
 */
export const OWNER_FALLBACK = 1;

/**
 * The SLOT_FLAGS word is `(owner mod 2^24) × 4 + flags`: the flags count only
 * while the word names the slot's owner (slotFlags). A slot taken over from a
 * dead process keeps that process's word, FLAG_READY included, from the
 * claiming compare-and-swap until its new owner writes its own a moment later;
 * read bare, it showed a handle still opening as ready, and an opener then
 * adopted the stale published state of the dead processes instead of
 * recovering. (A new nonce equal to the dead owner's, 1 in 2^23, brings the
 * moment back.)
 */
export function slotFlagsWord(owner: number, flags: number): number {
  return (owner % OWNER_PID_SCALE) * 4 + flags;
}

/** The flags in a SLOT_FLAGS word if the slot's owner `owner` wrote it, else 0. */
export function slotFlags(word: number, owner: number): number {
  return Math.floor(word / 4) === owner % OWNER_PID_SCALE ? word % 4 : 0;
}

export function ownerIsFallback(owner: number): boolean {
  return owner % 2 === OWNER_FALLBACK;
}

export function slotWord(slot: number, field: number): number {
  return SLOTS_FIRST_WORD + slot * SLOT_WORDS + field;
}

export function txnCheck(txn: number): number {
  // Two halves so the value stays a safe integer.
  return (txn % 2 ** 26) * 2 ** 26 + (Math.floor(txn / 2 ** 26) % 2 ** 26) + 1;
}

export function ownerPid(owner: number): number {
  return Math.floor(owner / OWNER_PID_SCALE);
}

export function queueWord(entry: number, field: number): number {
  return QUEUE_FIRST_WORD + entry * QUEUE_ENTRY_WORDS + field;
}

/** A live handle's reader slot as stats() reports it (§2.3). */
export interface ReaderSlot {
  pid: number;
  /** Oldest snapshot the handle holds. */
  txnId: number;
}
