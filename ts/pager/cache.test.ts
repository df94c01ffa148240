// PageCache's spare hint arrays (spec/file_format_v1.md §9.2): a page that
// leaves the cache gives its hint array to the next page's hints, and
// hintBytes counts every array held.

import { describe, expect, it } from 'vitest';
import { PageCache } from './cache.js';

const page = (): Uint8Array => new Uint8Array(64);

describe('PageCache hint arrays', () => {
  it('a dropped page keeps its hint array as a spare; takeHints hands it out again when it fits, else makes a new one rounded up', () => {
    const c = new PageCache(4);
    c.put(1, page());
    const h = c.takeHints(100);
    expect(h.length).toBe(112); // rounded up to 16 words
    c.setHints(c.last, h);
    expect(c.hintBytes).toBe(448);
    c.delete(1);
    expect(c.hintBytes, 'the spare is still held').toBe(448);
    c.put(2, page());
    expect(c.takeHints(200), 'too small: a new array').not.toBe(h);
    expect(c.takeHints(90), 'more than 16 words too long: a new array').not.toBe(h);
    const again = c.takeHints(105);
    expect(again).toBe(h);
    expect(c.hintBytes, 'handed out: counted again when set').toBe(0);
    c.setHints(c.last, again);
    expect(c.hintBytes).toBe(448);
  });

  it('a page replaced under the same id, or evicted by another, gives up its array; clear() drops the spares', () => {
    const c = new PageCache(2);
    for (const id of [1, 2]) {
      c.put(id, page());
      c.setHints(c.last, c.takeHints(50));
    }
    c.put(1, page()); // replaced: its hints are stale
    expect(c.hintsAt(c.last)).toBeUndefined();
    c.put(3, page()); // evicts a page with hints
    expect(c.hintBytes).toBe(2 * 64 * 4);
    c.clear();
    expect(c.hintBytes).toBe(0);
  });

  it('keeps at most 64 spares', () => {
    const c = new PageCache(100);
    for (let id = 0; id < 100; id++) {
      c.put(id, page());
      c.setHints(c.last, c.takeHints(16));
    }
    for (let id = 0; id < 100; id++) c.delete(id);
    expect(c.hintBytes).toBe(64 * 16 * 4);
  });
});
