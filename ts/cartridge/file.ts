// Cartridge files on disk (spec/cartridge_v1.md §5): a new cartridge
// replaces the old whole or not at all, and never replaces a file that is not
// a cartridge (a mistyped --out naming a database must not destroy it).

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import { NorthstarError } from '../errors.js';
import { syncDirectory, writeWholeFile } from '../io/file.js';
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
