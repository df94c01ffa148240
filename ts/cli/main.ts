#!/usr/bin/env node
// Entry point of the `northstar` command (package.json "bin"): runs the tool
// on this process's arguments; program.ts has the commands.
//
// The developer tools (`northstar bench`) come from ./bench.js, which exists
// in a clone of the repository but not in the published package (its
// "files" leave out dist/bench/ and dist/cli/bench.*): there the command is
// absent. When the file is there, a failure to load it is a real error.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCliAsync, type CommandFactory } from './program.js';

async function developerCommands(): Promise<CommandFactory[]> {
  const bench = new URL('./bench.js', import.meta.url);
  if (!existsSync(fileURLToPath(bench))) return [];
  const { benchCommand } = (await import(bench.href)) as typeof import('./bench.js');
  return [benchCommand];
}

const more = await developerCommands();

// Output is gathered into large writes: a dump of millions of pairs is then
// not millions of write calls.
let pending = '';
const flush = (): void => {
  if (pending.length > 0) process.stdout.write(pending);
  pending = '';
};
// A reader that goes away (`northstar dump db | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  process.stderr.write(`northstar: stdout: ${err.message}\n`);
  process.exit(1);
});

// A command that runs on (replicate, replica) prints a line now and then: it
// goes out within 50 ms.
let timer: NodeJS.Timeout | null = null;
process.exitCode = await runCliAsync(
  process.argv.slice(2),
  {
    out(line) {
      pending += line + '\n';
      if (pending.length >= 64 * 1024) flush();
      else
        timer ??= setTimeout(() => {
          timer = null;
          flush();
        }, 50).unref();
    },
    err(line) {
      flush();
      process.stderr.write(line + '\n');
    },
  },
  more,
);
flush();
