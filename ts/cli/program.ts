// The `northstar` command line: the subcommands put together, and the one
// place that turns a failure into `northstar: <message>` and an exit code.
// main.ts runs it on the process; tests run it in process with captured Io.

import * as fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { cartridgeCommand } from './cartridge.js';
import { CliError, errorLine, Exit, type Io } from './common.js';
import { dumpCommand } from './dump.js';
import { logdumpCommand } from './logdump.js';
import { queueCommand } from './queue.js';
import { replayCommand } from './replay.js';
import { replicaCommand, replicateCommand } from './replicate.js';
import { statsCommand } from './stats.js';
import { verifyCommand } from './verify.js';

function packageVersion(): string {
  try {
    // The same relative path from ts/cli/ and from dist/cli/.
    return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Makes one subcommand; `done` receives its exit code (a promise of it from a command that runs on: runCliAsync). */
export type CommandFactory = (io: Io, done: (code: number | Promise<number>) => void) => Command;

/**
 * Runs the tool on `args` (without node and script); returns the exit code:
 * 0 all well, 1 problems found or a failure, 2 a bad command line. Never
 * throws: every error becomes one line on io.err. NORTHSTAR_DEBUG=1 adds the
 * stack of unexpected errors. `more` adds subcommands: the developer tools
 * (`bench`), which the published package does not ship (main.ts adds them
 * when they are present).
 */
export function runCli(args: string[], io: Io, more: readonly CommandFactory[] = []): number {
  const code = run(args, io, more);
  if (typeof code === 'number') return code;
  io.err('northstar: this command runs until stopped: use runCliAsync');
  return Exit.Failed;
}

/**
 * runCli for every command, those that run until stopped (replicate,
 * replica) included: resolves to the exit code, never rejects.
 */
export async function runCliAsync(args: string[], io: Io, more: readonly CommandFactory[] = []): Promise<number> {
  const code = run(args, io, more);
  if (typeof code === 'number') return code;
  try {
    return await code;
  } catch (err) {
    io.err(errorLine(err));
    return Exit.Failed;
  }
}

function run(args: string[], io: Io, more: readonly CommandFactory[]): number | Promise<number> {
  let code: number | Promise<number> = Exit.Ok;
  const done = (c: number | Promise<number>): void => {
    code = c;
  };
  const program = new Command('northstar')
    .enablePositionalOptions()
    .description('inspect and check NorthstarDB databases and their task queues')
    .version(packageVersion(), '-V, --version');
  const commands = [logdumpCommand(io, done), verifyCommand(io, done), dumpCommand(io, done), replayCommand(io, done), statsCommand(io, done), queueCommand(io, done), cartridgeCommand(io, done), replicateCommand(io, done), replicaCommand(io, done), ...more.map((make) => make(io, done))];
  const output = {
    writeOut: (s: string) => emitLines(s, io.out),
    writeErr: (s: string) => emitLines(s, io.err),
    outputError: (s: string, write: (s: string) => void) => write(`northstar: ${s.replace(/^error: /, '').trim()}\n`),
  };
  program.configureOutput(output).exitOverride();
  // Nested subcommands (bench run, bench gate …) get the same output and exit handling.
  const configure = (c: Command): Command => {
    c.configureOutput(output).exitOverride();
    for (const sub of c.commands) configure(sub);
    return c;
  };
  for (const c of commands) program.addCommand(configure(c));
  program.addHelpText(
    'after',
    `
Exit status: 0 when all is well, 1 when a check finds problems or a file is
missing, damaged or will not open, 2 for a bad command line.`,
  );
  try {
    program.parse(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, help, --version exit 0; `northstar` alone (help on stderr) and bad usage exit 2.
      return err.exitCode === 0 ? Exit.Ok : Exit.Usage;
    }
    io.err(errorLine(err));
    if (!(err instanceof CliError) && process.env.NORTHSTAR_DEBUG === '1' && err instanceof Error && err.stack) io.err(err.stack);
    return Exit.Failed;
  }
  return code;
}

/** Commander writes text with newlines; Io takes lines. */
function emitLines(s: string, line: (l: string) => void): void {
  const lines = s.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const l of lines) line(l);
}
