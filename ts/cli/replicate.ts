// `northstar replicate <db>` and `northstar replica <db>` (spec/replication_v0.md):
// the primary's publisher and a replica, run from the command line until
// SIGINT or SIGTERM, printing their state every --every-ms. The publisher
// follows commits made by every other process writing the database.

import { Command, InvalidArgumentError } from 'commander';
import { open } from '../db/database.js';
import { openReplica } from '../replication/replica.js';
import { startReplication, type ReplicationMode } from '../replication/primary.js';
import { Exit, nonNegativeInt, type Io } from './common.js';

export interface ReplicationCliOptions {
  servers: string;
  stream: string;
  mode?: string;
  everyMs?: number;
  json?: boolean;
}

/** Resolves at SIGINT or SIGTERM. */
function stopped(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

const servers = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);

function mode(m: string | undefined): ReplicationMode {
  if (m === undefined || m === 'async' || m === 'quorum') return m ?? 'async';
  throw new InvalidArgumentError(`--mode must be async or quorum, got ${m}`);
}

/** Publishes `path`'s commits until stopped; prints its stats every everyMs. */
export async function replicate(path: string, o: ReplicationCliOptions, io: Io): Promise<number> {
  const db = open(path);
  try {
    const repl = await startReplication(db, { servers: servers(o.servers), stream: o.stream, mode: mode(o.mode) });
    io.out(o.json ? JSON.stringify({ event: 'started', db: path, stream: o.stream, ...repl.stats() }) : `replicating ${path} to stream ${o.stream} (${repl.mode}), from txn ${repl.stats().publishedTxn + 1}`);
    const print = (): void => {
      const s = repl.stats();
      io.out(o.json ? JSON.stringify(s) : `published txn ${s.publishedTxn} (sequence ${s.streamSeq}), pending ${s.pending}, ${s.state}${s.lastError ? `, last error: ${s.lastError}` : ''}`);
    };
    const timer = setInterval(print, o.everyMs ?? 5_000);
    await Promise.race([stopped(), deposedOf(repl)]);
    clearInterval(timer);
    const ended = repl.stats().state; // 'running' when stopped by a signal; 'deposed' otherwise
    print();
    await repl.close();
    return ended === 'running' ? Exit.Ok : Exit.Failed;
  } finally {
    db.close();
  }
}

/** Resolves when `repl` stops running (deposed; checked every 100 ms). */
function deposedOf(repl: { stats(): { state: string } }): Promise<void> {
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (repl.stats().state !== 'running') {
        clearInterval(t);
        resolve();
      }
    }, 100).unref();
  });
}

/** Follows the stream into `path` until stopped; prints its stats every everyMs. */
export async function replica(path: string, o: ReplicationCliOptions, io: Io): Promise<number> {
  const r = await openReplica(path, { servers: servers(o.servers), stream: o.stream });
  const print = (): void => {
    const s = r.stats();
    io.out(o.json ? JSON.stringify(s) : `applied txn ${s.appliedTxn} (sequence ${s.appliedSeq}), lag ${s.lag.txns} txns / ${s.lag.ms} ms, ${s.state}${s.lastError ? `, last error: ${s.lastError}` : ''}`);
  };
  io.out(o.json ? JSON.stringify({ event: 'started', db: path, stream: o.stream, ...r.stats() }) : `following stream ${o.stream} into ${path} from txn ${r.txnId + 1}`);
  const timer = setInterval(print, o.everyMs ?? 5_000);
  await stopped();
  clearInterval(timer);
  print();
  const failed = r.stats().state === 'stopped';
  await r.close();
  return failed ? Exit.Failed : Exit.Ok;
}

const common = (c: Command): Command =>
  c
    .requiredOption('--servers <urls>', 'NATS server URLs, comma-separated (nats://127.0.0.1:4222,...)')
    .requiredOption('--stream <name>', 'the JetStream stream')
    .option('--every-ms <ms>', 'print the state this often (default 5000)', nonNegativeInt)
    .option('--json', 'JSON lines');

export function replicateCommand(io: Io, done: (code: number | Promise<number>) => void): Command {
  return common(new Command('replicate').description("publish a database's commits to a NATS JetStream stream until stopped (spec/replication_v0.md)").argument('<db>', 'database file'))
    .option('--mode <mode>', "async (default) or quorum: with quorum, this process's own commits wait for the stream (other writers' are published as in async)")
    .action((db: string, opts: ReplicationCliOptions) => done(replicate(db, opts, io)));
}

export function replicaCommand(io: Io, done: (code: number | Promise<number>) => void): Command {
  return common(new Command('replica').description('follow a JetStream stream into a replica database until stopped (spec/replication_v0.md)').argument('<db>', 'replica database file (created if missing)')).action((db: string, opts: ReplicationCliOptions) =>
    done(replica(db, opts, io)),
  );
}
