// The one door to the disk. The pager (and later the commit log) does all file
// access through DbFile, so a test can swap in a fault-injecting file and the
// benchmark harness can count bytes and syncs where they really happen.

import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { ioError } from '../errors.js';

/** Counters of the I/O a file has done since it was opened. */
export interface IoStats {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  fdatasyncs: number;
  fsyncs: number;
}

/** Adds `from`'s counters into `into`. */
export function addIoStats(into: IoStats, from: IoStats): void {
  into.reads += from.reads;
  into.writes += from.writes;
  into.bytesRead += from.bytesRead;
  into.bytesWritten += from.bytesWritten;
  into.fdatasyncs += from.fdatasyncs;
  into.fsyncs += from.fsyncs;
}

export interface DbFile {
  readonly path: string;
  readonly stats: IoStats;
  /** Reads up to buf.length bytes at position; returns how many were read (short at end of file). */
  read(buf: Uint8Array, position: number): number;
  /** Writes all of buf at position, or throws IoError/OutOfSpace (some bytes may have reached the file). */
  write(buf: Uint8Array, position: number): void;
  /** fdatasync. After a failure the file's durable content is unknown. */
  datasync(): void;
  /** fdatasync on the thread pool, so commits can gather behind it (group commit). */
  datasyncAsync(): Promise<void>;
  truncate(size: number): void;
  size(): number;
  /** Closes the file; a datasyncAsync still running keeps the descriptor open until it ends. */
  close(): void;
}

function newStats(): IoStats {
  return { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, fdatasyncs: 0, fsyncs: 0 };
}

/** DbFile over a Node.js file descriptor with synchronous calls. */
export class NodeFile implements DbFile {
  readonly stats: IoStats = newStats();
  private fd: number;

  constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** The OS file descriptor (-1 once closed), for mapping the file (ts/pager/map.ts). */
  get descriptor(): number {
    return this.fd;
  }

  /** Opens an existing file for reading and writing. */
  static open(path: string): NodeFile {
    try {
      return new NodeFile(path, fs.openSync(path, 'r+'));
    } catch (err) {
      throw ioError(err, `open ${path}`, path);
    }
  }

  read(buf: Uint8Array, position: number): number {
    let done = 0;
    try {
      while (done < buf.length) {
        const n = fs.readSync(this.fd, buf, done, buf.length - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw ioError(err, `read ${this.path} at ${position}`, this.path);
    }
    this.stats.reads++;
    this.stats.bytesRead += done;
    return done;
  }

  write(buf: Uint8Array, position: number): void {
    let done = 0;
    try {
      while (done < buf.length) {
        done += fs.writeSync(this.fd, buf, done, buf.length - done, position + done);
      }
    } catch (err) {
      throw ioError(err, `write ${this.path} at ${position}`, this.path);
    }
    this.stats.writes++;
    this.stats.bytesWritten += done;
  }

  datasync(): void {
    try {
      fs.fdatasyncSync(this.fd);
    } catch (err) {
      throw ioError(err, `fdatasync ${this.path}`, this.path);
    }
    this.stats.fdatasyncs++;
  }

  datasyncAsync(): Promise<void> {
    return new Promise((resolve, reject) => {
      const fd = this.fd;
      this.syncsInFlight++;
      fs.fdatasync(fd, (err) => {
        // The descriptor stays open while the thread pool syncs it (close() leaves it to
        // the last sync), so a number closed and reused meanwhile is never synced instead.
        if (--this.syncsInFlight === 0 && this.closeDeferred) {
          // Nobody is left to tell of a failed close: the handle was closed already.
          try {
            fs.closeSync(fd);
          } catch {}
        }
        if (err) reject(ioError(err, `fdatasync ${this.path}`, this.path));
        else {
          this.stats.fdatasyncs++;
          resolve();
        }
      });
    });
  }

  truncate(size: number): void {
    try {
      fs.ftruncateSync(this.fd, size);
    } catch (err) {
      throw ioError(err, `truncate ${this.path}`, this.path);
    }
  }

  size(): number {
    try {
      return fs.fstatSync(this.fd).size;
    } catch (err) {
      throw ioError(err, `stat ${this.path}`, this.path);
    }
  }

  /** datasyncAsync calls running; close() waits for them to end before the descriptor goes. */
  private syncsInFlight = 0;
  private closeDeferred = false;

  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    if (this.syncsInFlight > 0) {
      this.closeDeferred = true;
      return;
    }
    try {
      fs.closeSync(fd);
    } catch (err) {
      throw ioError(err, `close ${this.path}`, this.path);
    }
  }
}

/**
 * Creates `path` atomically with the given first bytes: writes a temporary file
 * beside it, fsyncs it, links it into place and fsyncs the directory, so a
 * crash never leaves a partial file under the real name (spec §8). Fails
 * (IoError, cause EEXIST) when `path` exists: it never replaces a file.
 */
export function createFileAtomically(path: string, content: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeWholeFile(tmp, content, 'w');
    // A link, not a rename: it fails (EEXIST) where a file appeared at `path` meanwhile,
    // instead of replacing a file someone may need.
    try {
      fs.linkSync(tmp, path);
      fs.unlinkSync(tmp);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // File systems without hard links: the rename, after one more look.
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
      if (fs.existsSync(path)) throw Object.assign(new Error(`EEXIST: file already exists, ${path}`), { code: 'EEXIST' });
      fs.renameSync(tmp, path);
    }
    syncDirectory(nodePath.dirname(path));
  } catch (err) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // the temporary file may not exist; nothing else to undo
    }
    throw ioError(err, `create ${path}`, path);
  }
}

/** Writes all of `content` to a file opened with `flags` (mode 0o644), fsyncs it and closes it; throws the fs error as is. */
export function writeWholeFile(path: string, content: Uint8Array, flags: 'w' | 'wx'): void {
  const fd = fs.openSync(path, flags, 0o644);
  try {
    let done = 0;
    while (done < content.length) done += fs.writeSync(fd, content, done, content.length - done, done);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsyncs a directory so a new or renamed entry in it is durable (no-op where unsupported). */
export function syncDirectory(dir: string): void {
  if (process.platform === 'win32') return; // directories cannot be opened for fsync on Windows
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Every file-system operation the database does besides reading and writing
 * an open file. The default is the real one; tests and the hardening suite
 * pass a fault-injecting one (ts/io/faulty.ts) through the `fileSystem` open
 * option.
 */
export interface FileSystem {
  exists(path: string): boolean;
  /** Opens an existing file for reading and writing. */
  open(path: string): DbFile;
  /** Creates path with the given bytes so that a crash never leaves it partial; fails if path exists (see createFileAtomically). */
  createAtomically(path: string, content: Uint8Array): void;
  /** Atomically replaces `to` with `from`, durably. */
  rename(from: string, to: string): void;
  remove(path: string): void;
}

export const nodeFileSystem: FileSystem = {
  exists: (path) => fs.existsSync(path),
  open: (path) => NodeFile.open(path),
  createAtomically: createFileAtomically,
  rename(from, to) {
    try {
      fs.renameSync(from, to);
      syncDirectory(nodePath.dirname(to));
    } catch (err) {
      throw ioError(err, `rename ${from} to ${to}`, to);
    }
  },
  remove(path) {
    try {
      fs.rmSync(path, { force: true });
    } catch (err) {
      throw ioError(err, `remove ${path}`, path);
    }
  },
};
