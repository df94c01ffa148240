// `northstar dump <db>`: the key/value pairs of the latest snapshot, or of a
// retained older one, in key order.

import { Command } from 'commander';
import { escapeBytes, Exit, jsonBytes, nonNegativeInt, withDatabase, type Io } from './common.js';

export interface DumpOptions {
  /** Snapshot of this commit (must be retained); default the latest. */
  txn?: number;
  /** Only keys starting with these UTF-8 bytes. */
  prefix?: string;
  json?: boolean;
}

/** Prints every pair of the snapshot; returns the exit code. */
export function dump(path: string, options: DumpOptions, io: Io): number {
  return withDatabase(path, (db) => {
    const txn = db.beginRead(options.txn === undefined ? {} : { txnId: options.txn });
    try {
      for (const [key, value] of txn.scan(options.prefix === undefined ? {} : { prefix: options.prefix })) {
        if (options.json) io.out(JSON.stringify({ ...jsonBytes('key', key), ...jsonBytes('value', value) }));
        else io.out(`${escapeBytes(key)}\t${escapeBytes(value)}`);
      }
    } finally {
      txn.close();
    }
    return Exit.Ok;
  });
}

export function dumpCommand(io: Io, done: (code: number) => void): Command {
  return new Command('dump')
    .description('print the key/value pairs of the latest snapshot, or of commit --txn')
    .argument('<db>', 'database file')
    .option('--txn <id>', 'snapshot of this commit (must be within the retained history)', nonNegativeInt)
    .option('--prefix <prefix>', 'only keys that start with this text (as UTF-8 bytes)')
    .option('--json', 'one JSON object per pair')
    .addHelpText(
      'after',
      `
Text output: one line per pair, key<TAB>value. Bytes are escaped so that every
pair is one line and nothing is lost: printable ASCII stays as is, backslash,
tab, newline and carriage return become \\\\ \\t \\n \\r, and every other byte
(UTF-8 beyond ASCII included) becomes \\xHH.

--json: one object per pair, {"key": ..., "value": ...} with each field as
text when its bytes are valid UTF-8, else as "keyBase64" / "valueBase64"
(standard base64). A reader takes key ?? base64(keyBase64).

Opening recovers after a crash (it may write); do not run it while another
process has the database open.`,
    )
    .action((db: string, opts: DumpOptions) => done(dump(db, opts, io)));
}
