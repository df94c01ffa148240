// Pager (ts/pager/pager.ts) on its own, over an in-memory DbFile that records
// every call: read() verifies a page before its bytes are trusted and caches
// it, readUncached() reads the file every time and caches nothing, every
// failure to read a page is Corrupt naming it, writePages() coalesces runs of
// consecutive ids, extendTo() never shrinks the file and asks its size only
// past what the pager knows it reaches, and written nodes go to the cache.

import { beforeEach, describe, expect, it } from 'vitest';

import { NorthstarError } from '../errors.js';
import { NODE_CELL_START_OFFSET, PageStatus, PageType } from '../format/constants.js';
import { writeU32 } from '../format/bytes.js';
import { initNode, initPageHeader, writePageTxnId } from '../format/page.js';
import { kernels } from '../native/kernels.js';
import { pageStatusName, Pager } from './pager.js';
import { pageMapper } from './map.js';
import { expectCode, MemoryFile } from '../testing/fixtures.js';

const PS = 4096;

/** A sealed leaf of page `id` written by `txn`, holding key → value. */
function leaf(id: number, txn: number, key = 'k', value = `v${id}`): Buffer {
  const p = Buffer.alloc(PS);
  initNode(p, PageType.Leaf, id);
  expect(kernels.leafInsert(p, 0, Buffer.from(key), Buffer.from(value), value.length)).toBe(true);
  writePageTxnId(p, txn);
  kernels.pageSeal(p);
  return p;
}

function overflow(id: number, txn: number): Buffer {
  const p = Buffer.alloc(PS);
  initPageHeader(p, PageType.Overflow, id, 8);
  writePageTxnId(p, txn);
  kernels.pageSeal(p);
  return p;
}

let file: MemoryFile;
let pager: Pager;

/** Pages 0..n-1 in the file: leaves written by txn 7 (pages 0 and 1 too: the pager does not care what a meta holds). */
function fill(n: number): void {
  for (let id = 0; id < n; id++) file.write(leaf(id, 7), id * PS);
  file.calls.length = 0;
}

beforeEach(() => {
  file = new MemoryFile(PS);
  pager = new Pager(file, PS, kernels, 64 * PS);
});

describe('reading pages', () => {
  it('read() returns the verified page and caches it: a second read asks the file nothing and returns the same bytes', () => {
    fill(4);
    const p = pager.read(2);
    expect(Buffer.from(p).equals(leaf(2, 7))).toBe(true);
    expect(file.calls).toEqual(['read 2']);
    expect(pager.read(2)).toBe(p);
    expect(file.calls).toEqual(['read 2']);
    expect(pager.cache.get(2)).toBe(p);
  });

  it('readUncached() reads the file on every call and leaves the cache alone', () => {
    fill(4);
    const a = pager.readUncached(3);
    const b = pager.readUncached(3);
    expect(a).not.toBe(b);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(file.calls).toEqual(['read 3', 'read 3']);
    expect(pager.cache.get(3)).toBeUndefined();
  });

  it('readNode(id, txn) returns the page only when that txn wrote it and it is a branch or leaf', () => {
    fill(3);
    file.write(overflow(3, 7), 3 * PS);
    const p = pager.readNode(2, 7);
    expect(p).not.toBeNull();
    expect(pager.nodeType).toBe(PageType.Leaf);
    expect(pager.readNode(2, 8), 'another txn wrote it').toBeNull();
    expect(pager.readNode(3, 7), 'an overflow page').toBeNull();
  });

  it('searchLeaf finds keys in a cached leaf, through hints once it is searched often', () => {
    const p = Buffer.alloc(PS);
    initNode(p, PageType.Leaf, 2);
    const keys = Array.from({ length: 50 }, (_, i) => Buffer.from(`key${String(i).padStart(3, '0')}`));
    keys.forEach((k, i) => expect(kernels.leafInsert(p, i, k, Buffer.from('v'), 1)).toBe(true));
    writePageTxnId(p, 1);
    kernels.pageSeal(p);
    file.write(p, 2 * PS);
    for (let round = 0; round < 6; round++) {
      const page = pager.read(2);
      for (const [i, k] of keys.entries()) expect(pager.searchLeaf(page, k), `round ${round}, ${k}`).toBe((i << 1) | 1);
      expect(pager.searchLeaf(page, Buffer.from('key0055')), 'absent: where it would go').toBe(6 << 1);
    }
  });

  it('an id that is negative, fractional, NaN or unsafe is Corrupt naming it, before any read', () => {
    fill(2);
    for (const id of [-1, 1.5, Number.NaN, 2 ** 53]) {
      for (const read of [() => pager.read(id), () => pager.readUncached(id)]) {
        const e = expectCode(read, 'Corrupt');
        expect(e.message).toMatch(/reference to invalid page id/);
        expect(e.path).toBe(file.path);
      }
    }
    expect(file.calls).toEqual([]);
  });

  it('a page past the end of the file, or cut short by it, is Corrupt naming the page', () => {
    fill(3);
    file.bytes = file.bytes.subarray(0, 2 * PS + 100);
    for (const id of [2, 3, 1000]) {
      const e = expectCode(() => pager.read(id), 'Corrupt');
      expect(e.message).toMatch(new RegExp(`page ${id} lies beyond the end of the file`));
      expect(e.pageId).toBe(id);
    }
    expect(pager.cache.get(2)).toBeUndefined();
  });

  it('a page that fails verification is Corrupt with the reason, and is never cached', () => {
    fill(6);
    const damage: Array<[number, (p: Buffer) => void, number]> = [
      [1, (p) => (p[PS - 1]! ^= 1), PageStatus.BadPageChecksum],
      [2, (p) => (p[0]! ^= 0xff), PageStatus.BadMagic],
      [3, (p) => p.set(leaf(4, 7)), PageStatus.WrongPageId],
    ];
    for (const [id, hurt, status] of damage) {
      const p = Buffer.from(file.bytes.subarray(id * PS, (id + 1) * PS));
      hurt(p);
      file.bytes.set(p, id * PS);
      const e = expectCode(() => pager.read(id), 'Corrupt');
      expect(e.message).toContain(`page ${id}: ${pageStatusName(status)}`);
      expect(e.pageId).toBe(id);
      expect(pager.cache.get(id)).toBeUndefined();
      expectCode(() => pager.readUncached(id), 'Corrupt');
    }
    expect(pageStatusName(99)).toBe('status 99');
  });

  it('a node whose checksums pass but whose cell lies outside its cell area is Corrupt (bad node layout), so the kernels never meet it', () => {
    const p = leaf(2, 7);
    writeU32(p, NODE_CELL_START_OFFSET, PS - 1); // the cell now lies below the cell area
    kernels.pageSeal(p);
    expect(kernels.pageVerify(p, 2)).toBe(PageStatus.Ok);
    file.write(p, 2 * PS);
    const e = expectCode(() => pager.read(2), 'Corrupt');
    expect(e.message).toMatch(/page 2: bad node layout/);
    expect(pager.cache.get(2)).toBeUndefined();
  });
});

describe('writing pages', () => {
  it('writePages writes each page with its own write, consecutive ids too (page-sized page-cache folios)', () => {
    const ids = [2, 3, 4, 7, 9, 10, ...Array.from({ length: 300 }, (_, i) => 20 + i)];
    const pages = ids.map((id) => leaf(id, 3));
    pager.writePages(ids, pages);
    expect(file.calls).toEqual(ids.map((id) => `write ${id}`));
    for (const [i, id] of ids.entries()) expect(Buffer.from(pager.readUncached(id)).equals(pages[i]!), `page ${id}`).toBe(true);
    pager.writePages([], []);
    expect(file.calls.filter((c) => c.startsWith('write'))).toHaveLength(ids.length);
  });

  it('extendTo makes the file at least that long, never shorter, and asks its size only past what the pager wrote or found', () => {
    pager.extendTo(4 * PS);
    expect(file.calls).toEqual(['size', `truncate ${4 * PS}`]);
    expect(file.bytes.length).toBe(4 * PS);
    file.calls.length = 0;
    pager.extendTo(3 * PS);
    pager.extendTo(4 * PS);
    expect(file.calls, 'within what it knows: no size asked').toEqual([]);
    // Pages written past that end extend what it knows the file reaches.
    pager.writePages([10, 11], [leaf(10, 1), leaf(11, 1)]);
    file.calls.length = 0;
    pager.extendTo(12 * PS);
    expect(file.calls).toEqual([]);
    // Someone else made the file longer: asked once, then known; never truncated shorter.
    file.bytes = Buffer.concat([file.bytes, Buffer.alloc(8 * PS)]);
    pager.extendTo(15 * PS);
    expect(file.calls).toEqual(['size']);
    expect(file.bytes.length).toBe(20 * PS);
    file.calls.length = 0;
    pager.extendTo(19 * PS);
    expect(file.calls).toEqual([]);
  });

  it('cacheWritten caches a written branch or leaf (without a mapping, the buffer itself) and drops the cached copy of any other page', () => {
    fill(4);
    const old = pager.read(3);
    const written = leaf(3, 9, 'k', 'new');
    pager.cacheWritten(3, written);
    expect(pager.read(3)).toBe(written);
    pager.read(2);
    pager.cacheWritten(2, overflow(2, 9));
    expect(pager.cache.get(2)).toBeUndefined();
    expect(old).not.toBe(written);
  });

  it('takePage hands out a page-sized buffer, a new one each time without a mapping', () => {
    const a = pager.takePage();
    const b = pager.takePage();
    expect(a.length).toBe(PS);
    expect(a).not.toBe(b);
  });
});

describe.skipIf(pageMapper() === null)('with a mapping of a real file', () => {
  it('a written node is cached as a view of the file and its buffer goes back to takePage', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const nodePath = await import('node:path');
    const { NodeFile } = await import('../io/file.js');
    const { MAP_AFTER_READS, mappingFor } = await import('./map.js');
    const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'northstar-pager-'));
    try {
      const path = nodePath.join(dir, 'db');
      fs.writeFileSync(path, Buffer.alloc(0));
      const f = NodeFile.open(path);
      const p = new Pager(f, PS, kernels, 64 * PS, mappingFor(f));
      const page = leaf(2, 5);
      p.writePages([2], [page]);
      p.extendTo(3 * PS);
      // Its window is mapped at the MAP_AFTER_READS-th page asked of it; before, the buffer itself is cached.
      for (let i = 1; i < MAP_AFTER_READS; i++) {
        p.cacheWritten(2, page);
        expect(p.read(2)).toBe(page);
      }
      p.cacheWritten(2, page);
      const cached = p.read(2);
      expect(cached).not.toBe(page);
      expect(Buffer.from(cached).equals(page)).toBe(true);
      expect(p.takePage()).toBe(page);
      expect(p.map!.pages).toBeGreaterThan(0);
      p.map!.close();
      f.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

it('errors are NorthstarErrors', () => {
  expect(() => pager.read(-1)).toThrow(NorthstarError);
});
