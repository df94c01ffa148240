// Bounded page cache with CLOCK (second-chance) eviction (spec §9). Holds
// verified, immutable page buffers keyed by page id. Lookups cost one Map get
// and one byte store; nothing is allocated on a hit.

export class PageCache {
  private readonly slotOf = new Map<number, number>();
  private readonly ids: number[];
  private readonly pages: (Uint8Array | undefined)[];
  private readonly referenced: Uint8Array;
  private hand = 0;
  hits = 0;
  misses = 0;
  evictions = 0;

  /** capacity: the most pages held at once (≥ 1). */
  constructor(readonly capacity: number) {
    this.ids = new Array<number>(capacity).fill(-1);
    this.pages = new Array<Uint8Array | undefined>(capacity).fill(undefined);
    this.referenced = new Uint8Array(capacity);
  }

  get size(): number {
    return this.slotOf.size;
  }

  get(id: number): Uint8Array | undefined {
    const s = this.slotOf.get(id);
    if (s === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.referenced[s] = 1;
    return this.pages[s];
  }

  /** Inserts or replaces the page for id. */
  put(id: number, page: Uint8Array): void {
    const existing = this.slotOf.get(id);
    if (existing !== undefined) {
      this.pages[existing] = page;
      this.referenced[existing] = 1;
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
    this.referenced[s] = 0;
    this.slotOf.set(id, s);
  }

  delete(id: number): void {
    const s = this.slotOf.get(id);
    if (s === undefined) return;
    this.slotOf.delete(id);
    this.ids[s] = -1;
    this.pages[s] = undefined;
    this.referenced[s] = 0;
  }

  clear(): void {
    this.slotOf.clear();
    this.ids.fill(-1);
    this.pages.fill(undefined);
    this.referenced.fill(0);
  }

  /** Next slot to fill: an empty one, or the first unreferenced one the hand passes. */
  private victim(): number {
    const n = this.capacity;
    if (this.slotOf.size < n) {
      // Fill empty slots first; the hand walks them in order.
      for (;;) {
        const s = this.hand;
        this.hand = s + 1 === n ? 0 : s + 1;
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
