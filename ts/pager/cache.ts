// Bounded page cache with CLOCK (second-chance) eviction (spec §9). Holds
// verified, immutable page buffers keyed by page id. Lookups cost one Map get
// and one byte store; nothing is allocated on a hit. The per-slot arrays grow
// (doubling) as pages come in, up to `capacity`: at the default 256 MiB a
// cache has 16,384 slots, and making their arrays at open took longer than
// the rest of opening a database.

import { readU64 } from '../format/bytes.js';
import { TXN_ID_OFFSET, TYPE_OFFSET } from '../format/constants.js';

/** Spare hint arrays a cache keeps (PageCache.takeHints): more than a catch-up reads ahead at once is rare. */
const SPARE_HINTS = 64;
/** Hint arrays are allocated in multiples of this many words (64 bytes). */
const HINT_ROUND = 16;
/** Slots a cache starts with (or its capacity, if smaller). */
const FIRST_SLOTS = 64;

export class PageCache {
  private readonly slotOf = new Map<number, number>();
  /** Per slot, as many as allocated so far (`slots`, at most `capacity`): the page's id (-1: empty), the page. */
  private ids!: number[];
  private pages!: (Uint8Array | undefined)[];
  private referenced!: Uint8Array;
  /** Search hints of the page in each slot, built on first use (ts/pager/hints.ts); dropped with it. */
  private hints!: (Uint32Array | undefined)[];
  /** An Int32Array over the page in each slot, made on first use (value copies); dropped with it. */
  private words!: (Int32Array | undefined)[];
  /** Searches of the page in each slot while it has no hints (saturating). */
  private searches!: Uint8Array;
  /**
   * Hint arrays of pages dropped from the cache, at most SPARE_HINTS, for the
   * next pages' hints (takeHints): a catch-up that reads pages ahead replaces
   * pages that had hints, and a new typed array costs as much as building
   * the hints in it (spec §9.2).
   */
  private readonly spareHints = new Map<number, Uint32Array[]>();
  /** Arrays in spareHints, all lengths together. */
  private spareCount = 0;
  /** Bytes of all hint arrays held, spares included (at most about a quarter of the pages': spec §9.2). */
  hintBytes = 0;
  /** Txn id and page type of the page in each slot (its header, read once at put); replaced when the slots grow. */
  txns!: Float64Array;
  types!: Uint8Array;
  /** The slot of the page the last get or put returned, -1 after a miss. */
  last = -1;
  private hand = 0;
  /** Slots allocated: the length of every per-slot array. */
  private slots = 0;
  hits = 0;
  misses = 0;
  evictions = 0;

  /** capacity: the most pages held at once (≥ 1). */
  constructor(readonly capacity: number) {
    this.emptySlots();
  }

  /** Per-slot arrays of FIRST_SLOTS empty slots (or `capacity`, if smaller): at construction and clear(). */
  private emptySlots(): void {
    this.ids = [];
    this.pages = [];
    this.hints = [];
    this.words = [];
    this.referenced = new Uint8Array(0);
    this.searches = new Uint8Array(0);
    this.types = new Uint8Array(0);
    this.txns = new Float64Array(0);
    this.slots = 0;
    this.grow(Math.min(this.capacity, FIRST_SLOTS));
  }

  /** Makes the per-slot arrays `n` long (n > slots), the new slots empty. */
  private grow(n: number): void {
    const from = this.slots;
    for (let s = from; s < n; s++) {
      this.ids.push(-1);
      this.pages.push(undefined);
      this.hints.push(undefined);
      this.words.push(undefined);
    }
    const longer = <T extends Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.referenced = longer(this.referenced, (k) => new Uint8Array(k));
    this.searches = longer(this.searches, (k) => new Uint8Array(k));
    this.types = longer(this.types, (k) => new Uint8Array(k));
    this.txns = longer(this.txns, (k) => new Float64Array(k));
    this.slots = n;
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** Whether page id is held; counts neither a hit nor a miss. */
  has(id: number): boolean {
    return this.slotOf.has(id);
  }

  get(id: number): Uint8Array | undefined {
    const s = this.slotOf.get(id);
    if (s === undefined) {
      this.misses++;
      this.last = -1;
      return undefined;
    }
    this.hits++;
    this.referenced[s] = 1;
    this.last = s;
    return this.pages[s];
  }

  /**
   * Inserts or replaces the page for id. `header`: a buffer with the same
   * bytes whose header is read instead of `page`'s (a page just written, cached
   * as a view of the mapped file, whose first read would fault the mapping in).
   */
  put(id: number, page: Uint8Array, header: Uint8Array = page): void {
    const existing = this.slotOf.get(id);
    if (existing !== undefined) {
      this.pages[existing] = page;
      this.dropDerived(existing);
      this.noteHeader(existing, header);
      this.referenced[existing] = 1;
      this.last = existing;
      return;
    }
    const s = this.victim();
    const old = this.ids[s]!;
    if (old !== -1) {
      this.slotOf.delete(old);
      this.evictions++;
    }
    this.ids[s] = id;
    this.pages[s] = page;
    this.dropDerived(s);
    this.noteHeader(s, header);
    this.referenced[s] = 0;
    this.slotOf.set(id, s);
    this.last = s;
  }

  private noteHeader(s: number, page: Uint8Array): void {
    this.txns[s] = readU64(page, TXN_ID_OFFSET);
    this.types[s] = page[TYPE_OFFSET]!;
  }

  hintsAt(s: number): Uint32Array | undefined {
    return this.hints[s];
  }

  wordsAt(s: number): Int32Array | undefined {
    return this.words[s];
  }

  setWords(s: number, w: Int32Array): void {
    this.words[s] = w;
  }

  /** Counts one search of the page in slot s; returns the count so far. */
  countSearch(s: number): number {
    const n = this.searches[s]!;
    if (n < 255) this.searches[s] = n + 1;
    return n + 1;
  }

  /** Gives the page in slot s its hints (it had none: hintsAt(s) was undefined). */
  setHints(s: number, h: Uint32Array): void {
    this.hints[s] = h;
    this.hintBytes += h.byteLength;
  }

  /**
   * An array for new hints of `words` words, `words` rounded up to HINT_ROUND
   * long: a spare of that length, else a new one. Rounding lets a page whose
   * cell count moves a little reuse the array of the version it replaces.
   */
  takeHints(words: number): Uint32Array {
    const length = Math.ceil(words / HINT_ROUND) * HINT_ROUND;
    const h = this.spareHints.get(length)?.pop();
    if (h === undefined) return new Uint32Array(length);
    this.spareCount--;
    this.hintBytes -= h.byteLength; // counted again by setHints
    return h;
  }

  /** Drops what the cache derived from the page in slot s: hints (kept as a spare), search count, word view. */
  private dropDerived(s: number): void {
    this.searches[s] = 0;
    this.words[s] = undefined;
    const h = this.hints[s];
    if (h === undefined) return;
    this.hints[s] = undefined;
    if (h.length === 0 || this.spareCount === SPARE_HINTS) {
      this.hintBytes -= h.byteLength;
      return;
    }
    const spares = this.spareHints.get(h.length);
    if (spares === undefined) this.spareHints.set(h.length, [h]);
    else spares.push(h);
    this.spareCount++;
  }

  /** The slot holding `page` if the last get or put returned it, else -1. */
  lastSlotOf(page: Uint8Array): number {
    const s = this.last;
    return s >= 0 && this.pages[s] === page ? s : -1;
  }

  delete(id: number): void {
    const s = this.slotOf.get(id);
    if (s === undefined) return;
    this.slotOf.delete(id);
    this.ids[s] = -1;
    this.pages[s] = undefined;
    this.dropDerived(s);
    this.referenced[s] = 0;
    if (this.last === s) this.last = -1;
  }

  /** Drops every page and gives back the slots' memory (the arrays start small again). */
  clear(): void {
    this.slotOf.clear();
    this.emptySlots();
    this.spareHints.clear();
    this.spareCount = 0;
    this.hintBytes = 0;
    this.hand = 0;
    this.last = -1;
  }

  /** Next slot to fill: an empty one, or the first unreferenced one the hand passes. */
  private victim(): number {
    const n = this.capacity;
    if (this.slotOf.size < n) {
      // Fill empty slots first; the hand walks them in order. All in use: twice the slots.
      const slots = this.slots;
      if (this.slotOf.size === slots) {
        this.grow(Math.min(n, 2 * slots));
        this.hand = slots; // the first new slot
      }
      const m = this.slots;
      for (;;) {
        const s = this.hand;
        this.hand = s + 1 === m ? 0 : s + 1;
        if (this.ids[s] === -1) return s;
      }
    }
    for (;;) {
      const s = this.hand;
      this.hand = s + 1 === n ? 0 : s + 1;
      if (this.referenced[s] === 0) return s;
      this.referenced[s] = 0;
    }
  }
}
