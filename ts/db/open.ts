// Creating and opening a database (spec/file_format_v1.md §8,
// spec/concurrency_v0.md §3.1): create the files when the path is new (or
// rebuild a missing data file from its complete log), check that both files
// are NorthstarDB's and belong together, claim a reader slot in the lock file,
// then adopt the state another live handle published, or, alone, take the
// writer lock and recover from the durable meta and the log.
//
// Every wait in here (the create lock, the lock-file reset, the writer lock
// for recovery) is bounded by `lockTimeoutMs`. open() passes
// OPEN_LOCK_TIMEOUT_MS and blocks its thread while it waits (for scripts);
// openAsync() passes 0, so a busy lock throws WouldWait at once, everything
// opened so far is closed again, and it retries after an asynchronous sleep.

import { randomInt } from 'node:crypto';
import * as nodePath from 'node:path';
import { NorthstarError } from '../errors.js';
import { META_PAGE_A, META_PAGE_B } from '../format/constants.js';
import { nodeFileSystem, type FileSystem } from '../io/file.js';
import { LOG_HEADER_SIZE } from '../format/constants.js';
import { LogFile } from '../log/file.js';
import { kernels } from '../native/kernels.js';
import { chooseMeta, emptyMeta, encodeMeta, type Meta } from '../pager/meta.js';
import { Coordinator } from '../shared/coordinator.js';
import { DirLock } from '../shared/dirlock.js';
import { closeFiles } from './close.js';
import { Engine } from './engine.js';
import { adopt } from './follow.js';
import { publishShared } from './groupcommit.js';
import type { Options } from './options.js';
import { recover } from './recovery.js';
import { releaseWriterLock } from './writer.js';

/**
 * Thrown inside open when a lock it needs is busy and it was asked not to
 * wait (lockTimeoutMs 0, openAsync): openAsync catches it and tries again.
 */
export class WouldWait extends Error {}

function lockBusy(lockTimeoutMs: number, what: string): Error {
  return lockTimeoutMs === 0 ? new WouldWait(what) : new NorthstarError('WriteBusy', `${what} for ${lockTimeoutMs} ms`);
}

/** Opens (creating if missing) the engine of the database at `abs`. */
export function openEngine(abs: string, opts: Options, lockTimeoutMs: number): Engine {
  const logPath = `${abs}.log`;
  const files = opts.fs;
  if (!files.exists(abs)) create(abs, logPath, opts, lockTimeoutMs);
  const file = openDataFile(abs, files);
  let log: LogFile | null = null;
  let coord: Coordinator | null = null;
  try {
    // Both files are checked before the lock file is touched: a refused open changes nothing.
    let { meta, slot } = chooseMeta(file, kernels);
    log = openLog(logPath, meta, files);
    coord = openCoordinator(abs, files, meta.dbId, lockTimeoutMs);
    // The open protocol (spec/concurrency_v0.md §3.1): a handle that finds another ready
    // adopts what it published; the first one takes the writer lock and recovers.
    const locked = !coord.othersReady();
    if (locked) {
      if (!coord.lockWriter(lockTimeoutMs)) throw lockBusy(lockTimeoutMs, `${abs}: open waited for the writer lock`);
      if (!coord.othersReady()) {
        // Alone, under the writer lock: a handle that died since the files were read may have
        // checkpointed, committed or replaced the log. Read them again, as they now stay
        // until this handle changes them, and build the engine from that (once: the meta is
        // one read, the log's header another).
        ({ meta, slot } = chooseMeta(file, kernels));
        log.close();
        log = null;
        log = openLog(logPath, meta, files);
      }
    }
    const e = new Engine(abs, file, log, meta, slot, opts, kernels, coord);
    try {
      start(e, locked);
    } catch (err) {
      closeFiles(e);
      throw err;
    }
    return e;
  } catch (err) {
    if (coord === null || !coord.isClosed) {
      // Not yet handed to an engine whose closeFiles() closed everything. Closing the
      // lock-file view gives back the writer lock too.
      coord?.close();
      log?.close();
      file.close();
    }
    throw err;
  }
}

/** The log of the database whose durable meta is `meta`: Corrupt when missing, of another database, or not reaching the meta's log tail. */
function openLog(logPath: string, meta: Meta, files: FileSystem): LogFile {
  if (!files.exists(logPath)) {
    throw new NorthstarError('Corrupt', `${logPath}: the commit log is missing`, { path: logPath });
  }
  const log = LogFile.open(logPath, meta.dbId, kernels, files);
  if (meta.logTail < log.base || meta.logTail > log.end) {
    log.close();
    throw new NorthstarError('Corrupt', `${logPath}: the last checkpoint covers the log up to ${meta.logTail}, the log spans ${log.base}..${log.end}`, {
      path: logPath,
    });
  }
  return log;
}

/** This handle's view of the lock file; a busy lock (or every slot taken) is WouldWait when open must not wait. */
function openCoordinator(abs: string, files: FileSystem, dbId: number, lockTimeoutMs: number): Coordinator {
  try {
    return Coordinator.open(abs, files === nodeFileSystem ? null : files, dbId, lockTimeoutMs);
  } catch (err) {
    if (lockTimeoutMs === 0 && err instanceof NorthstarError && err.code === 'WriteBusy') throw new WouldWait(err.message);
    throw err;
  }
}

/** The data file, for reading and writing; a directory at the path is UnsupportedFormat. */
function openDataFile(abs: string, files: FileSystem) {
  try {
    return files.open(abs);
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'EISDIR') {
      throw new NorthstarError('UnsupportedFormat', `${abs} is a directory, not a NorthstarDB database file`, { path: abs, cause: err });
    }
    throw err;
  }
}

/**
 * The rest of the open protocol (spec/concurrency_v0.md §3.1) for the engine
 * openEngine() built: without the writer lock (`locked` false: another
 * handle was ready), adopt the state it published; with it, adopt if another
 * handle became ready meanwhile, else, alone, recover from the durable meta
 * and the log the engine was built from under the lock.
 */
function start(e: Engine, locked: boolean): void {
  const coord = e.coord;
  if (!locked) {
    adopt(e);
    coord.markReady();
    return;
  }
  try {
    if (coord.othersReady()) adopt(e);
    else {
      // Alone: whatever the lock file says is from handles that are gone. Start from the files,
      // as a new generation: a handle that adopted the gone handles' state meanwhile sees it
      // and reloads instead of keeping their roots and cached pages (concurrency §3.1).
      e.logGeneration = coord.publishedGeneration() + 1;
      e.recovering = true;
      try {
        recover(e);
      } finally {
        e.recovering = false;
      }
      publishShared(e);
    }
    // Ready before the lock goes: an opener waiting for it then adopts what we published.
    coord.markReady();
  } finally {
    releaseWriterLock(e);
  }
}

/**
 * Creates the database files (spec/file_format_v1.md §8.6): the log first, so
 * a database file never exists without its log. Processes that open a new
 * path at once take turns (a directory lock); the first creates, the rest
 * open.
 *
 * A log already at `<db>.log` is never removed or overwritten: the log is the
 * source of truth. When it is a NorthstarDB log that still holds every commit
 * from the first (never truncated), the data file is rebuilt from it: a new
 * data file with the log's database id and a meta that covers none of the
 * log, so recovery replays every record. Otherwise open refuses, changing
 * nothing (spec §8.6 lists every path that removes or shortens a file).
 */
function create(abs: string, logPath: string, opts: Options, lockTimeoutMs: number, startTxnId = 0): void {
  const files = opts.fs;
  const lock = files === nodeFileSystem ? new DirLock(`${abs}.lock.create`) : null;
  if (lock !== null && !lock.acquire(lockTimeoutMs)) throw lockBusy(lockTimeoutMs, `${abs}: another process kept creating the database`);
  try {
    if (files.exists(abs)) return;
    const dbId = files.exists(logPath) ? dbIdToRebuildFrom(abs, logPath, files) : newLog(logPath, opts);
    const first = emptyMeta(opts.pageSize, dbId);
    first.logTail = LOG_HEADER_SIZE;
    first.txnId = startTxnId;
    const image = new Uint8Array(opts.pageSize * 2);
    image.set(encodeMeta(first, META_PAGE_A, kernels), 0);
    image.set(encodeMeta(first, META_PAGE_B, kernels), opts.pageSize);
    files.createAtomically(abs, image);
  } finally {
    lock?.release();
  }
}

/**
 * Creates the files of a new, empty database whose state is that of txn
 * `txnId` (its next commit is txn + 1; no snapshot before it exists), for a
 * replica bootstrapped from a snapshot (spec/replication_v0.md §4.5).
 * InvalidArgument when the data file or the log already exists: nothing is
 * touched.
 */
export function createEmptyAt(abs: string, opts: Options, txnId: number): void {
  const logPath = `${abs}.log`;
  if (opts.fs.exists(abs) || opts.fs.exists(logPath)) throw new NorthstarError('InvalidArgument', `${abs} already exists: a database is created at a txn only when it is new`, { path: abs });
  if (!Number.isSafeInteger(txnId) || txnId < 0) throw new NorthstarError('InvalidArgument', `txnId must be a non-negative integer, got ${String(txnId)}`);
  create(abs, logPath, opts, 30_000, txnId);
}

/** Creates an empty log for a new database; returns the new database id. */
function newLog(logPath: string, opts: Options): number {
  const dbId = randomInt(1, 2 ** 47);
  LogFile.create(logPath, dbId, kernels, opts.fs, opts.sectorSize).close();
  return dbId;
}

/**
 * The data file is missing and a log is there: the database id to rebuild the
 * data file under, when the log holds the whole history; else a NorthstarError
 * that says why not, with both files left as they are.
 */
function dbIdToRebuildFrom(abs: string, logPath: string, files: FileSystem): number {
  const missing = `${abs} is missing but its commit log ${nodePath.basename(logPath)} is there`;
  let log: LogFile;
  try {
    log = LogFile.open(logPath, null, kernels, files);
  } catch (err) {
    const why = err instanceof NorthstarError ? err.message : String(err);
    throw new NorthstarError(err instanceof NorthstarError && err.code === 'UnsupportedFormat' ? 'UnsupportedFormat' : 'Corrupt', `${missing}, and it cannot be read as a NorthstarDB log (${why}); nothing was changed`, {
      path: logPath,
      cause: err,
    });
  }
  try {
    if (log.base !== LOG_HEADER_SIZE) {
      throw new NorthstarError('Corrupt', `${missing}, and truncateLog() dropped its first commits (it starts at position ${log.base}), so the data file cannot be rebuilt from it; restore ${nodePath.basename(abs)} from a backup. Nothing was changed`, {
        path: abs,
      });
    }
    return log.dbId;
  } finally {
    log.close();
  }
}

/** The absolute path open() uses for `path` (InvalidArgument when it is not a non-empty string). */
export function databasePath(path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) throw new NorthstarError('InvalidArgument', 'path must be a non-empty string');
  return nodePath.resolve(path);
}
