// `northstar verify <db>`: every check the library has, in order: the commit
// log read raw, then the open (which recovers and checkpoints), the page walk
// of db.verify(), and the agreement of the log with the opened database.

import { engineOfDatabase } from '../db/internal.js';
import { Command } from 'commander';
import type { Database } from '../db/index.js';
import { LogFile, type ScanEnd } from '../log/file.js';
import { decodeRecord } from '../log/record.js';
import { RecordType } from '../format/record.js';
import { kernels } from '../native/kernels.js';
import { dbPaths, errorLine, Exit, requireFile, withDatabase, type Io } from './common.js';

export interface Problem {
  /** The check that found it: log, open, tree, log/meta. */
  check: 'log' | 'open' | 'tree' | 'log/meta';
  /** Page id for tree problems, log position for log problems, else null. */
  pageId: number | null;
  position: number | null;
  code: string;
  message: string;
}

/** What a scan of the whole log found. */
interface LogSummary {
  records: number;
  firstTxn: number | null;
  lastTxn: number | null;
  end: ScanEnd;
}

/**
 * Reads every record of `log` from its first: each must parse, commit txn ids
 * must be consecutive. A torn tail is reported only when `tornIsProblem`
 * (before open it is the normal leftover of a crash, which open cuts off).
 */
function scanLog(log: LogFile, check: Problem['check'], tornIsProblem: boolean, problems: Problem[]): LogSummary {
  let records = 0;
  let firstTxn: number | null = null;
  let lastTxn: number | null = null;
  const it = log.scan(log.base);
  let step = it.next();
  for (; !step.done; step = it.next()) {
    const r = step.value;
    records++;
    let rec;
    try {
      rec = decodeRecord(r.bytes, 0, kernels);
    } catch (err) {
      problems.push({ check, pageId: null, position: r.position, code: 'record', message: `record at position ${r.position} does not parse: ${errorLine(err).slice('northstar: '.length)}` });
      continue;
    }
    if (rec.type !== RecordType.Commit) continue;
    if (lastTxn !== null && rec.txnId !== lastTxn + 1) {
      problems.push({ check, pageId: null, position: r.position, code: 'order', message: `record at position ${r.position} is txn ${rec.txnId}, expected ${lastTxn + 1}` });
    }
    firstTxn ??= rec.txnId;
    lastTxn = rec.txnId;
  }
  const end = step.value;
  if (end.kind === 'damaged') {
    problems.push({ check, pageId: null, position: end.position, code: 'damaged', message: `damaged record at position ${end.position} (${end.status}) followed by valid records` });
  } else if (end.kind === 'torn' && tornIsProblem) {
    problems.push({ check, pageId: null, position: end.position, code: 'torn', message: `torn tail at position ${end.position} (${end.status})` });
  }
  return { records, firstTxn, lastTxn, end };
}

function describeLog(s: LogSummary): string {
  const txns = s.firstTxn === null ? 'no commits' : `txns ${s.firstTxn}..${s.lastTxn}`;
  const how = s.end.kind === 'end' ? 'clean end' : `${s.end.kind} at position ${s.end.position} (${s.end.status})`;
  return `${s.records} records, ${txns}, ${how}`;
}

/** Runs every check on database `path`; prints each problem and "N problems found". */
export function verify(path: string, io: Io): number {
  const { db: dbPath, log: logPath } = dbPaths(path);
  requireFile(dbPath, 'database file');
  const problems: Problem[] = [];
  const status = (check: string, text: string): void => io.out(`${check.padEnd(9)}${text}`);

  // 1. The log, raw: works even when the data file will not open.
  let logOk = false;
  try {
    requireFile(logPath, 'commit log');
    const log = LogFile.open(logPath, null, kernels);
    try {
      const before = problems.length;
      const s = scanLog(log, 'log', false, problems);
      logOk = problems.length === before;
      status('log', `${logOk ? 'ok' : 'FAILED'}: ${describeLog(s)}${s.end.kind === 'torn' ? '; open cuts the torn tail off' : ''}`);
    } finally {
      log.close();
    }
  } catch (err) {
    problems.push({ check: 'log', pageId: null, position: null, code: 'unreadable', message: errorLine(err).slice('northstar: '.length) });
    status('log', 'FAILED: the log cannot be read');
  }

  // 2. Open (recovery), 3. the page walk, 4. log/meta agreement.
  try {
    withDatabase(dbPath, (db) => {
      status('open', `ok: txn ${db.txnId}, page size ${db.stats().pageSize}`);
      const report = db.verify();
      for (const p of report.problems) problems.push({ check: 'tree', pageId: p.pageId, position: null, code: p.code, message: p.message });
      status(
        'tree',
        `${report.ok ? 'ok' : 'FAILED'}: txn ${report.txnId}, ${report.pageCount} pages (${report.treePages} tree, ${report.freelistPages} freelist, ${report.historyPages} history, ${report.freePages} free), ${report.entries} entries`,
      );
      checkLogAgainstMeta(db, problems, status);
    });
  } catch (err) {
    const line = errorLine(err);
    problems.push({ check: 'open', pageId: null, position: null, code: 'open', message: line.slice('northstar: '.length) });
    status('open', 'FAILED: the database does not open; the page walk and the log/meta check did not run');
    io.err(line);
  }

  for (const p of problems) {
    const where = p.pageId !== null ? `page ${p.pageId}` : p.position !== null ? `position ${p.position}` : '-';
    io.out(`${p.check}\t${where}\t${p.code}\t${p.message}`);
  }
  io.out(`${problems.length} problems found`);
  return problems.length === 0 ? Exit.Ok : Exit.Failed;
}

/**
 * After open and verify's checkpoint: the whole log still parses (open has cut
 * any torn tail), its commits are consecutive, the last one is the database's
 * txn id, and the checkpoint covers it.
 */
function checkLogAgainstMeta(db: Database, problems: Problem[], status: (check: string, text: string) => void): void {
  const before = problems.length;
  const s = scanLog(engineOfDatabase(db).log, 'log/meta', true, problems);
  const stats = db.stats();
  if (s.lastTxn !== null && s.lastTxn !== db.txnId) {
    problems.push({ check: 'log/meta', pageId: null, position: null, code: 'txn', message: `the log's last commit is txn ${s.lastTxn}, the database is at txn ${db.txnId}` });
  }
  if (s.lastTxn === null && stats.checkpoint.txnId < db.txnId) {
    problems.push({ check: 'log/meta', pageId: null, position: null, code: 'txn', message: `the log holds no commit, the database is at txn ${db.txnId} past its checkpoint ${stats.checkpoint.txnId}` });
  }
  if (stats.checkpoint.txnId !== db.txnId) {
    problems.push({ check: 'log/meta', pageId: null, position: null, code: 'checkpoint', message: `the checkpoint is at txn ${stats.checkpoint.txnId}, the database at txn ${db.txnId}` });
  }
  const ok = problems.length === before;
  status('log/meta', `${ok ? 'ok' : 'FAILED'}: ${describeLog(s)}; database txn ${db.txnId}, checkpoint txn ${stats.checkpoint.txnId}`);
}

export function verifyCommand(io: Io, done: (code: number) => void): Command {
  return new Command('verify')
    .description('check the commit log, the page tree and their agreement; print every problem')
    .argument('<db>', 'database file (or its log, a path ending in .log)')
    .addHelpText(
      'after',
      `
Checks, in order:
  log       every record of <db>.log parses and commit txn ids are consecutive
            (read raw, so it runs even when the data file will not open)
  open      the database opens. Opening RECOVERS: after a crash it replays
            the log into the data file, checkpoints and cuts a torn tail off
            the log, so verify may write to the database (this is how a torn
            tail heals). Run it on a copy to leave the files untouched.
  tree      db.verify(): the walk of every page (checksums, order, links,
            free list, history)
  log/meta  after recovery the whole log parses, its last commit is the
            database's txn id and the checkpoint covers it

Prints each problem as check, page or position, code, message, then
"N problems found". Exit status 0 when none, 1 otherwise. Do not run it while
another process has the database open.`,
    )
    .action((db: string) => done(verify(db, io)));
}
