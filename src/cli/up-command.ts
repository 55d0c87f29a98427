import type { Command } from 'commander';
import { hostname } from 'node:os';
import { FleetClient } from '../client/index.js';
import { credentialsPath, readCredentials } from '../server/credentials.js';
import { formatChildLine } from '../supervisor/child-output.js';
import { describeEvent } from '../supervisor/events.js';
import { type ChildSpec, ChildStartError, Supervisor } from '../supervisor/supervisor.js';
import { CliError, wholeNumber } from './cli-error.js';
import { resolveDataDir } from './data-dir.js';
import { SHUTDOWN_DEADLINE_MS } from './factory-command.js';
import type { CliIo } from './io.js';
import { factoryToken } from './up-factory-token.js';

interface UpOptions {
  dataDir?: string;
  db?: string;
  host: string;
  port: string;
  name?: string;
  seats: string;
  capabilities?: string;
}

/** What `fleet up` needs of its process; tests can run it without touching the real one. */
export interface UpDeps {
  /** The command that runs this CLI again: the Node binary, its flags and the entry script. */
  self: { command: string; args: readonly string[] };
  /** Calls `listener` with every SIGINT and SIGTERM until the returned function is called. */
  onSignal(listener: (signal: NodeJS.Signals) => void): () => void;
  /** Ends the process at once: a forced stop. */
  exit(code: number): void;
}

/** The real process: its own command line, its signals, `process.exit`. */
export function processUpDeps(): UpDeps {
  return {
    self: { command: process.execPath, args: [...process.execArgv, process.argv[1] ?? ''] },
    onSignal: (listener) => {
      process.on('SIGINT', listener);
      process.on('SIGTERM', listener);
      return () => {
        process.off('SIGINT', listener);
        process.off('SIGTERM', listener);
      };
    },
    exit: (code) => process.exit(code),
  };
}

/** How long the server gets to finish its requests on stop (it drains for 5 s). */
const SERVER_STOP_GRACE_MS = 15_000;
/** The factory lets runs finish for SHUTDOWN_DEADLINE_MS, then checkpoints and reports them. */
const FACTORY_STOP_GRACE_MS = SHUTDOWN_DEADLINE_MS + 15_000;
const EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/** `fleet up`: the server and a local factory on this machine, supervised as one service. */
export function registerUpCommand(
  program: Command,
  io: CliIo,
  deps: () => UpDeps = processUpDeps,
): void {
  program
    .command('up')
    .description(
      'run Fleet on this machine: the server and a local factory, restarted if they crash, until SIGINT or SIGTERM',
    )
    .option(
      '--data-dir <dir>',
      'data directory (default: $FLEET_DATA_DIR or the platform data dir); holds credentials.json',
    )
    .option('--db <path|url>', 'SQLite file or postgres:// URL (default: <data dir>/fleet.db)')
    .option('--host <host>', 'address the server listens on', '127.0.0.1')
    .option('--port <port>', 'port the server listens on; 0 picks a free one', '7070')
    .option('--name <name>', 'the factory’s name (default: the host name)')
    .option('--seats <n>', 'how many jobs the factory runs at once', '4')
    .option('--capabilities <list>', 'the factory’s capabilities, comma-separated, e.g. linux,gpu')
    .action(async (options: UpOptions) => {
      await up(options, io, deps());
    });
}

async function up(options: UpOptions, io: CliIo, deps: UpDeps): Promise<void> {
  const port = wholeNumber('--port', options.port, 0, 65_535);
  const seats = wholeNumber('--seats', options.seats, 1, 10_000);
  const dataDir = resolveDataDir(options.dataDir, io);
  const name = options.name ?? hostname();
  const log = (line: string) => io.err(`fleet up: ${line}\n`);
  const supervisor = new Supervisor({
    onEvent: (event) => log(describeEvent(event)),
    onOutput: (child, _stream, line) => io.err(`${formatChildLine(child, line)}\n`),
  });
  const stop = stopOnSignals(supervisor, log, deps);

  const starting = startServices(supervisor, { ...options, port, seats, dataDir, name }, deps, io);
  // A stop request during the start ends it: what fails after that is no longer news.
  starting.catch(() => {});
  try {
    const started = await Promise.race([starting, stop.requested.then(() => null)]);
    if (started !== null)
      io.out(
        `Fleet is up: ${started.url} (API: /openapi.json) · credential: ${credentialsPath(dataDir)} · ` +
          `factory ${name} with ${seats} seat${seats === 1 ? '' : 's'} · stop with Ctrl-C\n`,
      );
    await stop.requested;
  } catch (err) {
    await supervisor.stop();
    stop.dispose();
    throw startError(err);
  }
  await supervisor.stop();
  stop.dispose();
  log('stopped');
}

interface Settings {
  dataDir: string;
  db?: string;
  host: string;
  port: number;
  name: string;
  seats: number;
  capabilities?: string;
}

/** Starts the server, waits until it answers, then starts the factory with a factory token. */
async function startServices(
  supervisor: Supervisor,
  settings: Settings,
  deps: UpDeps,
  io: CliIo,
): Promise<{ url: string }> {
  const { dataDir } = settings;
  const env = { ...io.env, FLEET_SUPERVISED: '1' };
  // With --port 0 the first start picks a port; restarts keep it, so the factory finds them.
  let port = settings.port;
  let admin: FleetClient | undefined;
  const server: ChildSpec = {
    name: 'server',
    command: deps.self.command,
    args: () => [
      ...deps.self.args,
      'serve',
      '--data-dir',
      dataDir,
      '--host',
      settings.host,
      '--port',
      String(port),
      ...(settings.db === undefined ? [] : ['--db', settings.db]),
    ],
    env,
    cwd: io.cwd,
    parentChannel: true,
    stopGraceMs: SERVER_STOP_GRACE_MS,
    ready: async (child) => {
      const [, listening] = await child.waitForLine(/^listening on (\S+)$/, 'stdout');
      port = Number(new URL(listening!).port);
      const saved = readCredentials(credentialsPath(dataDir));
      if (saved === null) throw new Error(`${credentialsPath(dataDir)} was not written`);
      admin = new FleetClient({ baseUrl: saved.server, token: saved.token });
      await admin.health();
    },
  };
  await supervisor.start(server);

  const token = await factoryToken(dataDir, admin!);
  await supervisor.start({
    name: 'factory',
    command: deps.self.command,
    args: [
      ...deps.self.args,
      'factory',
      '--server',
      admin!.baseUrl,
      '--data-dir',
      dataDir,
      '--name',
      settings.name,
      '--seats',
      String(settings.seats),
      ...(settings.capabilities === undefined ? [] : ['--capabilities', settings.capabilities]),
    ],
    // In the environment, not the arguments: other users can read a command line.
    env: { ...env, FLEET_TOKEN: token },
    cwd: io.cwd,
    parentChannel: true,
    stopGraceMs: FACTORY_STOP_GRACE_MS,
    ready: async (child) => {
      await child.waitForLine(/^factory .+ connected to /, 'stdout');
    },
  });
  return { url: admin!.baseUrl };
}

/**
 * The first SIGINT or SIGTERM asks for an orderly stop; a second one kills the children and
 * exits at once with 128 + the signal's number.
 */
function stopOnSignals(
  supervisor: Supervisor,
  log: (line: string) => void,
  deps: UpDeps,
): { requested: Promise<NodeJS.Signals>; dispose: () => void } {
  let first: NodeJS.Signals | null = null;
  let dispose = () => {};
  const requested = new Promise<NodeJS.Signals>((resolve) => {
    dispose = deps.onSignal((signal) => {
      if (first === null) {
        first = signal;
        log(`${signal}: stopping the factory, then the server (press Ctrl-C again to force)`);
        resolve(signal);
        return;
      }
      log(`${signal} again: killing the factory and the server`);
      void supervisor.kill().finally(() => deps.exit(EXIT_CODES[signal] ?? 1));
    });
  });
  return { requested, dispose };
}

/** A start failure in words: the child's own `error:` line when it printed one. */
function startError(err: unknown): unknown {
  if (!(err instanceof ChildStartError)) return err;
  const said = err.output
    .filter((line) => line.startsWith('error: '))
    .map((line) => line.slice('error: '.length));
  const why = said.length > 0 ? said.join('; ') : `${err.message} — see its output above`;
  return new CliError(`the ${err.child} did not start: ${why}`, { cause: err });
}
