// `northstar logdump <db>`: the records of the commit log, one line each, read
// straight from `<db>.log` without opening the database, so it works when the
// data file will not open.

import { Command } from 'commander';
import { LogFile, type ScanEnd } from '../log/file.js';
import { decodeRecord } from '../log/record.js';
import { RecordType } from '../format/record.js';
import { kernels } from '../native/kernels.js';
import { dbPaths, Exit, nonNegativeInt, requireFile, table, type Io } from './common.js';

export interface LogdumpOptions {
  /** Log position to start at (a record boundary); default: the first record. */
  from?: number;
  json?: boolean;
  /** Also fail on a torn tail and on broken txn order or prev-position links. */
  verify?: boolean;
  /** Also list the page ids of each pages section, not just their counts. */
  ids?: boolean;
}

/** A commit's pages section (spec/commit_record_v0.md §3.5) as dumped: counts, and ids with --ids. */
export interface LogdumpPages {
  pageCount: number;
  entryCount: number;
  depth: number;
  written: number;
  freed: number;
  freedYoung: number;
  writtenIds?: readonly number[];
  freedIds?: readonly number[];
  freedYoungIds?: readonly number[];
}

/** One line of the dump. */
export interface LogdumpLine {
  position: number;
  txnId: number;
  type: 'commit' | 'checkpoint';
  ops: number;
  bytes: number;
  prevPosition: number;
  /** Present when the record has a pages section. */
  pages?: LogdumpPages;
}

const TYPE_NAMES = {
  [RecordType.Commit]: 'commit',
  [RecordType.Checkpoint]: 'checkpoint',
} as const;

/** Prints the log's records and how it ends; returns the exit code. */
export function logdump(path: string, options: LogdumpOptions, io: Io): number {
  const { log: logPath } = dbPaths(path);
  requireFile(logPath, 'commit log');
  const log = LogFile.open(logPath, null, kernels);
  try {
    const rows: string[][] = [['position', 'txn', 'type', 'ops', 'bytes', 'pages']];
    /** With --ids: lines printed after the table row of that index, outside its columns. */
    const after = new Map<number, string[]>();
    const flushRows = (): void => {
      if (!options.json && rows.length > 0) {
        table(rows).forEach((l, i) => {
          io.out(l);
          for (const extra of after.get(i) ?? []) io.out(extra);
        });
      }
      rows.length = 0;
      after.clear();
    };
    const problems: string[] = [];
    let count = 0;
    /** The record before this one, and the last commit's txn id (null before any). */
    let prevPosition: number | null = null;
    let lastTxn: number | null = null;
    const it = log.scan(options.from ?? log.base);
    let step = it.next();
    for (; !step.done; step = it.next()) {
      const r = step.value;
      const rec = decodeRecord(r.bytes, 0, kernels);
      const line: LogdumpLine = {
        position: r.position,
        txnId: rec.txnId,
        type: TYPE_NAMES[rec.type],
        ops: rec.type === RecordType.Commit ? rec.ops.length : 0,
        bytes: rec.length,
        prevPosition: rec.prevPosition,
      };
      const section = rec.type === RecordType.Commit ? rec.pages : null;
      if (section) {
        line.pages = {
          pageCount: section.pageCount,
          entryCount: section.entryCount,
          depth: section.depth,
          written: section.written.length,
          freed: section.freed.length,
          freedYoung: section.freedYoung.length,
          ...(options.ids ? { writtenIds: section.written, freedIds: section.freed, freedYoungIds: section.freedYoung } : {}),
        };
      }
      count++;
      if (options.json) io.out(JSON.stringify(line));
      else {
        const p = line.pages;
        const pages = p ? `${p.pageCount} pages, ${p.entryCount} entries, depth ${p.depth}; written ${p.written}, freed ${p.freed}, freed young ${p.freedYoung}` : '-';
        rows.push([String(line.position), String(line.txnId), line.type, String(line.ops), String(line.bytes), pages]);
        if (section && options.ids) {
          after.set(rows.length - 1, [
            `    written: ${section.written.join(' ')}`.trimEnd(),
            `    freed: ${section.freed.join(' ')}`.trimEnd(),
            `    freed young: ${section.freedYoung.join(' ')}`.trimEnd(),
          ]);
        }
        if (rows.length >= 4096) flushRows();
      }
      if (options.verify && problems.length === 0) {
        if (prevPosition !== null && rec.prevPosition !== prevPosition) {
          problems.push(`record at position ${r.position} links to previous position ${rec.prevPosition}, expected ${prevPosition}`);
        } else if (rec.type === RecordType.Commit && lastTxn !== null && rec.txnId !== lastTxn + 1) {
          problems.push(`record at position ${r.position} is txn ${rec.txnId}, expected ${lastTxn + 1}`);
        }
      }
      prevPosition = r.position;
      if (rec.type === RecordType.Commit) lastTxn = rec.txnId;
    }
    flushRows();
    let end: ScanEnd = step.value;
    // Zeros from the last record to the end of the file: space a live or crashed writer
    // preallocated (spec/file_format_v1.md §8.5), no append. A clean end.
    const zeros = end.zeroTail ?? 0;
    if (zeros > 0) end = { kind: 'end', position: end.position };
    const verdict = endLine(end, count) + (zeros > 0 ? `, then ${zeros} bytes of preallocated zeros` : '');
    if (options.json) io.out(JSON.stringify({ end: end.kind, position: end.position, records: count, ...(end.status ? { status: end.status } : {}), ...(zeros > 0 ? { preallocated: zeros } : {}), problems }));
    else {
      io.out(verdict);
      for (const p of problems) io.out(`problem: ${p}`);
    }
    if (end.kind === 'damaged') return Exit.Failed;
    if (options.verify && (end.kind === 'torn' || problems.length > 0)) return Exit.Failed;
    return Exit.Ok;
  } finally {
    log.close();
  }
}

function endLine(end: ScanEnd, count: number): string {
  const n = `${count} record${count === 1 ? '' : 's'}`;
  switch (end.kind) {
    case 'end':
      return `${n}, clean end at position ${end.position}`;
    case 'torn':
      return `${n}, torn tail at position ${end.position} (${end.status}): the last append was cut short; opening the database cuts it off`;
    case 'damaged':
      return `${n}, damaged record at position ${end.position} (${end.status}) followed by valid records`;
  }
}

export function logdumpCommand(io: Io, done: (code: number) => void): Command {
  return new Command('logdump')
    .description('list the records of the commit log <db>.log (works when the data file will not open)')
    .argument('<db>', 'database file, or its commit log (a path ending in .log)')
    .option('--from <position>', 'start at this log position (a record boundary)', nonNegativeInt)
    .option('--json', 'one JSON object per record, then one for how the log ends')
    .option('--verify', 'fail on a torn tail too, and check txn order and prev-position links')
    .option('--ids', 'also list the page ids of each pages section (written, freed, freed young)')
    .addHelpText(
      'after',
      `
Columns: position (logical log position), txn id, record type, op count, record
length in bytes, and the commit's pages section when it has one (spec
commit_record_v0.md §3.5): page count, entry count and depth after the commit,
and how many pages it wrote, freed and freed young ("-" without a section;
--ids lists the ids under the row). Every record's checksums are checked as it
is read; the last line says how the log ends: clean, a torn tail (a crash cut
the last append short; open cuts it off) or a damaged record followed by valid
ones.

Exit status: 1 for a damaged record; with --verify also for a torn tail or a
broken txn order or prev-position link; else 0.`,
    )
    .action((db: string, opts: LogdumpOptions) => done(logdump(db, opts, io)));
}
