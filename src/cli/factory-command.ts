import type { Command } from 'commander';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { FleetClientError } from '../client/index.js';
import { CliError, wholeNumber } from './cli-error.js';
import { resolveDataDir } from './data-dir.js';
import type { CliIo } from './io.js';
import { processStopRequest, type StopRequest } from './serve-command.js';
import { resolveConnection } from './server-connection.js';
import { packageVersion } from './version.js';

interface FactoryCommandOptions {
  server?: string;
  token?: string;
  dataDir?: string;
  tenant?: string;
  name?: string;
  seats: string;
  capabilities?: string;
  workDir?: string;
  pollMs: string;
  portBase: string;
  portsPerSeat: string;
}

export interface FactoryCommandDeps {
  /** Listens for the request to stop; by default the first SIGINT or SIGTERM. */
  stopRequest(): StopRequest;
}

/** How long a graceful stop lets runs finish before stopping (and checkpointing) them. */
export const SHUTDOWN_DEADLINE_MS = 30_000;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

/** `fleet factory`: a daemon that claims jobs from a server and runs their agents here. */
export function registerFactoryCommand(
  program: Command,
  io: CliIo,
  deps: FactoryCommandDeps = { stopRequest: processStopRequest },
): void {
  program
    .command('factory')
    .description(
      'run a factory: claim jobs from the server and run their agents on this machine, until SIGINT or SIGTERM',
    )
    .option(
      '--server <url>',
      'Fleet server (default: $FLEET_SERVER, the credential file, or http://127.0.0.1:7070)',
    )
    .option('--token <token>', 'factory token (default: $FLEET_TOKEN or the credential file)')
    .option('--data-dir <dir>', 'where to find the credential file (default: $FLEET_DATA_DIR)')
    .option('--tenant <tenant>', 'the tenant to serve with an admin token')
    .option('--name <name>', 'this factory’s name (default: the host name)')
    .option('--seats <n>', 'how many jobs run at once', '1')
    .option('--capabilities <list>', 'comma-separated capabilities, e.g. linux,gpu')
    .option(
      '--work-dir <dir>',
      'worktrees, scratch dirs and the event spool (default: <data dir>/factory)',
    )
    .option('--poll-ms <ms>', 'claim at least this often, in milliseconds', '2000')
    .option(
      '--port-base <port>',
      'first port of seat 0; each run gets FLEET_PORT (its seat’s first port) and FLEET_PORT_COUNT',
      '41000',
    )
    .option('--ports-per-seat <n>', 'ports each seat gets, from FLEET_PORT on', '10')
    .action(async (options: FactoryCommandOptions) => {
      await runFactory(options, io, deps);
    });
}

async function runFactory(
  options: FactoryCommandOptions,
  io: CliIo,
  deps: FactoryCommandDeps,
): Promise<void> {
  const seats = wholeNumber('--seats', options.seats, 1, 10_000);
  const pollMs = wholeNumber('--poll-ms', options.pollMs, 50, 3_600_000);
  const portBase = wholeNumber('--port-base', options.portBase, 1024, 65_535);
  const portsPerSeat = wholeNumber('--ports-per-seat', options.portsPerSeat, 1, 1_000);
  if (portBase + seats * portsPerSeat - 1 > 65_535)
    throw new CliError(
      `--port-base ${portBase} with ${seats} seats × ${portsPerSeat} ports runs past port 65535; lower --port-base or --ports-per-seat`,
    );
  const dataDir = resolveDataDir(options.dataDir, io);
  const { server, token } = resolveConnection(
    { ...options, dataDir },
    io,
    ' (a factory token: fleet token create --role factory)',
  );
  const name = options.name ?? hostname();
  const capabilities = (options.capabilities ?? '')
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  const workDir =
    options.workDir === undefined ? join(dataDir, 'factory') : resolve(io.cwd, options.workDir);
  const level = io.env.FLEET_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new CliError(`FLEET_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not "${level}"`);

  // Loaded here: the other commands do not need the daemon and its dependencies.
  const { createServerLogger } = await import('../server/logger.js');
  const { startFactory } = await import('../factory/daemon.js');
  const logger = createServerLogger({ write: io.err, level: level as LogLevel });

  const stopRequest = deps.stopRequest();
  let factory: Awaited<ReturnType<typeof startFactory>>;
  try {
    factory = await startFactory({
      server,
      token,
      ...(options.tenant === undefined ? {} : { tenant: options.tenant }),
      name,
      seats,
      capabilities,
      workDir,
      logger,
      pollMs,
      portBase,
      portsPerSeat,
      version: packageVersion(),
    });
  } catch (err) {
    stopRequest.dispose();
    if (err instanceof FleetClientError)
      throw new CliError(`cannot connect to ${server}: ${err.message}`, { cause: err });
    throw err;
  }
  // The local control socket (fleet.snapshot.v1 for `fleet top`, notify, drain, shutdown).
  const { startIpcServer } = await import('../factory/ipc/index.js');
  const ipc = await startIpcServer({
    path: factorySocketPath(dataDir, name),
    control: factory,
    logger,
  }).catch(async (err: unknown) => {
    await factory.shutdown(0);
    stopRequest.dispose();
    throw new CliError(`cannot open the factory's control socket: ${(err as Error).message}`);
  });
  // In this form: scripts and tests wait for this line.
  io.out(`factory ${name} connected to ${server} with ${seats} seats\n`);
  io.out(`control socket ${ipc.path}\n`);

  const signal = await stopRequest.requested;
  logger.info(
    { signal, deadlineMs: SHUTDOWN_DEADLINE_MS },
    'stop requested; draining and finishing runs',
  );
  await factory.shutdown(SHUTDOWN_DEADLINE_MS);
  await ipc.close();
}

/** Where a factory's control socket lives: one per factory name in the data directory. */
export function factorySocketPath(dataDir: string, name: string): string {
  return join(dataDir, `factory-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.sock`);
}
