import { CommanderError } from 'commander';
import { inspect } from 'node:util';
import { CliError } from './cli-error.js';
import { errorText } from './error-text.js';
import type { CliIo } from './io.js';
import { createProgram } from './program.js';

/** Runs one `fleet` invocation (`argv` as in `process.argv`) and returns its exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    await createProgram(io).parseAsync([...argv], { from: 'node' });
    return 0;
  } catch (err) {
    return report(err, io);
  }
}

function report(err: unknown, io: CliIo): number {
  // Commander has already printed its message (or the help / version it was asked for).
  // A command line it could not parse is a usage error: exit code 2, as in most CLIs.
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  const debug = io.env.FLEET_DEBUG === '1';
  if (err instanceof CliError) {
    io.err(`error: ${err.message}\n`);
  } else {
    const hint = debug ? '' : ' (set FLEET_DEBUG=1 for the stack trace)';
    io.err(`error: ${errorText(err)}${hint}\n`);
  }
  if (debug) io.err(`${inspect(err, { depth: 6 })}\n`);
  return 1;
}
