// What the suites share: seeded random numbers, the 16-byte keys of the
// B-tree workloads, building a database of N records, and the database's own
// I/O counters as the harness's IoCounters.

import * as fs from 'node:fs';
import { open, type Database, type OpenOptions } from '../../db/index.js';
import type { DbConfig } from '../schema.js';
import { zeroIo, type IoCounters } from '../registry.js';
import { addIoStats } from '../../io/file.js';

/** xorshift32: a reproducible sequence of unsigned 32-bit integers from `seed`. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Key i: 16 ASCII digits, so key order is numeric order (bench/storage.mjs's keys). */
export function key16(i: number): Buffer {
  return Buffer.from(String(i).padStart(16, '0'));
}

/** The keys 0..n-1, made once so the measured loop does not build them. */
export function keyTable(n: number): Buffer[] {
  const keys = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) keys[i] = key16(i);
  return keys;
}

/** A value of `size` bytes, deterministic content. */
export function valueOf(size: number): Buffer {
  const v = Buffer.alloc(size);
  for (let i = 0; i < size; i++) v[i] = (i * 31 + 7) & 0xff;
  return v;
}

export function dbConfig(db: Database, cacheBytes?: number): DbConfig {
  const s = db.stats();
  const c: DbConfig = { page_size: s.pageSize, checksum: 'crc32c', sync_mode: s.sync, mmap: false };
  if (cacheBytes !== undefined) c.cache_bytes = cacheBytes;
  return c;
}

/**
 * I/O of a database handle from its own layer: the data file's and the
 * commit log's counters (db.stats().io and .logIo) added, plus the opens and
 * closes of database handles the benchmark counted itself (2 files each).
 */
export function dbIo(db: Database | null, handles = { opened: 0, closed: 0 }, carried: IoCounters = zeroIo()): IoCounters {
  const out = { ...carried, opens: carried.opens + handles.opened * 2, closes: carried.closes + handles.closed * 2 };
  if (db === null) return out;
  const { io, logIo } = db.stats();
  addIoStats(out, io);
  addIoStats(out, logIo);
  return out;
}

/** Adds the counters of a handle about to be closed into `acc` (a handle's counters die with it). */
export function addIo(acc: IoCounters, db: Database): void {
  addIoStats(acc, dbIo(db));
}

/**
 * The op of an open-and-close benchmark: opens a handle with `openDb`, counts
 * its I/O (at open: a handle's counters end before its close) and closes it;
 * `io` adds up every handle's.
 */
export function openCloseOp(openDb: () => Database): { op: () => void; io: () => IoCounters } {
  const acc = zeroIo();
  const handles = { opened: 0, closed: 0 };
  return {
    op() {
      const db = openDb();
      handles.opened++;
      addIo(acc, db);
      db.close();
      handles.closed++;
    },
    io: () => dbIo(null, handles, acc),
  };
}

export interface BuildOptions {
  records: number;
  valueSize: number;
  /** Puts per commit. */
  txn: number;
  /** Key order: 'sequential' or a seeded shuffle. */
  order?: 'sequential' | 'shuffled';
  seed?: number;
  open?: OpenOptions;
}

/** Creates a database of `records` keys (key16(i) → valueSize bytes) and closes it. */
export function buildDatabase(file: string, o: BuildOptions): void {
  removeDatabase(file);
  const db = open(file, { sync: 'none', history: { txns: 0 }, ...o.open });
  const value = valueOf(o.valueSize);
  const order = o.order === 'shuffled' ? shuffled(o.records, o.seed ?? 1) : null;
  try {
    for (let s = 0; s < o.records; s += o.txn) {
      const w = db.beginWrite();
      const end = Math.min(o.records, s + o.txn);
      for (let i = s; i < end; i++) w.put(key16(order ? order[i]! : i), value);
      w.commit();
    }
  } finally {
    db.close();
  }
}

export function shuffled(n: number, seed: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  const r = rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = r() % (i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

export function removeDatabase(file: string): void {
  // The lock file too: derived state, and a copy made here must not inherit an earlier handle's.
  for (const f of [file, `${file}.log`, `${file}.lock`]) fs.rmSync(f, { force: true });
}

export function copyDatabase(from: string, to: string): void {
  removeDatabase(to);
  fs.copyFileSync(from, to);
  fs.copyFileSync(`${from}.log`, `${to}.log`);
}

/** Random indexes in [0, n) drawn up front, so the measured loop only reads an array. */
export function randomIndexes(count: number, n: number, seed: number): Uint32Array {
  const r = rng(seed);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = r() % n;
  return out;
}

export const KEY_BYTES = 16;
export const VALUE_BYTES = 128;
