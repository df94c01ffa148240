// `northstar replay <db>`: rebuilds the key/value state from the commit log
// alone (ts/log/replay.ts), without opening the data file.

import { Command } from 'commander';
import { explain, replay as replayLog } from '../log/replay.js';
import { dbPaths, escapeBytes, Exit, jsonBytes, nonNegativeInt, requireFile, type Io } from './common.js';

export interface ReplayCliOptions {
  /** Stop after this commit. */
  to?: number;
  hash?: boolean;
  explain?: boolean;
  json?: boolean;
}

/** Replays the log and prints the result (or every op with --explain); returns the exit code. */
export function replay(path: string, options: ReplayCliOptions, io: Io): number {
  const { log } = dbPaths(path);
  requireFile(log, 'commit log');
  const to = options.to === undefined ? {} : { toTxnId: options.to };
  if (options.explain) {
    for (const s of explain(log, to)) {
      if (options.json) io.out(JSON.stringify({ txnId: s.txnId, op: s.op, ...jsonBytes('key', s.key), ...(s.op === 'put' ? jsonBytes('value', s.value) : {}), stateHash: s.stateHash }));
      else io.out(`${s.txnId}\t${s.op}\t${escapeBytes(s.key)}\t${s.op === 'put' ? escapeBytes(s.value) : ''}\t${s.stateHash}`);
    }
    return Exit.Ok;
  }
  const r = replayLog(log, to);
  const result = { txnId: r.txnId, commits: r.commits, ops: r.ops, entries: r.state.size, ...(options.hash ? { stateHash: r.stateHash } : {}) };
  if (options.json) io.out(JSON.stringify(result));
  else {
    io.out(`txn       ${result.txnId}`);
    io.out(`commits   ${result.commits}`);
    io.out(`ops       ${result.ops}`);
    io.out(`entries   ${result.entries}`);
    if (options.hash) io.out(`hash      ${r.stateHash}`);
  }
  return Exit.Ok;
}

export function replayCommand(io: Io, done: (code: number) => void): Command {
  return new Command('replay')
    .description('rebuild the key/value state from the commit log alone and summarise it')
    .argument('<db>', 'database file, or its commit log (a path ending in .log)')
    .option('--to <txn>', 'stop after this commit', nonNegativeInt)
    .option('--hash', 'also print the state hash (equal to the hash of the snapshot at the same txn)')
    .option('--explain', 'print every applied op: txn, put|del, key, value, running state hash')
    .option('--json', 'one JSON object (with --explain: one per op)')
    .addHelpText(
      'after',
      `
Needs the log from txn 1 (fails after truncateLog). A torn tail is ignored;
a damaged record followed by valid ones fails. Never opens or writes the
data file. Keys and values are escaped as in dump (see northstar dump --help).`,
    )
    .action((db: string, opts: ReplayCliOptions) => done(replay(db, opts, io)));
}
