import { Command } from 'commander';
import { registerFactoriesCommand } from './factories-command.js';
import { registerFactoryCommand } from './factory-command.js';
import type { CliIo } from './io.js';
import { registerJobCommands } from './job-commands.js';
import { registerEnginesCommands } from './engines-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerStoreCommands } from './store-commands.js';
import { registerScheduleCommands } from './schedule-commands.js';
import { registerTokenCommands } from './token-commands.js';
import { registerUpCommand } from './up-command.js';
import { registerRunCommand } from './run-command.js';
import { registerSubmitCommand } from './submit-command.js';
import { registerPlanCommands } from './plan-commands.js';
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
  // In the order `fleet --help` lists them: the everyday verbs first.
  registerRunCommand(program, io);
  registerUpCommand(program, io);
  registerSubmitCommand(program, io);
  registerJobCommands(program, io);
  registerPlanCommands(program, io);
  registerScheduleCommands(program, io);
  registerFactoriesCommand(program, io);
  registerFactoryCommand(program, io);
  registerServeCommand(program, io);
  registerTokenCommands(program, io);
  registerEnginesCommands(program, io);
  registerStoreCommands(program, io);
  return program;
}
