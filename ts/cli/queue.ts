// `northstar queue <db> [--queue NAME] <verb>`: inspect and mend a task queue
// (spec/task_queue_v0.md). Verbs: stats, list, show <id>, requeue <id>,
// cancel <id>, purge, verify. Reads open a snapshot; requeue, cancel and purge
// are one write transaction each (the tool waits up to 30 s for the writer,
// blocking: it is a script), through the same transitions the library runs.

import { Command, InvalidArgumentError, Option } from 'commander';
import type { Database } from '../db/index.js';
import { openQueue, type Queue, type TaskInfo } from '../queue/index.js';
import { STATE_NAMES, TaskState } from '../queue/task.js';
import { cancel, purge, QueueTxn, requeue } from '../queue/transitions.js';
import { CliError, Exit, nonNegativeInt, table, withDatabase, type Io } from './common.js';

export interface QueueCliOptions {
  queue: string;
  json?: boolean;
  state?: string;
  type?: string;
  limit?: number;
  states?: string;
  olderThanMs?: number;
}

const VERBS = ['stats', 'list', 'show', 'requeue', 'cancel', 'purge', 'verify'] as const;
type Verb = (typeof VERBS)[number];

/** How long the tool waits for the writer before giving up (WriteBusy). */
const WRITE_WAIT_MS = 30_000;

function taskId(arg: string | undefined, verb: string): number {
  if (arg === undefined) throw new CliError(`queue ${verb}: which task? (queue <db> ${verb} <id>)`);
  const n = Number(arg);
  if (!/^\d+$/.test(arg) || !Number.isSafeInteger(n) || n < 1) throw new CliError(`queue ${verb}: task id must be a positive integer, got ${JSON.stringify(arg)}`);
  return n;
}

/** One write transaction of queue transitions, synchronous (the tool is a script). */
function writeSync<T>(db: Database, q: Queue, fn: (tx: QueueTxn) => T): T {
  const w = db.beginWrite({ timeoutMs: WRITE_WAIT_MS });
  try {
    const tx = new QueueTxn(w, q, Math.floor(q.clock()));
    const result = fn(tx);
    tx.flush();
    w.commit();
    return result;
  } catch (err) {
    w.abort();
    throw err;
  }
}

function json(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array || (x !== null && typeof x === 'object' && (x as { type?: unknown }).type === 'Buffer' && Array.isArray((x as { data?: unknown }).data)) ? { bytes: Buffer.from(x instanceof Uint8Array ? x : ((x as { data: number[] }).data)).toString('base64') } : x));
}

function showLines(t: TaskInfo): string[][] {
  const rows: string[][] = [
    ['id', String(t.id)],
    ['type', t.type],
    ['state', t.state],
    ['priority', String(t.priority)],
    ['attempt', `${t.attempt} of ${t.maxAttempts}`],
    ['created', new Date(t.createdAt).toISOString()],
    ['ready', new Date(t.readyAt).toISOString()],
    ['updated', new Date(t.updatedAt).toISOString()],
  ];
  if (t.worker !== undefined) rows.push(['worker', t.worker]);
  if (t.token !== undefined) rows.push(['token', String(t.token)]);
  if (t.leaseUntil !== undefined) rows.push(['lease until', new Date(t.leaseUntil).toISOString()]);
  if (t.finishedAt !== undefined) rows.push(['finished', new Date(t.finishedAt).toISOString()]);
  if (t.key !== undefined) rows.push(['key', t.key]);
  rows.push(['payload', json(t.payload)]);
  if ('result' in t) rows.push(['result', json(t.result)]);
  if ('error' in t) rows.push(['error', json(t.error)]);
  return rows;
}

/** Runs one verb on queue `options.queue` of database `path`; returns the exit code. */
export function queueCommandRun(path: string, verb: string, arg: string | undefined, options: QueueCliOptions, io: Io): number {
  if (!(VERBS as readonly string[]).includes(verb)) throw new CliError(`queue: unknown verb ${JSON.stringify(verb)} (one of ${VERBS.join(', ')})`);
  return withDatabase(path, (db) => {
    const q = openQueue(db, options.queue);
    switch (verb as Verb) {
      case 'stats': {
        const s = q.stats();
        if (options.json) io.out(JSON.stringify(s));
        else {
          const rows = [['queue', s.queue], ...STATE_NAMES.map((n) => [n, String(s.counts[n])]), ['oldest ready', s.oldestReadyAgeMs === null ? '-' : `${s.oldestReadyAgeMs} ms`], ['enqueued', String(s.enqueued)], ['claims', String(s.claims)], ['completions', String(s.completions)]];
          for (const l of table(rows)) io.out(l);
          const types = Object.keys(s.byType).sort();
          if (types.length > 0) {
            io.out('');
            for (const l of table([['type', ...STATE_NAMES], ...types.map((t) => [t, ...STATE_NAMES.map((n) => String(s.byType[t]![n]))])])) io.out(l);
          }
        }
        return Exit.Ok;
      }
      case 'list': {
        if (options.state !== undefined && !(STATE_NAMES as readonly string[]).includes(options.state)) throw new CliError(`queue list: unknown state ${JSON.stringify(options.state)} (one of ${STATE_NAMES.join(', ')})`);
        const tasks = q.list({ ...(options.state === undefined ? {} : { state: options.state as TaskInfo['state'] }), ...(options.type === undefined ? {} : { type: options.type }), limit: options.limit ?? 100 });
        if (options.json) io.out(json(tasks));
        else for (const l of table([['id', 'state', 'type', 'priority', 'attempt', 'worker'], ...tasks.map((t) => [String(t.id), t.state, t.type, String(t.priority), `${t.attempt}/${t.maxAttempts}`, t.worker ?? '-'])])) io.out(l);
        return Exit.Ok;
      }
      case 'show': {
        const id = taskId(arg, 'show');
        const t = q.get(id);
        if (t === undefined) throw new CliError(`queue ${options.queue}: no task ${id}`);
        if (options.json) io.out(json(t));
        else for (const l of table(showLines(t))) io.out(l);
        return Exit.Ok;
      }
      case 'requeue':
      case 'cancel': {
        const id = taskId(arg, verb);
        const before = q.get(id);
        if (before === undefined) throw new CliError(`queue ${options.queue}: no task ${id}`);
        const changed = writeSync(db, q, (tx) => (verb === 'cancel' ? cancel(tx, id) : requeue(tx, id)));
        if (options.json) io.out(JSON.stringify({ id, changed, state: q.get(id)!.state }));
        else io.out(changed ? `task ${id}: ${before.state} -> ${q.get(id)!.state}` : `task ${id} is ${before.state}: nothing to ${verb}`);
        return changed ? Exit.Ok : Exit.Failed;
      }
      case 'purge': {
        const names = (options.states ?? 'done,dead').split(',').map((s) => s.trim());
        for (const n of names) if (n !== 'done' && n !== 'dead' && n !== 'cancelled') throw new CliError(`queue purge: --states takes done, dead, cancelled; got ${JSON.stringify(n)}`);
        const states = new Set<number>(names.map((n) => TaskState[n as 'done']));
        let total = 0;
        let after: Buffer | null = null;
        for (;;) {
          const step: { gone: number; last: Buffer | null } = writeSync(db, q, (tx) => purge(tx, states, tx.now - (options.olderThanMs ?? 0), 1000, after));
          total += step.gone;
          if (step.last === null) break;
          after = step.last;
        }
        if (options.json) io.out(JSON.stringify({ purged: total }));
        else io.out(`${total} tasks purged`);
        return Exit.Ok;
      }
      case 'verify': {
        const report = q.verify();
        if (options.json) io.out(JSON.stringify(report));
        else {
          for (const p of report.problems) io.out(p);
          io.out(`${report.tasks} tasks, ${report.problems.length} problems found`);
        }
        return report.ok ? Exit.Ok : Exit.Failed;
      }
    }
  });
}

function positive(value: string): number {
  const n = nonNegativeInt(value);
  if (n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

export function queueCommand(io: Io, done: (code: number) => void): Command {
  return new Command('queue')
    .description('inspect a task queue: stats, list, show <id>; mend it: requeue <id>, cancel <id>, purge; check it: verify')
    .argument('<db>', 'database file')
    .argument('<verb>', VERBS.join(' | '))
    .argument('[id]', 'task id (show, requeue, cancel)')
    .option('--queue <name>', 'queue name', 'work')
    .option('--json', 'JSON output')
    .option('--state <state>', 'list: only tasks in this state (pending, claimed, done, dead, cancelled)')
    .option('--type <type>', 'list: only tasks of this type')
    .addOption(new Option('--limit <n>', 'list: at most this many tasks (default 100)').argParser(positive))
    .option('--states <list>', 'purge: finished states to delete, comma-separated (default done,dead)')
    .addOption(new Option('--older-than-ms <ms>', 'purge: only tasks finished at least this long ago').argParser(nonNegativeInt))
    .addHelpText(
      'after',
      `
requeue makes a claimed, dead or cancelled task pending again (attempts from 0;
a claim it had is lost); cancel ends a pending or claimed one; both exit 1 when
the task is in no state they apply to. verify exits 1 when it finds problems.
Writes wait up to 30 s for the writer, like any other handle's.`,
    )
    .action((db: string, verb: string, id: string | undefined, opts: QueueCliOptions) => done(queueCommandRun(db, verb, id, opts, io)));
}
