// The native FileMapping (crates/northstar-native/src/napi/file_mapping.rs) and the
// pager's PageMap over it (spec/file_format_v1.md §9.3): a window shows the
// file's bytes as far as the file reaches and zeros past that, maps the
// file's growth in place, keeps its ArrayBuffer, survives the caller closing
// its descriptor, and refuses bad arguments with TypeError/RangeError/Error,
// never a crash. Then a database read through the mapping returns what one
// read with pread does, sees pages other handles wrote, and refuses damage.
//
// The FileMapping tests are skipped when the addon is not loaded, unless
// NORTHSTAR_REQUIRE_NATIVE=1; the database tests run in both projects and
// check which way pages were read.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import fc from 'fast-check';
import { engineOfDatabase } from '../db/internal.js';
import { describe, expect, it } from 'vitest';

import { open } from '../index.js';
import { nativeRequired } from '../testing/parity.js';
import { expectCode, useTempDir } from '../testing/fixtures.js';
import { implementation } from '../native/kernels.js';
import { MAP_AFTER_READS, PageMap, pageMapper, SEGMENT_BYTES } from './map.js';

const seed = process.env.NORTHSTAR_SEED !== undefined ? Number(process.env.NORTHSTAR_SEED) : Date.now() % 0x7fffffff;
console.log(`map.test.ts: NORTHSTAR_SEED=${seed}`);
const Mapping = pageMapper();
const skip = Mapping === null && !nativeRequired;
const KiB64 = 1 << 16;

function thrown(call: () => unknown): { kind: string; code: unknown } {
  try {
    call();
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`threw a non-Error: ${String(e)}`);
    return { kind: e.constructor.name, code: (e as { code?: unknown }).code };
  }
  throw new Error('did not throw');
}

describe.skipIf(skip)('FileMapping', () => {
  const t = useTempDir('northstar-map-');
  const M = () => {
    if (Mapping === null) throw new Error('native FileMapping required (NORTHSTAR_REQUIRE_NATIVE=1) but not loaded');
    return Mapping;
  };
  const file = (bytes: Uint8Array): { path: string; fd: number } => {
    const path = nodePath.join(t.dir, `f${Math.random().toString(36).slice(2)}`);
    fs.writeFileSync(path, bytes);
    return { path, fd: fs.openSync(path, 'r+') };
  };
  const pattern = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

  it('shows the file from offset as far as it reaches, zeros past it, and maps growth in place', () => {
    const first = pattern(3 * KiB64, 1);
    const { fd } = file(first);
    try {
      const m = new (M())(fd, KiB64, 4 * KiB64);
      const buf = m.buffer();
      expect(buf.byteLength).toBe(4 * KiB64);
      expect(m.mapped).toBe(2 * KiB64);
      const view = new Uint8Array(buf);
      expect(Buffer.from(view.subarray(0, 2 * KiB64)).equals(first.subarray(KiB64))).toBe(true);
      expect(view.subarray(2 * KiB64).every((b) => b === 0)).toBe(true);
      // The file grows: refresh maps the new bytes into the same buffer.
      const more = pattern(KiB64, 9);
      fs.writeSync(fd, more, 0, more.length, 3 * KiB64);
      expect(m.refresh()).toBe(3 * KiB64);
      expect(Buffer.from(view.subarray(2 * KiB64, 3 * KiB64)).equals(more)).toBe(true);
      // A write to mapped bytes shows at once (MAP_SHARED over the page cache).
      fs.writeSync(fd, Buffer.from([0xab]), 0, 1, KiB64 + 5);
      expect(view[5]).toBe(0xab);
      // Never more than the window, however far the file reaches.
      fs.writeSync(fd, more, 0, more.length, 10 * KiB64);
      expect(m.refresh()).toBe(4 * KiB64);
      m.close();
      m.close();
      expect(thrown(() => m.refresh())).toEqual({ kind: 'Error', code: undefined });
      expect(thrown(() => m.buffer())).toEqual({ kind: 'Error', code: undefined });
      // close() detached the buffer before unmapping: its views read as empty, never a fault.
      expect(buf.byteLength).toBe(0);
      expect(view.length).toBe(0);
      expect(view[5]).toBeUndefined();
    } finally {
      fs.closeSync(fd);
    }
  });

  it.skipIf(process.platform !== 'linux')('releases its descriptor and range at close(), not at garbage collection', () => {
    const { fd } = file(pattern(KiB64, 1));
    const open = (): number => fs.readdirSync('/proc/self/fd').length;
    try {
      const before = open();
      const ms = Array.from({ length: 50 }, () => new (M())(fd, 0, KiB64));
      for (const m of ms) m.buffer();
      expect(open()).toBeGreaterThanOrEqual(before + 50);
      for (const m of ms) m.close();
      expect(open()).toBeLessThanOrEqual(before);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('keeps its own descriptor: refresh maps the same file after the caller closed and reused the number', () => {
    const { fd } = file(pattern(KiB64, 3));
    const m = new (M())(fd, 0, 2 * KiB64);
    fs.closeSync(fd);
    const other = file(pattern(4 * KiB64, 5)); // likely gets the same number
    try {
      expect(m.refresh()).toBe(KiB64);
      expect(new Uint8Array(m.buffer())[1]).toBe(pattern(KiB64, 3)[1]);
    } finally {
      m.close();
      fs.closeSync(other.fd);
    }
  });

  it('maps an empty file as all zeros', () => {
    const { fd } = file(new Uint8Array(0));
    try {
      const m = new (M())(fd, 0, KiB64);
      expect(m.mapped).toBe(0);
      expect(new Uint8Array(m.buffer()).every((b) => b === 0)).toBe(true);
      m.close();
    } finally {
      fs.closeSync(fd);
    }
  });

  it('refuses bad arguments with TypeError, RangeError or an errno Error, never a crash', () => {
    const { fd } = file(pattern(KiB64, 1));
    const C = M();
    try {
      expect(thrown(() => new C('3' as unknown as number, 0, KiB64))).toEqual({ kind: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
      expect(thrown(() => new C(fd, null as unknown as number, KiB64))).toEqual({ kind: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
      expect(thrown(() => new C(-1, 0, KiB64))).toEqual({ kind: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      expect(thrown(() => new C(fd, 4096, KiB64))).toEqual({ kind: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      expect(thrown(() => new C(fd, 0, 0))).toEqual({ kind: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      expect(thrown(() => new C(fd, 0, KiB64 + 1))).toEqual({ kind: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      expect(thrown(() => new C(fd, 0, 2 ** 31))).toEqual({ kind: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      expect(thrown(() => new C(fd, Number.NaN, KiB64))).toEqual({ kind: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      expect(thrown(() => new C(99_999, 0, KiB64))).toEqual({ kind: 'Error', code: 'EBADF' });
      const dir = fs.openSync(t.dir, 'r');
      try {
        expect(thrown(() => new C(dir, 0, KiB64))).toEqual({ kind: 'Error', code: 'EINVAL' });
      } finally {
        fs.closeSync(dir);
      }
      expect(thrown(() => (C as unknown as (...a: unknown[]) => unknown)(fd, 0, KiB64))).toEqual({ kind: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    } finally {
      fs.closeSync(fd);
    }
  });

  it('any arguments give a window or TypeError/RangeError/Error, never a crash (property, seed printed)', () => {
    const { fd } = file(pattern(3 * KiB64, 1));
    const C = M();
    const arg = (real: number) =>
      fc.oneof(
        fc.constant(real),
        fc.anything(),
        fc.integer({ min: -2, max: 1 << 20 }).map((n) => n * KiB64),
        fc.double(),
        fc.constantFrom(0, -0, 1, KiB64, 2 ** 30, 2 ** 31, 2 ** 53, Number.NaN, Infinity, -KiB64),
      );
    try {
      fc.assert(
        fc.property(arg(fd), arg(0), arg(KiB64), (a, b, c) => {
          let m: InstanceType<typeof C> | null = null;
          try {
            m = new C(a as number, b as number, c as number);
          } catch (e) {
            expect(e).toBeInstanceOf(Error);
            return;
          }
          const view = new Uint8Array(m.buffer());
          let sum = 0;
          for (let i = 0; i < view.length; i += 4096) sum += view[i]!; // every page readable: mapped or zeros
          expect(sum).toBeGreaterThanOrEqual(0);
          m.close();
        }),
        { seed, numRuns: 400 },
      );
    } finally {
      fs.closeSync(fd);
    }
  });

  it(`PageMap maps a window at the ${MAP_AFTER_READS}th page asked of it: the pages asked before are null (read with pread)`, () => {
    const pageSize = 4096;
    const { fd } = file(pattern(4 * pageSize, 2));
    try {
      const pm = new PageMap(fd, pageSize, M());
      for (let i = 1; i < MAP_AFTER_READS; i++) expect(pm.page(i)).toBeNull();
      expect(Buffer.from(pm.page(3)!).equals(pattern(4 * pageSize, 2).subarray(3 * pageSize))).toBe(true);
      // Mapped now: every page of the window, the ones asked before too.
      expect(Buffer.from(pm.page(1)!).equals(pattern(4 * pageSize, 2).subarray(pageSize, 2 * pageSize))).toBe(true);
      // Another window counts its own.
      const far = SEGMENT_BYTES / pageSize;
      fs.writeSync(fd, pattern(pageSize, 6), 0, pageSize, far * pageSize);
      if (MAP_AFTER_READS > 1) expect(pm.page(far)).toBeNull();
      for (let i = 2; i < MAP_AFTER_READS; i++) pm.page(far);
      expect(Buffer.from(pm.page(far)!).equals(pattern(pageSize, 6))).toBe(true);
      expect(pm.pages).toBe(3);
      pm.close();
    } finally {
      fs.closeSync(fd);
    }
  });

  it('PageMap serves pages below the end of the file, maps growth, and returns null past the end or after close', () => {
    const pageSize = 4096;
    const { fd } = file(pattern(3 * pageSize, 2));
    try {
      const pm = new PageMap(fd, pageSize, M());
      for (let i = 1; i < MAP_AFTER_READS; i++) pm.page(0); // maps the first window
      expect(Buffer.from(pm.page(2)!).equals(pattern(3 * pageSize, 2).subarray(2 * pageSize))).toBe(true);
      expect(pm.page(3)).toBeNull();
      fs.writeSync(fd, pattern(pageSize, 4), 0, pageSize, 3 * pageSize);
      expect(Buffer.from(pm.page(3)!).equals(pattern(pageSize, 4))).toBe(true);
      // A page in the second window.
      const far = SEGMENT_BYTES / pageSize + 1;
      for (let i = 1; i < MAP_AFTER_READS; i++) expect(pm.page(far)).toBeNull(); // not mapped yet
      expect(pm.page(far)).toBeNull(); // past the end of the file
      fs.writeSync(fd, pattern(pageSize, 6), 0, pageSize, far * pageSize);
      expect(Buffer.from(pm.page(far)!).equals(pattern(pageSize, 6))).toBe(true);
      expect(pm.pages).toBe(3);
      pm.close();
      expect(pm.page(0)).toBeNull();
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('a database read through the mapping', () => {
  const t = useTempDir('northstar-map-db-');
  const key = (i: number): Buffer => Buffer.from(`k${String(i).padStart(8, '0')}`);
  const value = (i: number, round: number): Buffer => Buffer.alloc(40 + (i % 300), `${round}:${i}|`);
  /** A closed database `name` holding keys 0..n-1; its path. */
  const filled = (name: string, n: number): string => {
    const path = nodePath.join(t.dir, name);
    const db = open(path, { sync: 'none' });
    const tx = db.beginWrite();
    for (let i = 0; i < n; i++) tx.put(key(i), value(i, 0));
    tx.commit();
    db.close();
    return path;
  };

  it(`maps when the native addon is in use (${implementation}), and mmap: false or NORTHSTAR_MMAP=0 reads with pread, with the same results`, () => {
    const path = nodePath.join(t.dir, 'db');
    const w = open(path, { sync: 'none' });
    const mapped = open(path, { sync: 'none' });
    const copied = open(path, { sync: 'none', mmap: false });
    try {
      expect(mapped.stats().cache.mapped).toBe(implementation === 'native' && process.platform !== 'win32' && process.env.NORTHSTAR_MMAP !== '0');
      expect(copied.stats().cache.mapped).toBe(false);
      for (let round = 0; round < 4; round++) {
        const tx = w.beginWrite();
        for (let i = round * 700; i < 3000; i += 1 + round) tx.put(key(i), value(i, round));
        tx.commit();
        // Each round rewrites pages the readers hold cached, and grows the file.
        for (const db of [mapped, copied]) {
          const r = db.beginRead();
          const entries = [...r.scan()];
          const direct = w.beginRead();
          expect(entries.length).toBe([...direct.scan()].length);
          for (const [k, v] of entries) expect(Buffer.compare(v, direct.get(k)!)).toBe(0);
          direct.close();
          r.close();
        }
      }
      const s = mapped.stats();
      if (s.cache.mapped) expect(s.cache.mappedReads).toBeGreaterThan(0);
      expect(copied.stats().cache.mappedReads).toBe(0);
      expect(copied.stats().io.reads).toBeGreaterThan(0);
      expectCode(() => open(path, { mmap: 'yes' as unknown as boolean }), 'InvalidArgument');
    } finally {
      w.close();
      mapped.close();
      copied.close();
    }
  });

  it.skipIf(process.platform !== 'linux')('a handle that is closed leaves no descriptor behind (400 open/close cycles)', { timeout: 60_000 }, () => {
    const path = filled('cycles', 500);
    const fds = (): number => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let c = 0; c < 400; c++) {
      const d = open(path, { sync: 'none' });
      const r = d.beginRead();
      expect(r.get(key(c))).toBeDefined();
      r.close();
      d.close();
    }
    expect(fds()).toBeLessThanOrEqual(before + 2);
  });

  it('refuses a damaged page read through the mapping with Corrupt, as with pread', () => {
    const path = filled('damaged', 2000);
    const bytes = fs.readFileSync(path);
    // Flip a byte in the middle of every data page past the metas: any get reaches one.
    const pageSize = 16384;
    for (let p = 2; p * pageSize < bytes.length; p++) bytes[p * pageSize + 9000]! ^= 0x40;
    fs.writeFileSync(path, bytes);
    expectCode(() => {
      const d = open(path, { sync: 'none' });
      try {
        const r = d.beginRead();
        r.get(key(1000));
      } finally {
        d.close();
      }
    }, 'Corrupt');
  });

  it('recycles the writer\'s page buffers once its commits are cached as views, and reads back every value', () => {
    const path = nodePath.join(t.dir, 'pool');
    const db = open(path, { sync: 'none' });
    const other = open(path, { sync: 'none' });
    const pager = engineOfDatabase(db).pager as unknown as { takePage(): Buffer; map: unknown };
    const mapped = pager.map !== null;
    const taken = new Set<Buffer>();
    const take = pager.takePage.bind(pager);
    let recycled = 0;
    pager.takePage = () => {
      const b = take();
      if (taken.has(b)) recycled++;
      taken.add(b);
      return b;
    };
    try {
      const model = new Map<string, Buffer>();
      for (let round = 0; round < 40; round++) {
        const tx = db.beginWrite();
        for (let j = 0; j < 25; j++) {
          const i = (round * 37 + j * 11) % 1500;
          const v = value(i, round);
          tx.put(key(i), v);
          model.set(key(i).toString(), v);
        }
        tx.commit();
        for (const h of [db, other]) {
          const r = h.beginRead();
          for (const [k, v] of model) expect(Buffer.compare(r.get(Buffer.from(k))!, v), k).toBe(0);
          r.close();
        }
      }
      // With a mapping the 40 commits reuse buffers; without one every copy is new.
      if (mapped) expect(recycled).toBeGreaterThan(0);
      else expect(recycled).toBe(0);
    } finally {
      db.close();
      other.close();
    }
  });
});
