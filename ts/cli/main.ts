#!/usr/bin/env node
// Entry point of the `northstar` command (package.json "bin"): runs the tool
// on this process's arguments; program.ts has the commands.

import { runCli } from './program.js';

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

process.exitCode = runCli(process.argv.slice(2), {
  out(line) {
    pending += line + '\n';
    if (pending.length >= 64 * 1024) flush();
  },
  err(line) {
    flush();
    process.stderr.write(line + '\n');
  },
});
flush();
