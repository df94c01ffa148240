// An in-memory, fault-injecting FileSystem for tests and the hardening suite
// (issue: hardening, §1 and §3). It keeps, for every file, the durable image
// (as of its last successful fdatasync) and the writes since, so a simulated
// crash can keep, drop or garble each unsynced write independently, in the
// manner of SQLite's crash-test file layer. It can also fail the Nth I/O call
// with EIO or ENOSPC, once or forever, and tear a write after X bytes.
//
// Never used by the database unless passed as the `fileSystem` open option.

import { ioError } from '../errors.js';
import type { DbFile, FileSystem, IoStats } from './file.js';

export type Errno = 'EIO' | 'ENOSPC';
export type IoCall = 'read' | 'write' | 'datasync' | 'truncate' | 'create' | 'rename';

/** One write or truncate since the file's last successful sync. */
export type Pending = { kind: 'write'; offset: number; bytes: Uint8Array } | { kind: 'truncate'; size: number };

/** What a simulated crash does with one unsynced write. */
export type CrashChoice = 'keep' | 'drop' | 'garbage';

export interface FaultPlan {
  /** Fail I/O call number `call` (1-based, counting only the kinds in `on`, default all) with errno. */
  fail?: { call: number; errno: Errno; on?: readonly IoCall[]; forever?: boolean };
  /** Write call number `write` (1-based) reaches the file only for its first `bytes` bytes, then fails with EIO. */
  tear?: { write: number; bytes: number };
  /**
   * Freeze the durable image after this many successful fdatasyncs (of any
   * file): later ones succeed but make nothing durable, as if the power had
   * gone right after sync number `freezeAfterSync`; crash() then starts from
   * the image as of that sync. 0 freezes it at once.
   */
  freezeAfterSync?: number;
}

function errnoError(errno: Errno, what: string): Error {
  return Object.assign(new Error(`${errno}: ${errno === 'ENOSPC' ? 'no space left on device' : 'i/o error'}, ${what}`), { code: errno });
}

class MemNode {
  /** Bytes as a reader sees them now. */
  content = new Uint8Array(0);
  size = 0;
  /** Bytes as of the last successful sync (what survives a crash for sure). */
  durable = new Uint8Array(0);
  pending: Pending[] = [];

  constructor(initial?: Uint8Array) {
    if (initial) {
      this.content = Uint8Array.prototype.slice.call(initial);
      this.size = initial.length;
      this.durable = Uint8Array.prototype.slice.call(initial);
    }
  }

  writeAt(bytes: Uint8Array, offset: number): void {
    const end = offset + bytes.length;
    if (end > this.content.length) {
      const grown = new Uint8Array(Math.max(end, this.content.length * 2));
      grown.set(this.content.subarray(0, this.size));
      this.content = grown;
    }
    this.content.set(bytes, offset);
    if (end > this.size) this.size = end;
  }

  truncate(size: number): void {
    if (size < this.size) this.content.fill(0, size, this.size);
    else if (size > this.content.length) this.writeAt(new Uint8Array(0), size);
    this.size = size;
  }

  view(): Uint8Array {
    return this.content.subarray(0, this.size);
  }
}

/**
 * Fills `out` with garbage drawn from `random`: one draw seeds an xorshift32
 * for the whole range, so a crash image that garbles a large write (a 1 MiB
 * preallocation of the log) costs one draw, not one per byte. Deterministic
 * for a seeded `random`.
 */
function fillGarbage(out: Uint8Array, random: () => number): void {
  let x = (Math.floor(random() * 0xffffffff) | 1) >>> 0;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
}

export class FaultyFileSystem implements FileSystem {
  private readonly files = new Map<string, MemNode>();
  /** I/O calls seen, by kind and in total; faults injected, by kind. */
  readonly counts: Record<IoCall | 'total', number> = { read: 0, write: 0, datasync: 0, truncate: 0, create: 0, rename: 0, total: 0 };
  readonly injected: Record<'fail' | 'tear', number> = { fail: 0, tear: 0 };
  /** Failures injected by errno and call, e.g. `ENOSPC:datasync`. */
  readonly injectedBy: Record<string, number> = {};
  private matching = 0;
  private failedOnce = false;
  /** Successful fdatasyncs, of every file. */
  syncs = 0;
  /**
   * Called at every fdatasync before it takes effect (and before any fault):
   * the moment a crash would leave the durable image plus any choice of the
   * pending writes. The hardening suite enumerates crash states here.
   */
  onSync: ((path: string) => void) | null = null;

  constructor(public plan: FaultPlan = {}) {}

  /** Replaces the plan and restarts its call count, so `fail.call` counts from now. */
  arm(plan: FaultPlan): void {
    this.plan = plan;
    this.matching = 0;
    this.failedOnce = false;
  }

  /** Whether a successful fdatasync now makes the file's writes durable (see FaultPlan.freezeAfterSync). */
  syncTakesEffect(): boolean {
    this.syncs++;
    const f = this.plan.freezeAfterSync;
    return f === undefined || this.syncs <= f;
  }

  // ---- FileSystem ----------------------------------------------------------------

  exists(path: string): boolean {
    return this.files.has(path);
  }

  open(path: string): DbFile {
    const node = this.files.get(path);
    if (!node) throw ioError(Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' }), `open ${path}`, path);
    return new MemFile(this, path, node);
  }

  createAtomically(path: string, content: Uint8Array): void {
    this.check('create', path);
    if (this.files.has(path)) throw ioError(Object.assign(new Error(`EEXIST: create '${path}'`), { code: 'EEXIST' }), `create ${path}`, path);
    this.files.set(path, new MemNode(content));
  }

  rename(from: string, to: string): void {
    this.check('rename', to);
    const node = this.files.get(from);
    if (!node) throw ioError(Object.assign(new Error(`ENOENT: rename '${from}'`), { code: 'ENOENT' }), `rename ${from}`, from);
    this.files.delete(from);
    this.files.set(to, node);
  }

  remove(path: string): void {
    this.files.delete(path);
  }

  // ---- faults ------------------------------------------------------------------------

  /** Throws the planned error if this call is the one (or, forever, any after it). */
  check(call: IoCall, path: string): void {
    this.counts[call]++;
    this.counts.total++;
    const f = this.plan.fail;
    if (!f || (f.on && !f.on.includes(call))) return;
    this.matching++;
    if (this.matching === f.call || (f.forever === true && this.matching > f.call) || (this.failedOnce && f.forever === true)) {
      this.failedOnce = true;
      this.injected.fail++;
      const kind = `${f.errno}:${call}`;
      this.injectedBy[kind] = (this.injectedBy[kind] ?? 0) + 1;
      throw errnoError(f.errno, `${call} ${path}`);
    }
  }

  /** Bytes of a write that reach the file when this write is torn, else -1. */
  tearBytes(): number {
    const t = this.plan.tear;
    if (!t || this.counts.write !== t.write) return -1;
    this.injected.tear++;
    return t.bytes;
  }

  // ---- crash simulation -----------------------------------------------------------------

  /** Every unsynced write and truncate, by file, in order. */
  pending(): Array<{ path: string; index: number; op: Pending }> {
    const out: Array<{ path: string; index: number; op: Pending }> = [];
    for (const [path, node] of this.files) node.pending.forEach((op, index) => out.push({ path, index, op }));
    return out;
  }

  /**
   * The file system a crash at this moment could leave: each file's durable
   * image with every unsynced write kept, dropped or garbled (its sectors of
   * `sector` bytes filled with garbage from `random`) as `choose` says, and
   * unsynced truncates applied when `choose` keeps them. Faults are not copied.
   */
  crash(
    choose: (path: string, index: number, op: Pending) => CrashChoice = () => 'drop',
    sector = 512,
    random: () => number = Math.random,
    /**
     * 'sectors' (SQLite's crash layer without powersafe overwrite): every
     * sector a garbled write touches is garbage, bytes outside the write
     * included. 'written': only the write's own bytes, sector by sector: the
     * first sector it touches is garbage, each later one garbage, new or old
     * at random (the spec's media assumptions: synced bytes stay intact).
     */
    garbage: 'sectors' | 'written' = 'sectors',
  ): FaultyFileSystem {
    const out = new FaultyFileSystem();
    for (const [path, node] of this.files) {
      const img = new MemNode(node.durable);
      node.pending.forEach((op, index) => {
        const c = choose(path, index, op);
        if (c === 'drop') return;
        if (op.kind === 'truncate') {
          img.truncate(op.size);
          return;
        }
        if (c === 'keep') {
          img.writeAt(op.bytes, op.offset);
          return;
        }
        const start = Math.floor(op.offset / sector) * sector;
        const end = Math.ceil((op.offset + op.bytes.length) / sector) * sector;
        if (garbage === 'sectors') {
          // Every sector the write touches holds random bytes.
          const junk = new Uint8Array(end - start);
          fillGarbage(junk, random);
          img.writeAt(junk, start);
          return;
        }
        for (let s = start; s < end; s += sector) {
          const from = Math.max(s, op.offset);
          const to = Math.min(s + sector, op.offset + op.bytes.length);
          const fate = s === start ? 0 : Math.floor(random() * 3);
          if (fate === 2) continue; // old bytes
          const part = Uint8Array.prototype.slice.call(op.bytes, from - op.offset, to - op.offset);
          if (fate === 0) fillGarbage(part, random);
          img.writeAt(part, from);
        }
      });
      img.durable = img.view().slice();
      img.pending = [];
      out.files.set(path, img);
    }
    return out;
  }

  /** A copy of a file's current bytes (for tests that corrupt files by hand). */
  bytes(path: string): Uint8Array {
    const node = this.files.get(path);
    if (!node) throw new Error(`no file ${path}`);
    return node.view().slice();
  }

  /** Replaces a file's bytes, durably (for tests that corrupt files by hand). */
  setBytes(path: string, bytes: Uint8Array): void {
    this.files.set(path, new MemNode(bytes));
  }

  paths(): string[] {
    return [...this.files.keys()];
  }
}

class MemFile implements DbFile {
  readonly stats: IoStats = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, fdatasyncs: 0, fsyncs: 0 };
  private closed = false;

  constructor(
    private readonly fs: FaultyFileSystem,
    readonly path: string,
    private readonly node: MemNode,
  ) {}

  private io<T>(call: IoCall, f: () => T): T {
    if (this.closed) throw ioError(Object.assign(new Error('EBADF: file is closed'), { code: 'EBADF' }), `${call} ${this.path}`, this.path);
    try {
      this.fs.check(call, this.path);
      return f();
    } catch (err) {
      throw ioError(err, `${call} ${this.path}`, this.path);
    }
  }

  read(buf: Uint8Array, position: number): number {
    return this.io('read', () => {
      const v = this.node.view();
      const n = Math.max(0, Math.min(buf.length, v.length - position));
      if (n > 0) buf.set(v.subarray(position, position + n));
      this.stats.reads++;
      this.stats.bytesRead += n;
      return n;
    });
  }

  write(buf: Uint8Array, position: number): void {
    this.io('write', () => {
      const tear = this.fs.tearBytes();
      // A copy (Buffer#slice would alias the caller's page buffer, and a crash must replay what was written).
      const bytes = Uint8Array.prototype.slice.call(buf, 0, tear >= 0 ? Math.min(tear, buf.length) : buf.length);
      this.node.writeAt(bytes, position);
      this.node.pending.push({ kind: 'write', offset: position, bytes });
      this.stats.writes++;
      this.stats.bytesWritten += bytes.length;
      if (tear >= 0) throw errnoError('EIO', `torn write ${this.path}`);
    });
  }

  datasync(): void {
    if (!this.closed) this.fs.onSync?.(this.path);
    this.io('datasync', () => {
      // A failed sync (thrown by check above) leaves the writes unsynced.
      if (this.fs.syncTakesEffect()) {
        this.node.durable = this.node.view().slice();
        this.node.pending = [];
      }
      this.stats.fdatasyncs++;
    });
  }

  datasyncAsync(): Promise<void> {
    this.syncsInFlight++;
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          this.datasync();
          resolve();
        } catch (err) {
          reject(err);
        } finally {
          if (--this.syncsInFlight === 0 && this.closeDeferred) this.closed = true;
        }
      });
    });
  }

  truncate(size: number): void {
    this.io('truncate', () => {
      this.node.truncate(size);
      this.node.pending.push({ kind: 'truncate', size });
    });
  }

  size(): number {
    return this.node.size;
  }

  /** datasyncAsync calls not yet run; close() leaves the file to them, as NodeFile does (DbFile.close). */
  private syncsInFlight = 0;
  private closeDeferred = false;

  close(): void {
    if (this.syncsInFlight > 0) this.closeDeferred = true;
    else this.closed = true;
  }
}
