// Cartridge files on disk (spec/cartridge_v1.md §5): a new cartridge
// replaces the old whole or not at all, and never replaces a file that is not
// a cartridge (a mistyped --out naming a database must not destroy it).

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import { NorthstarError } from '../errors.js';
import { syncDirectory, writeWholeFile } from '../io/file.js';
import { pageMapper } from '../pager/map.js';
import { processAlive } from '../shared/coordinator.js';
import { CARTRIDGE_MAGIC, Cartridge } from './format.js';

/**
 * Writes `bytes` (an encoded cartridge) to `path` durably and atomically: a
 * temporary file beside it, fsync, rename over `path`, fsync of the
 * directory. Refuses (InvalidArgument) when `path` exists and does not start
 * with the cartridge magic; IoError when the file system fails, with the
 * temporary file removed and `path` as it was.
 */
export function writeCartridgeFile(path: string, bytes: Uint8Array): void {
  const tmp = temporaryFor(path);
  try {
    writeWholeFile(tmp, bytes, 'wx');
    fs.renameSync(tmp, path);
    syncDirectory(nodePath.dirname(nodePath.resolve(path)));
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw writeFailed(path, err);
  }
}

/** writeCartridgeFile with asynchronous I/O, for a background build on the event loop: the same steps, the same refusals. */
export async function writeCartridgeFileAsync(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = temporaryFor(path);
  try {
    const fh = await fsp.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, path);
    if (process.platform !== 'win32') {
      // (syncDirectory, asynchronously; Windows cannot open a directory for fsync.)
      const dir = await fsp.open(nodePath.dirname(nodePath.resolve(path)), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    }
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw writeFailed(path, err);
  }
}

/**
 * The temporary file a write of `path` goes through, once `path` is known to
 * be replaceable (else InvalidArgument) and dead writers' temporaries are gone.
 */
function temporaryFor(path: string): string {
  if (!replaceable(path)) {
    throw new NorthstarError('InvalidArgument', `${path} exists and is not a cartridge: it is left as it is (choose another path)`, { path });
  }
  removeDeadTemporaries(path);
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

function writeFailed(path: string, err: unknown): NorthstarError {
  return new NorthstarError('IoError', `write cartridge ${path}: ${(err as Error).message}`, { path, cause: err });
}

/** Reads and checks (spec §3) the cartridge at `path`: IoError when unreadable, Corrupt or UnsupportedFormat when it fails a check. */
export function readCartridgeFile(path: string): Cartridge {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    throw new NorthstarError('IoError', `read cartridge ${path}: ${(err as Error).message}`, { path, cause: err });
  }
  try {
    return Cartridge.decode(bytes);
  } catch (err) {
    if (err instanceof NorthstarError) throw new NorthstarError(err.code, `${path}: ${err.message}`, { path });
    throw err;
  }
}

/** A cartridge loaded for serving, and how to let go of its bytes. */
export interface LoadedCartridge {
  cartridge: Cartridge;
  /** Whether its bytes are a memory mapping of the file (else a copy read whole). */
  mapped: boolean;
  /** Unmaps the file (a mapped cartridge reads as empty afterwards); nothing to do for a copy. Idempotent. */
  close(): void;
}

/** Largest cartridge mapped (the addon's largest window); a larger one is read whole. */
export const MAX_MAPPED_CARTRIDGE_BYTES = 1 << 30;
const MAP_ALIGN = 1 << 16;

/**
 * Loads and checks (spec §3) the cartridge at `path` for serving: with the
 * native addon (where pages are mapped: pageMapper()), a read-only shared
 * mapping of the file, so the load costs the checks and no copy; otherwise
 * (the fallback, Windows, NORTHSTAR_MMAP=0, a file over
 * MAX_MAPPED_CARTRIDGE_BYTES, or a failed mapping) readCartridgeFile. The
 * same errors as readCartridgeFile.
 *
 * A mapping is safe against everything NorthstarDB does to the file: a new
 * cartridge replaces it by rename (§5), so the mapped inode never changes.
 * As with the data file (spec/file_format_v1.md §9.3), another program
 * truncating the file in place while it is mapped would end the process
 * (SIGBUS).
 */
export function loadCartridgeFile(path: string): LoadedCartridge {
  const Mapping = pageMapper();
  if (Mapping !== null) {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      throw new NorthstarError('IoError', `read cartridge ${path}: ${(err as Error).message}`, { path, cause: err });
    }
    let mapping: InstanceType<typeof Mapping> | null = null;
    let bytes: Uint8Array | null = null;
    try {
      const size = fs.fstatSync(fd).size;
      if (size > 0 && size <= MAX_MAPPED_CARTRIDGE_BYTES) {
        mapping = new Mapping(fd, 0, Math.ceil(size / MAP_ALIGN) * MAP_ALIGN);
        // The window reads zeros past what is mapped: a file that shrank between fstat and the mapping fails check 1 or 2.
        bytes = new Uint8Array(mapping.buffer(), 0, size);
      }
    } catch {
      // No mapping here (ENOMEM, a runtime without external buffers): read the file instead.
      mapping?.close();
      mapping = null;
    } finally {
      fs.closeSync(fd); // the mapping holds its own descriptor
    }
    if (mapping !== null && bytes !== null) {
      const m = mapping;
      try {
        return { cartridge: Cartridge.decode(bytes), mapped: true, close: () => m.close() };
      } catch (err) {
        m.close();
        if (err instanceof NorthstarError) throw new NorthstarError(err.code, `${path}: ${err.message}`, { path });
        throw err;
      }
    }
  }
  return { cartridge: readCartridgeFile(path), mapped: false, close: () => {} };
}

/** True when `path` does not exist or starts with the cartridge magic: a file a cartridge write may replace. */
function replaceable(path: string): boolean {
  return !fs.existsSync(path) || startsWithMagic(path);
}

function startsWithMagic(path: string): boolean {
  const head = Buffer.alloc(4);
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    return fs.readSync(fd, head, 0, 4, 0) === 4 && head.readUInt32LE(0) === CARTRIDGE_MAGIC;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Removes `<path>.tmp-<pid>-<random>` files left by writers that died before
 * their rename (their process is gone): never the cartridge itself, never a
 * live writer's file.
 */
function removeDeadTemporaries(path: string): void {
  const dir = nodePath.dirname(nodePath.resolve(path));
  const stem = `${nodePath.basename(path)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(stem)) continue;
    const m = /^(\d+)-[0-9a-f]{8}$/.exec(name.slice(stem.length));
    if (m === null || processAlive(Number(m[1]))) continue;
    fs.rmSync(nodePath.join(dir, name), { force: true });
  }
}
