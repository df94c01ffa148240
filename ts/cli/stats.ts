// `northstar stats <db>`: db.stats() as a table, or as JSON.

import { Command } from 'commander';
import type { DatabaseStats } from '../db/index.js';
import { Exit, table, withDatabase, type Io } from './common.js';

export interface StatsOptions {
  json?: boolean;
}

/** The rows of the table: what a person asks about a database file. */
function rows(s: DatabaseStats): string[][] {
  const bytes = (n: number): string => (n >= 1024 * 1024 ? `${n} (${(n / 1024 / 1024).toFixed(1)} MiB)` : n >= 1024 ? `${n} (${(n / 1024).toFixed(1)} KiB)` : String(n));
  return [
    ['path', s.path],
    ['log path', s.logPath],
    ['kernels', s.implementation],
    ['page size', String(s.pageSize)],
    ['txn id', String(s.txnId)],
    ['entries', String(s.entries)],
    ['tree depth', String(s.depth)],
    ['pages', String(s.pageCount)],
    ['free pages', String(s.freePages)],
    ['pending pages', `${s.pendingPages} (freed, still reachable from retained snapshots)`],
    ['freelist pages', String(s.freelistPages)],
    ['file size', bytes(s.fileSize)],
    ['log size', bytes(s.logSize)],
    ['log starts', s.log.firstTxnId === null ? 'empty' : `txn ${s.log.firstTxnId} (position ${s.log.start})`],
    ['history', `${s.history.retained} snapshots retained${s.history.oldestTxnId === null ? '' : `, oldest txn ${s.history.oldestTxnId}`}`],
    ['checkpoint', `txn ${s.checkpoint.txnId}, ${s.checkpoint.commitsSince} commits and ${s.checkpoint.logBytesSince} log bytes since`],
    ['max key size', String(s.maxKeySize)],
  ];
}

/** Prints the statistics of database `path`; returns the exit code. */
export function stats(path: string, options: StatsOptions, io: Io): number {
  const s = withDatabase(path, (db) => db.stats());
  if (options.json) {
    // The history and log limits are the tool's own (it keeps everything), not the database's.
    const { limit: _limit, bytesLimit: _bytes, ...history } = s.history;
    const { retainTxns: _txns, retainBytes: _retain, ...log } = s.log;
    io.out(JSON.stringify({ ...s, history, log }));
  } else for (const l of table(rows(s))) io.out(l);
  return Exit.Ok;
}

export function statsCommand(io: Io, done: (code: number) => void): Command {
  return new Command('stats')
    .description('page counts, tree depth, free and pending pages, file and log sizes, history, checkpoint')
    .argument('<db>', 'database file')
    .option('--json', 'one JSON object: the whole of db.stats()')
    .addHelpText(
      'after',
      `
It opens the database like any other handle: safe while other threads and
processes use it (it adopts their state; only when no handle is open does it
recover after a crash, which may write).`,
    )
    .action((db: string, opts: StatsOptions) => done(stats(db, opts, io)));
}
