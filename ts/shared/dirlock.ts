// A cross-process exclusive lock made only of atomic file-system operations,
// for when the native addon (flock / LockFileEx) is not loaded: the file
// fallback's writer and claim locks (ts/shared/store.ts). A holder killed with
// SIGKILL leaves the lock to the next acquirer that sees its process dead.
//
// Protocol (spec/concurrency_v0.md, "DirLock"). The lock is held by whoever
// owns the single file in directory L, named `owner-<pid>-<nonce>` (the nonce
// is random per acquisition, so no two acquisitions ever share a name); its
// content is an OwnerRecord.
// - Acquire: write the owner file into a private `L.tmp-<pid>-<nonce>`, then
//   rename it onto L. The rename succeeds only onto an absent or empty L and
//   it is the only step that makes anyone a holder. If L is non-empty and its
//   owner is dead: unlink exactly that owner's file (ENOENT: someone else took
//   over first), rmdir L (fails unless empty), rename once more.
// - Release: unlink our owner file, then rmdir L.
// Why two holders cannot coexist: L is never empty while held (it arrives with
// its owner file), so a rename can only succeed after the holder's file is
// gone; that file is removed only by its holder or by someone who judged the
// holder dead, by its exact name, so never a later holder's file; rmdir
// removes only an empty L. A wrong "dead" judgement is the only way in, which
// is why liveness errs towards alive.
//
// File-system assumptions: rename of a directory onto an absent or empty
// directory is atomic and fails (ENOTEMPTY/EEXIST; EPERM/EACCES on Windows)
// onto a non-empty one; unlink and rmdir are atomic. Local file systems give
// these. Over NFS a retried rename may report failure after it succeeded:
// takeOver() then finds our own owner file in L and counts the win.
//
// Liveness of a holder (ownerAlive): an owner on another hostname is always
// alive, so on a shared file system a lock left by a dead remote process must
// be removed by hand (`rm -r L`). On this host: alive unless a different boot
// id (Linux), `process.kill(pid, 0)` reports ESRCH, /proc/<pid>/stat shows a
// different start time (the pid was reused) or a zombie (exited, not yet
// reaped by its parent). Processes sharing a lock must share a pid namespace:
// two containers with one hostname and separate pid namespaces would misjudge
// each other.
//
// Limits:
// - Worker threads share their process's pid: a thread that dies while it
//   holds a DirLock leaves the lock held until the whole process exits (a
//   pid-level check cannot tell). Two DirLocks in one process exclude each
//   other like two processes.
// - Entries put into L by anything else keep it busy until removed by hand.
// - A DirLock is not reentrant: tryAcquire() while holding is a caller bug.

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { performance } from 'node:perf_hooks';
import { ErrorCode, ioError, NorthstarError } from '../errors.js';

/** The content of an owner file: who holds the lock, as JSON. */
export interface OwnerRecord {
  pid: number;
  /** Hex, random per acquisition; also in the owner file's name. */
  nonce: string;
  hostname: string;
  /** ISO 8601, the holder's clock. */
  acquiredAt: string;
  /** Linux: field 22 of /proc/<pid>/stat (clock ticks from boot to process start), so a reused pid is told apart; else null. */
  startTime: number | null;
  /** Linux: /proc/sys/kernel/random/boot_id, so a record from before a reboot is dead whatever its pid; else null. */
  bootId: string | null;
}

const OWNER_NAME = /^owner-([1-9][0-9]*)-([0-9a-f]+)$/;
const TEMP_SUFFIX = /^([1-9][0-9]*)-([0-9a-f]+)$/;
const TEMP_INFIX = '.tmp-';
/**
 * A temporary directory without a readable record (its creator died between
 * mkdir and writing the record, or is just doing so) is swept only when its pid
 * is dead here and it is older than this: the pid might belong to another host.
 */
const STALE_TEMP_MS = 10_000;
/** rename() codes that mean "L exists and is not empty"; the rest are I/O errors. */
const BUSY_RENAME = new Set(process.platform === 'win32' ? ['ENOTEMPTY', 'EEXIST', 'EPERM', 'EACCES', 'EBUSY'] : ['ENOTEMPTY', 'EEXIST']);

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export class DirLock {
  /** L, absolute. */
  readonly path: string;
  /** Our owner file's name while we hold (or believe we hold) the lock. */
  private ownName: string | null = null;
  private swept = false;

  constructor(dirPath: string) {
    if (typeof dirPath !== 'string' || dirPath === '') throw new NorthstarError(ErrorCode.InvalidArgument, 'DirLock needs a directory path');
    this.path = nodePath.resolve(dirPath);
  }

  /** Takes the lock if it is free or its holder is dead; false when a live holder has it. Never waits. */
  tryAcquire(): boolean {
    if (this.ownName !== null) throw new NorthstarError(ErrorCode.InvalidArgument, `${this.path}: this DirLock already holds the lock (it is not reentrant)`, { path: this.path });
    if (!this.swept) {
      this.swept = true;
      sweepTemps(this.path);
    }
    const nonce = randomBytes(8).toString('hex');
    const name = `owner-${process.pid}-${nonce}`;
    const temp = `${this.path}${TEMP_INFIX}${process.pid}-${nonce}`;
    try {
      fs.mkdirSync(temp);
    } catch (err) {
      throw ioError(err, `${this.path}: cannot create the lock's temporary directory`, temp);
    }
    let won = false;
    try {
      try {
        fs.writeFileSync(nodePath.join(temp, name), JSON.stringify(ownRecord(nonce)), { flag: 'wx' });
      } catch (err) {
        // Swept by someone who misjudged us dead: a failed try, not an error.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw ioError(err, `${this.path}: cannot write the lock's owner record`, temp);
      }
      won = this.publish(temp, name) || this.takeOver(temp, name);
    } finally {
      if (!won) removeDir(temp);
    }
    if (won) this.ownName = name;
    return won;
  }

  /** tryAcquire() until it succeeds or timeoutMs (may be Infinity) passes, sleeping 1 ms → 20 ms between tries. */
  acquire(timeoutMs: number): boolean {
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw new NorthstarError(ErrorCode.InvalidArgument, `DirLock.acquire: timeoutMs must be a number >= 0, got ${String(timeoutMs)}`);
    if (this.tryAcquire()) return true;
    const deadline = performance.now() + timeoutMs;
    let wait = 1;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(sleeper, 0, 0, Math.min(wait, left));
      if (this.tryAcquire()) return true;
      wait = Math.min(wait * 2, 20);
    }
  }

  /**
   * Gives the lock up. Throws InvalidArgument when this DirLock did not take
   * it, and WriteBusy when it was lost: our owner file is gone, so another
   * process judged us dead and may hold it now (whatever we did while we
   * believed we held it was unprotected).
   */
  release(): void {
    const name = this.ownName;
    if (name === null) throw new NorthstarError(ErrorCode.InvalidArgument, `${this.path}: release() of a lock this DirLock does not hold`, { path: this.path });
    try {
      fs.unlinkSync(nodePath.join(this.path, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(err, `${this.path}: cannot release the lock`, this.path);
      this.ownName = null;
      throw new NorthstarError(ErrorCode.WriteBusy, `${this.path}: the lock was lost: its owner file ${name} is gone (another process judged this one dead and took the lock over, or the lock directory was removed by hand)`, {
        path: this.path,
      });
    }
    this.ownName = null;
    // Any failure is harmless: an empty L is a free lock (the next rename
    // replaces it), and ENOTEMPTY means the next holder already has it.
    try {
      fs.rmdirSync(this.path);
    } catch {}
  }

  /** Whether our owner file is still in L (false after a takeover by someone who judged us dead). */
  isHeld(): boolean {
    return this.ownName !== null && fs.existsSync(nodePath.join(this.path, this.ownName));
  }

  /**
   * The holder's record as read from disk now; null when L holds no readable
   * record: the lock is free (or was released while we read), or the record
   * was cut short by a system crash (tryAcquire then judges the pid in the
   * file's name).
   */
  owner(): OwnerRecord | null {
    const found = readOwner(this.path);
    return found.kind === 'owner' ? found.record : null;
  }

  /** Renames our temporary directory onto L; false when L is a non-empty directory. */
  private publish(temp: string, name: string): boolean {
    try {
      fs.renameSync(temp, this.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (BUSY_RENAME.has(code)) return false;
      // Our temporary directory was swept before the rename.
      if (code === 'ENOENT' && !fs.existsSync(temp) && fs.existsSync(nodePath.dirname(this.path))) return false;
      throw ioError(err, `${this.path}: cannot take the lock`, this.path);
    }
    // A sweeper that misjudged us dead may have emptied the directory before we
    // renamed it: an empty L is not held (anyone may rename onto it).
    if (fs.existsSync(nodePath.join(this.path, name))) return true;
    try {
      fs.rmdirSync(this.path);
    } catch {}
    return false;
  }

  /** L was non-empty: takes it over if its holder is dead (or just left). */
  private takeOver(temp: string, name: string): boolean {
    const found = readOwner(this.path);
    if (found.kind === 'foreign') return false;
    if (found.kind === 'owner' && found.name === name) return true; // our rename did happen
    if (found.kind === 'owner') {
      if (ownerAlive(found.record ?? { pid: found.pid, hostname: null, startTime: null, bootId: null })) return false;
      // Exactly the dead holder's file: a later holder's has another name.
      try {
        fs.unlinkSync(nodePath.join(this.path, found.name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(err, `${this.path}: cannot remove the dead holder's owner file`, this.path);
      }
    }
    // Succeeds only if L is empty; on failure the rename below decides. Needed
    // on Windows, where a rename onto an existing empty directory fails.
    try {
      fs.rmdirSync(this.path);
    } catch {}
    const won = this.publish(temp, name);
    if (won && found.kind === 'owner') sweepTemps(this.path);
    return won;
  }
}

type Found =
  | { kind: 'none' }
  /** Entries that are not a single owner file: not ours to judge or remove. */
  | { kind: 'foreign' }
  /** record: null when the file is unreadable or does not match its name. */
  | { kind: 'owner'; name: string; pid: number; record: OwnerRecord | null };

/** What L holds now. 'none' also when L or its owner file vanished while we looked. */
function readOwner(lockPath: string): Found {
  let names: string[];
  try {
    names = fs.readdirSync(lockPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw ioError(err, `${lockPath}: cannot read the lock directory`, lockPath);
  }
  if (names.length === 0) return { kind: 'none' };
  const m = names.length === 1 ? OWNER_NAME.exec(names[0]!) : null;
  if (m === null) return { kind: 'foreign' };
  const name = names[0]!;
  const pid = Number(m[1]);
  let text: string;
  try {
    text = fs.readFileSync(nodePath.join(lockPath, name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw ioError(err, `${lockPath}: cannot read the lock's owner record`, lockPath);
  }
  return { kind: 'owner', name, pid, record: parseRecord(text, pid, m[2]!) };
}

/** The record in `text` if it is whole and matches the file name's pid and nonce, else null. */
function parseRecord(text: string, pid: number, nonce: string): OwnerRecord | null {
  let r: Partial<OwnerRecord>;
  try {
    r = JSON.parse(text) as Partial<OwnerRecord>;
  } catch {
    return null;
  }
  if (typeof r !== 'object' || r === null || r.pid !== pid || r.nonce !== nonce) return null;
  if (typeof r.hostname !== 'string' || typeof r.acquiredAt !== 'string') return null;
  const startTime = Number.isSafeInteger(r.startTime) ? (r.startTime as number) : null;
  const bootId = typeof r.bootId === 'string' ? r.bootId : null;
  return { pid, nonce, hostname: r.hostname, acquiredAt: r.acquiredAt, startTime, bootId };
}

interface ProcStat {
  /** Field 3: R, S, D, Z (zombie), X (dead), … */
  state: string;
  /** Field 20. */
  threads: number;
  /** Field 22. */
  startTime: number;
}

/** /proc/<pid>/stat, or null when unreadable (no such process, no /proc, not Linux). */
function procStat(pid: number): ProcStat | null {
  if (process.platform !== 'linux') return null;
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // Field 2 is the command name in parentheses, which may itself hold spaces
  // and ')': fields 3 onwards start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0] ?? '';
  const threads = Number(fields[20 - 3]);
  const startTime = Number(fields[22 - 3]);
  if (state === '' || !Number.isSafeInteger(threads) || !Number.isSafeInteger(startTime)) return null;
  return { state, threads, startTime };
}

let self: { startTime: number | null; bootId: string | null } | null = null;

/** This process's start time and the boot id, read once (neither changes). */
function selfInfo(): { startTime: number | null; bootId: string | null } {
  if (self === null) {
    let bootId: string | null = null;
    if (process.platform === 'linux') {
      try {
        bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim() || null;
      } catch {}
    }
    self = { startTime: procStat(process.pid)?.startTime ?? null, bootId };
  }
  return self;
}

function ownRecord(nonce: string): OwnerRecord {
  const me = selfInfo();
  return { pid: process.pid, nonce, hostname: os.hostname(), acquiredAt: new Date().toISOString(), startTime: me.startTime, bootId: me.bootId };
}

/**
 * Whether the process that wrote `rec` may still run. Errs towards alive:
 * judging a live holder dead is the one way two holders could coexist. A null
 * hostname (a record cut short by a crash) is taken as this host.
 */
function ownerAlive(rec: { pid: number; hostname: string | null; startTime: number | null; bootId: string | null }): boolean {
  if (rec.hostname !== null && rec.hostname !== os.hostname()) return true;
  const me = selfInfo();
  if (rec.bootId !== null && me.bootId !== null && rec.bootId !== me.bootId) return false;
  try {
    process.kill(rec.pid, 0);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EPERM: it exists under another user, whose /proc entry may be hidden (hidepid).
    return code !== 'ESRCH';
  }
  if (me.startTime === null) return true; // no /proc to look deeper
  const stat = procStat(rec.pid);
  if (stat === null) return pidExists(rec.pid); // exited just now, or a hidden /proc entry
  // A zombie has exited (every thread: a zombie leader with live threads counts them).
  if ((stat.state === 'Z' || stat.state === 'X') && stat.threads <= 1) return false;
  return rec.startTime === null || stat.startTime === rec.startTime;
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes `L.tmp-*` directories left by dead processes (killed between mkdir
 * and rename, or before cleaning up after a failed try). Best effort: a wrong
 * sweep of a live creator's directory only fails its try (publish() checks the
 * owner file is still there after its rename).
 */
function sweepTemps(lockPath: string): void {
  const dir = nodePath.dirname(lockPath);
  const prefix = nodePath.basename(lockPath) + TEMP_INFIX;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of names) {
    if (!entry.startsWith(prefix)) continue;
    const m = TEMP_SUFFIX.exec(entry.slice(prefix.length));
    if (m === null) continue;
    const pid = Number(m[1]);
    const temp = nodePath.join(dir, entry);
    try {
      let record: OwnerRecord | null = null;
      try {
        record = parseRecord(fs.readFileSync(nodePath.join(temp, `owner-${m[1]}-${m[2]}`), 'utf8'), pid, m[2]!);
      } catch {}
      const stale = record !== null ? !ownerAlive(record) : !pidExists(pid) && Date.now() - fs.statSync(temp).mtimeMs > STALE_TEMP_MS;
      if (stale) removeDir(temp);
    } catch {}
  }
}

/** Removes a temporary directory and its owner file, ignoring every error (best effort). */
function removeDir(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {}
}
