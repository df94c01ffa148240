// `northstar cartridge build|inspect|verify` (spec/cartridge_v1.md): build a
// pending_tasks_by_type cartridge from a database's commit log alone, print
// one, or check one (its own checks, and with --db that it holds exactly what
// the log says at its txn).

import { Command } from 'commander';
import { buildCartridgeFromLog } from '../cartridge/build.js';
import { readCartridgeFile, writeCartridgeFile } from '../cartridge/file.js';
import { liveFromLog } from '../cartridge/delta.js';
import { encodeCartridge, type Cartridge } from '../cartridge/format.js';
import { asTask } from '../cartridge/serve.js';
import { dbPaths, Exit, nonNegativeInt, requireFile, table, type Io } from './common.js';

export interface CartridgeBuildOptions {
  at?: number;
  out?: string;
  /** An earlier cartridge of the database: apply the commits since it instead of replaying the whole log. */
  base?: string;
  json?: boolean;
}

/** The default file of a database's cartridge: beside the database. */
export function defaultCartridgePath(db: string): string {
  return `${db}.pending_tasks_by_type.cartridge`;
}

export function build(path: string, options: CartridgeBuildOptions, io: Io): number {
  const { db, log } = dbPaths(path);
  requireFile(log, 'commit log');
  const started = process.hrtime.bigint();
  const built = options.base === undefined ? buildCartridgeFromLog(log, options.at === undefined ? {} : { at: options.at }) : buildOnBase(options.base, log, options.at);
  const out = options.out ?? defaultCartridgePath(db);
  writeCartridgeFile(out, built.bytes);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const result = { file: out, txnId: built.txnId, logEnd: built.logEnd, dbId: built.dbId, groups: built.groups, entries: built.entries, bytes: built.bytes.length, buildMs: Math.round(ms * 10) / 10 };
  if (options.json) io.out(JSON.stringify(result));
  else io.out(`${out}: txn ${result.txnId}, ${result.groups} groups, ${result.entries} entries, ${result.bytes} bytes, built in ${result.buildMs} ms`);
  return Exit.Ok;
}

/** The cartridge at `at` from an earlier one and the commits since (spec §6): the same bytes as a full build. */
function buildOnBase(baseFile: string, log: string, at: number | undefined): { bytes: Uint8Array; txnId: number; logEnd: number; dbId: number; groups: number; entries: number } {
  requireFile(baseFile, 'cartridge');
  const live = liveFromLog(readCartridgeFile(baseFile), log, at);
  const content = live.content();
  return { bytes: encodeCartridge(content), txnId: content.txnId, logEnd: content.logEnd, dbId: content.dbId, groups: content.groups.length, entries: content.groups.reduce((n, g) => n + g.entries.length, 0) };
}

function describe(c: Cartridge): Record<string, unknown> {
  const h = c.header;
  return { version: h.version, type: 'pending_tasks_by_type', dbId: h.dbId, txnId: h.txnId, logEnd: h.logEnd, queueLayout: h.queueLayout, groups: h.groupCount, entries: h.entryCount, bytes: h.fileLength };
}

export function inspect(file: string, options: { json?: boolean; entries?: number }, io: Io): number {
  requireFile(file, 'cartridge');
  const c = readCartridgeFile(file);
  const limit = options.entries ?? 0;
  const groups = c.groups().map((g) => ({ ...g, ...(limit > 0 ? { first: c.entries(g.queue, g.type, limit).map(asTask) } : {}) }));
  if (options.json) {
    io.out(JSON.stringify({ ...describe(c), groups }));
    return Exit.Ok;
  }
  for (const [k, v] of Object.entries(describe(c))) io.out(`${k.padEnd(11)} ${String(v)}`);
  const rows = [['queue', 'type', 'ready'], ...groups.map((g) => [g.queue, g.type, String(g.count)])];
  for (const line of table(rows)) io.out(line);
  if (limit > 0) for (const g of groups) for (const e of g.first ?? []) io.out(`${g.queue}\t${g.type}\t${e.id}\tpriority ${e.priority}\treadyAt ${e.readyAt}`);
  return Exit.Ok;
}

/** Checks a cartridge; with `db`, rebuilds it from that database's log at the cartridge's txn and compares the bytes. */
export function verify(file: string, options: { db?: string; json?: boolean }, io: Io): number {
  requireFile(file, 'cartridge');
  const c = readCartridgeFile(file);
  const problems: string[] = [];
  if (options.db !== undefined) {
    const { log } = dbPaths(options.db);
    requireFile(log, 'commit log');
    const again = buildCartridgeFromLog(log, { at: c.header.txnId });
    if (again.dbId !== c.header.dbId) problems.push(`built from database ${c.header.dbId}, not ${options.db} (database ${again.dbId})`);
    else if (Buffer.compare(again.bytes, c.bytes) !== 0) problems.push(`differs from a build of ${options.db} at txn ${c.header.txnId}`);
  }
  if (options.json) io.out(JSON.stringify({ ok: problems.length === 0, problems, ...describe(c) }));
  else {
    io.out(`${file}: checks 1-5 ok (txn ${c.header.txnId}, ${c.header.entryCount} entries)${options.db !== undefined && problems.length === 0 ? `; equal to a build of ${options.db} at that txn` : ''}`);
    for (const p of problems) io.out(`problem: ${p}`);
  }
  return problems.length === 0 ? Exit.Ok : Exit.Failed;
}

export function cartridgeCommand(io: Io, done: (code: number) => void): Command {
  const c = new Command('cartridge').description('build, print or check a pending_tasks_by_type cartridge (spec/cartridge_v1.md)');
  c.command('build')
    .description('build the cartridge of <db> from its commit log alone (the data file may be absent)')
    .argument('<db>', 'database file, or its commit log')
    .option('--at <txn>', 'build at this txn (default: the last commit)', nonNegativeInt)
    .option('--out <file>', 'where to write it (default: <db>.pending_tasks_by_type.cartridge); an existing file that is not a cartridge is never replaced')
    .option('--base <file>', 'start from this earlier cartridge of the database and apply the commits since (same bytes as a full build)')
    .option('--json', 'one JSON object')
    .action((db: string, opts: CartridgeBuildOptions) => done(build(db, opts, io)));
  c.command('inspect')
    .description('print a cartridge: header, and ready tasks per queue and type')
    .argument('<file>', 'cartridge file')
    .option('--entries <n>', 'also list the first n tasks of each group, in claim order', nonNegativeInt)
    .option('--json', 'one JSON object')
    .action((file: string, opts: { json?: boolean; entries?: number }) => done(inspect(file, opts, io)));
  c.command('verify')
    .description("check a cartridge (checksum, version, structure, order); with --db, that it is exactly what that database's log gives at its txn")
    .argument('<file>', 'cartridge file')
    .option('--db <db>', 'the database it should describe')
    .option('--json', 'one JSON object')
    .action((file: string, opts: { db?: string; json?: boolean }) => done(verify(file, opts, io)));
  return c;
}
