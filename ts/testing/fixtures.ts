// Shared test fixtures: a fresh temporary directory per test, handles closed
// after it, and the verify() check every test that writes ends with.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import { open, type Database, type OpenOptions } from '../db/index.js';
import { NorthstarError } from '../errors.js';
import type { DbFile, IoStats } from '../io/file.js';

export interface TempDir {
  /** This test's directory. */
  readonly dir: string;
  /** Closes h after the test, before the directory is removed; returns h. */
  track<T extends { close(): void }>(h: T): T;
}

/** Registers beforeEach/afterEach hooks that give every test its own directory. */
export function useTempDir(prefix: string): TempDir {
  let dir = '';
  const handles: { close(): void }[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), prefix));
  });
  afterEach(() => {
    for (const h of handles.splice(0)) h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    track(h) {
      handles.push(h);
      return h;
    },
  };
}

export interface TempDbs extends TempDir {
  dbPath(name?: string): string;
  /** The commit log beside the database (spec/file_format_v1.md §8). */
  logPath(name?: string): string;
  /** Opens (creating) a database in the test's directory, sync 'none' unless given; closed after the test. */
  openDb(options?: OpenOptions, name?: string): Database;
}

export function useTempDbs(prefix: string): TempDbs {
  const t = useTempDir(prefix);
  const dbPath = (name = 'db'): string => nodePath.join(t.dir, name);
  return {
    get dir() {
      return t.dir;
    },
    track: (h) => t.track(h),
    dbPath,
    logPath: (name = 'db') => `${dbPath(name)}.log`,
    openDb: (options = {}, name = 'db') => t.track(open(dbPath(name), { sync: 'none', ...options })),
  };
}

/** The value of `key` in the latest snapshot, as text (a read transaction of its own). */
export function latestValue(db: Database, key: string): string | undefined {
  const r = db.beginRead();
  try {
    return r.get(key)?.toString();
  } finally {
    r.close();
  }
}

/** verify() finds nothing, and the file holds every page the meta counts (spec §3, rule 2). */
export function expectVerified(db: Database): void {
  const report = db.verify();
  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
  const s = db.stats();
  expect(s.fileSize, 'file size against the meta page count').toBeGreaterThanOrEqual(s.pageCount * s.pageSize);
}

/** Runs fn, which must throw a NorthstarError with `code`; returns the error. */
export function expectCode(fn: () => unknown, code: string): NorthstarError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(NorthstarError);
  expect((thrown as NorthstarError).code, String(thrown)).toBe(code);
  return thrown as NorthstarError;
}

/**
 * A DbFile in memory that logs each call, positions in pages of `pageSize`
 * ("read 2", "write 20", "size", "truncate 16384"): for unit tests of
 * the pager and the tree writer without a disk.
 */
export class MemoryFile implements DbFile {
  readonly path = '/memory/db';

  constructor(private readonly pageSize: number) {}

  readonly stats: IoStats = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, fdatasyncs: 0, fsyncs: 0 };
  readonly calls: string[] = [];
  /** Storage, grown in doublings; the file is its first `length` bytes. */
  private buf = Buffer.alloc(0);
  private length = 0;

  /** The file's bytes (a view); assigning replaces the file. */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
  set bytes(b: Buffer) {
    this.buf = Buffer.from(b);
    this.length = b.length;
  }

  read(buf: Uint8Array, position: number): number {
    this.calls.push(`read ${position / this.pageSize}`);
    this.stats.reads++;
    const n = Math.max(0, Math.min(buf.length, this.bytes.length - position));
    buf.set(this.bytes.subarray(position, position + n));
    return n;
  }
  write(buf: Uint8Array, position: number): void {
    this.calls.push(`write ${position / this.pageSize}`);
    this.put(buf, position);
  }
  datasync(): void {}
  datasyncAsync(): Promise<void> {
    return Promise.resolve();
  }
  truncate(size: number): void {
    this.calls.push(`truncate ${size}`);
    const b = Buffer.alloc(size);
    this.bytes.copy(b, 0, 0, Math.min(size, this.length));
    this.bytes = b;
  }
  size(): number {
    this.calls.push('size');
    return this.bytes.length;
  }
  close(): void {}
  private put(buf: Uint8Array, position: number): void {
    const end = position + buf.length;
    if (end > this.buf.length) {
      const b = Buffer.alloc(Math.max(end, 2 * this.buf.length));
      this.buf.copy(b, 0, 0, this.length);
      this.buf = b;
    }
    this.buf.set(buf, position);
    this.length = Math.max(this.length, end);
  }
}
