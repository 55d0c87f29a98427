import { Command } from 'commander';
import { registerFactoryCommand } from './factory-command.js';
import type { CliIo } from './io.js';
import { registerEnginesCommands } from './engines-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerStoreCommands } from './store-commands.js';
import { registerTokenCommands } from './token-commands.js';
import { packageVersion } from './version.js';

/** The `fleet` command tree. Parse errors throw CommanderError instead of exiting. */
export function createProgram(io: CliIo): Command {
  // Settings made before `.command()` are inherited by every subcommand.
  const program = new Command('fleet')
    .description('A durable queue and control plane for fleets of AI coding agents')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text) })
    .showHelpAfterError('(add --help for usage)');
  registerStoreCommands(program, io);
  registerServeCommand(program, io);
  registerTokenCommands(program, io);
  registerFactoryCommand(program, io);
  registerEnginesCommands(program, io);
  return program;
}
