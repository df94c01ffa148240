// What every subcommand of the `northstar` tool shares: where its output goes,
// how it names the two files of a database, how it opens one, and how bytes
// and errors are printed. The subcommands themselves are thin: each is one
// file of argument handling over library functions.

import * as fs from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { NorthstarError } from '../errors.js';
import { open, type Database } from '../db/index.js';

/** Where a subcommand writes: one call per line, without the newline. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** Exit codes of the tool. */
export const Exit = {
  /** Everything checked is fine. */
  Ok: 0,
  /** A check found problems, a file is damaged or missing, or an operation failed. */
  Failed: 1,
  /** The command line itself is wrong (unknown option, bad number). */
  Usage: 2,
} as const;

/** A failure the tool reports as one line `northstar: <message>`. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * The one-line message for any thrown value: NorthstarError gives its message
 * and code, a Node error its message, anything else its string form. Newlines
 * are folded so the line stays one line.
 */
export function errorLine(err: unknown): string {
  let msg: string;
  if (err instanceof NorthstarError) msg = `${err.message} [${err.code}]`;
  else if (err instanceof Error) msg = err.message;
  else msg = String(err);
  return `northstar: ${msg.replace(/\s*\n\s*/g, ' ')}`;
}

/** The data file and commit log a path names. */
export interface DbPaths {
  db: string;
  log: string;
}

/**
 * `<db>` names the data file (its log is `<db>.log`), or the log itself when it
 * ends in `.log` and no `<path>.log` exists beside it.
 */
export function dbPaths(path: string): DbPaths {
  if (path.endsWith('.log') && !fs.existsSync(`${path}.log`)) return { db: path.slice(0, -'.log'.length), log: path };
  return { db: path, log: `${path}.log` };
}

/** Throws a CliError unless `path` is an existing regular file. */
export function requireFile(path: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch {
    throw new CliError(`${path}: no such ${what}`);
  }
  if (!st.isFile()) throw new CliError(`${path}: not a ${what} (not a regular file)`);
}

/** Page cache of a tool: enough for a walk, modest beside a server's. */
export const TOOL_CACHE_SIZE = 16 * 1024 * 1024;

/**
 * Opens an existing database for a tool (never creates one) and calls `use`,
 * closing it afterwards whatever happens. Opening recovers: after a crash it
 * replays the log and checkpoints, cutting a torn tail; so it may write. The
 * tool keeps every retained snapshot on disk readable (no history limit) and
 * every log record (no log retention), so a checkpoint it writes never
 * shortens the history or the log the database's own handles keep.
 */
export function withDatabase<T>(path: string, use: (db: Database) => T): T {
  const { db: dbPath } = dbPaths(path);
  requireFile(dbPath, 'database file');
  const db = open(dbPath, {
    cacheSize: TOOL_CACHE_SIZE,
    history: { txns: Number.MAX_SAFE_INTEGER, bytes: Infinity },
    log: { retainTxns: Infinity, retainBytes: Infinity },
  });
  let result: T;
  try {
    result = use(db);
  } catch (err) {
    try {
      db.close();
    } catch {
      // The first error is the one to report.
    }
    throw err;
  }
  db.close();
  return result;
}

/** Commander parser of a non-negative integer argument. */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

// ---- bytes as text -------------------------------------------------------------------

const HEX = '0123456789abcdef';

/**
 * Bytes as one line of text: printable ASCII (0x20–0x7e) as itself except the
 * backslash; `\\`, `\t`, `\n`, `\r` for those four; every other byte as `\xHH`
 * (so UTF-8 beyond ASCII shows as its bytes). Lossless and free of tabs and
 * newlines, so `key<TAB>value` lines split unambiguously.
 */
export function escapeBytes(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x5c) s += '\\\\';
    else if (c >= 0x20 && c <= 0x7e) s += String.fromCharCode(c);
    else if (c === 0x09) s += '\\t';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x0d) s += '\\r';
    else s += '\\x' + HEX[c >> 4]! + HEX[c & 15]!;
  }
  return s;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * One field of a JSON line: `{ [name]: text }` when the bytes are valid UTF-8
 * (they round-trip exactly), else `{ [name + 'Base64']: base64 }`.
 */
export function jsonBytes(name: string, b: Uint8Array): Record<string, string> {
  try {
    return { [name]: strictUtf8.decode(b) };
  } catch {
    return { [`${name}Base64`]: Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64') };
  }
}

/** Rows as aligned columns (two spaces between), for text output. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
