// Where the lock-file words live and how the writer lock is taken, in three
// implementations of one contract (spec/concurrency_v0.md §3):
// - native: the file mapped into memory (SharedFile, atomics) and an OS file
//   lock on it (flock / LockFileEx), released by the kernel when a process dies;
// - file: pread/pwrite of the same file, and a DirLock (ts/shared/dirlock.ts)
//   with pid-liveness takeover, for when the addon is not loaded;
// - memory: for a database on a custom FileSystem (the fault-injecting test
//   file system): words and lock shared by the handles of this thread only.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { NorthstarError } from '../errors.js';
import { nativeSharedFile, wordReader, wordWriter, type WordReader, type WordWriter } from '../native/shared_file.js';
import { DirLock } from './dirlock.js';
import { LOCK_FILE_SIZE, LOCK_FILE_WORDS } from './layout.js';

export type StoreKind = 'native' | 'file' | 'memory';

export interface WordStore {
  readonly kind: StoreKind;
  load(word: number): number;
  store(word: number, value: number): void;
  /** values.length words from `word`, each stored whole (not the range as a whole): one pwrite in the file store. */
  storeMany(word: number, values: readonly number[]): void;
  /** Atomic in 'native' and 'memory'; 'file' runs it under a claim lock (slot claims only). */
  compareExchange(word: number, expected: number, value: number): boolean;
  /** out.length words from `word`, each read whole (not the range as a whole). */
  loadMany(word: number, out: Float64Array): void;
  /** The writer lock, non-blocking. */
  tryLockWriter(): boolean;
  unlockWriter(): void;
  /**
   * Changes `word` and wakes every watch of it, in every thread and process
   * (spec/concurrency_v0.md §2.6), unless word `watchers` reads 0 (no handle
   * listens). A no-op where nothing can watch ('file', 'memory': their handles
   * look on timers).
   */
  signal(word: number, watchers: number): void;
  /** Adds `delta` to the count of listening handles in word `watchers` (§2.6). A no-op where nothing can watch. */
  countWatchers(watchers: number, delta: number): void;
  /** Calls `onChange` on this thread soon after each signal(word) anywhere; null where the store cannot (then look on a timer). */
  watch(word: number, onChange: () => void): { close(): void } | null;
  close(): void;
}

function ioError(what: string, err: unknown): NorthstarError {
  return new NorthstarError('IoError', `${what}: ${String((err as Error)?.message ?? err)}`, { cause: err });
}

class NativeStore implements WordStore {
  readonly kind = 'native';
  private readonly file: InstanceType<NonNullable<ReturnType<typeof nativeSharedFile>>>;
  /** Loads from JavaScript through the mapping (one Atomics.load, no native call): beginRead's fast path. */
  private readonly read: WordReader;
  /** Stores the same way (one Atomics.store): a commit's publish writes a dozen words. */
  private readonly write: WordWriter;

  constructor(path: string) {
    const SharedFile = nativeSharedFile()!;
    try {
      this.file = new SharedFile(path, LOCK_FILE_SIZE);
    } catch (err) {
      throw ioError(`${path}: cannot map the lock file`, err);
    }
    this.read = wordReader(this.file);
    this.write = wordWriter(this.file);
  }

  load(word: number): number {
    return this.read(word);
  }

  store(word: number, value: number): void {
    this.write(word, value);
  }

  storeMany(word: number, values: readonly number[]): void {
    for (let i = 0; i < values.length; i++) this.write(word + i, values[i]!);
  }

  compareExchange(word: number, expected: number, value: number): boolean {
    return this.file.compareExchange(word, expected, value);
  }

  loadMany(word: number, out: Float64Array): void {
    this.file.loadMany(word, out);
  }

  tryLockWriter(): boolean {
    return this.file.tryLock();
  }

  unlockWriter(): void {
    this.file.unlock();
  }

  signal(word: number, watchers: number): void {
    // Nobody listens: nothing to bump or wake. A handle that starts listening later
    // counts itself first and then looks (changes.ts), so it cannot miss this change.
    if (this.read(watchers) === 0) return;
    this.file.bumpAndWake(word);
  }

  countWatchers(watchers: number, delta: number): void {
    this.file.fetchAdd(watchers, delta);
  }

  watch(word: number, onChange: () => void): { close(): void } | null {
    // Where the OS has no cross-process wake-up (not Linux), the addon says null.
    return this.file.watch(word, onChange);
  }

  close(): void {
    this.file.close();
  }
}

class FileStore implements WordStore {
  readonly kind = 'file';
  private readonly fd: number;
  private readonly word = Buffer.alloc(8);
  private readonly writer: DirLock;
  private readonly claims: DirLock;
  /** Scratch for ranges of words, with a 32-bit view of it (see words32). */
  private many = Buffer.alloc(8 * 64);
  private many32 = words32(this.many);

  constructor(private readonly path: string) {
    try {
      this.fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
      if (fs.fstatSync(this.fd).size < LOCK_FILE_SIZE) fs.ftruncateSync(this.fd, LOCK_FILE_SIZE);
    } catch (err) {
      throw ioError(`${path}: cannot open the lock file`, err);
    }
    this.writer = new DirLock(`${path}.writer`);
    this.claims = new DirLock(`${path}.claim`);
  }

  load(word: number): number {
    this.check(word, 1);
    fs.readSync(this.fd, this.word, 0, 8, word * 8);
    return readWord(this.word, 0);
  }

  store(word: number, value: number): void {
    this.check(word, 1);
    writeWord(this.word, 0, value);
    fs.writeSync(this.fd, this.word, 0, 8, word * 8);
  }

  storeMany(word: number, values: readonly number[]): void {
    this.check(word, values.length);
    this.reserve(values.length);
    const u = this.many32;
    // A publish stores its 11 words, on every commit: two 32-bit stores a word, as loadMany loads them.
    if (u !== null) {
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        u[2 * i] = v % 2 ** 32;
        u[2 * i + 1] = Math.floor(v / 2 ** 32);
      }
    } else for (let i = 0; i < values.length; i++) writeWord(this.many, i * 8, values[i]!);
    fs.writeSync(this.fd, this.many, 0, values.length * 8, word * 8);
  }

  compareExchange(word: number, expected: number, value: number): boolean {
    if (!this.claims.acquire(5000)) throw new NorthstarError('WriteBusy', `${this.path}: the reader-table claim lock stayed busy`);
    try {
      if (this.load(word) !== expected) return false;
      this.store(word, value);
      return true;
    } finally {
      this.claims.release();
    }
  }

  loadMany(word: number, out: Float64Array): void {
    this.check(word, out.length);
    this.reserve(out.length);
    fs.readSync(this.fd, this.many, 0, out.length * 8, word * 8);
    const u = this.many32;
    // An open reads the whole reader table (4,096 words): two 32-bit loads a word, not eight bounds-checked byte loads.
    if (u !== null) for (let i = 0; i < out.length; i++) out[i] = u[2 * i]! + u[2 * i + 1]! * 2 ** 32;
    else for (let i = 0; i < out.length; i++) out[i] = readWord(this.many, i * 8);
  }

  private reserve(words: number): void {
    if (this.many.length >= words * 8) return;
    this.many = Buffer.alloc(words * 8);
    this.many32 = words32(this.many);
  }

  tryLockWriter(): boolean {
    return this.writer.tryAcquire();
  }

  unlockWriter(): void {
    this.writer.release();
  }

  signal(): void {}

  countWatchers(): void {}

  watch(): null {
    return null;
  }

  close(): void {
    if (this.writer.isHeld()) this.writer.release();
    fs.closeSync(this.fd);
  }

  private check(word: number, n: number): void {
    if (word < 0 || word + n > LOCK_FILE_WORDS) throw new RangeError(`lock-file word ${word} out of range`);
  }
}

/** A lock-file word: values are integers in 0 … 2^53 − 1 (spec/concurrency_v0.md §2). */
function readWord(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 2 ** 32;
}

/** A little-endian host's 32-bit view of `buf` (which must start 4-byte aligned, as Buffer.alloc's do); null on a big-endian host. */
function words32(buf: Buffer): Uint32Array | null {
  return os.endianness() === 'LE' && buf.byteOffset % 4 === 0 ? new Uint32Array(buf.buffer, buf.byteOffset, buf.length >> 2) : null;
}

function writeWord(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32LE(value % 2 ** 32, at);
  buf.writeUInt32LE(Math.floor(value / 2 ** 32), at + 4);
}

/** Tables of databases on custom file systems, by file system and path (this thread only). */
const memoryTables = new WeakMap<object, Map<string, { words: Float64Array; locked: boolean; users: number }>>();

class MemoryStore implements WordStore {
  readonly kind = 'memory';
  private readonly table: { words: Float64Array; locked: boolean; users: number };
  private holds = false;

  constructor(
    private readonly owner: object,
    private readonly path: string,
  ) {
    let byPath = memoryTables.get(owner);
    if (!byPath) memoryTables.set(owner, (byPath = new Map()));
    let t = byPath.get(path);
    if (!t) byPath.set(path, (t = { words: new Float64Array(LOCK_FILE_WORDS), locked: false, users: 0 }));
    t.users++;
    this.table = t;
  }

  load(word: number): number {
    return this.table.words[word]!;
  }

  store(word: number, value: number): void {
    this.table.words[word] = value;
  }

  storeMany(word: number, values: readonly number[]): void {
    this.table.words.set(values, word);
  }

  compareExchange(word: number, expected: number, value: number): boolean {
    if (this.table.words[word] !== expected) return false;
    this.table.words[word] = value;
    return true;
  }

  loadMany(word: number, out: Float64Array): void {
    out.set(this.table.words.subarray(word, word + out.length));
  }

  tryLockWriter(): boolean {
    if (this.table.locked) return false;
    this.table.locked = true;
    this.holds = true;
    return true;
  }

  unlockWriter(): void {
    if (!this.holds) return;
    this.holds = false;
    this.table.locked = false;
  }

  signal(): void {}

  countWatchers(): void {}

  watch(): null {
    return null;
  }

  close(): void {
    this.unlockWriter();
    // The table outlives its handles like a file would (a reopen sees the old state): the
    // fault-injecting tests reopen after simulated crashes, where stale slots must be handled.
    this.table.users--;
  }
}

/**
 * The store for the database at `dbPath`: native when the addon is loaded and
 * the database is on the real file system, else the file fallback; `memory`
 * for a custom file system (`fsOwner`).
 */
export function openStore(dbPath: string, fsOwner: object | null): WordStore {
  if (fsOwner !== null) return new MemoryStore(fsOwner, dbPath);
  const lockPath = `${dbPath}.lock`;
  return nativeSharedFile() !== null ? new NativeStore(lockPath) : new FileStore(lockPath);
}
