import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../core/duration.js';
import { InvalidInputError } from '../core/index.js';
import type { RunningServer } from '../server/run-server.js';
import { CliError } from './cli-error.js';
import { explainOpenError } from './explain-open-error.js';
import type { CliIo } from './io.js';
import { storeTarget, type StoreOptionValues } from './store-target.js';
import { packageVersion } from './version.js';

interface ServeOptions extends StoreOptionValues {
  host: string;
  port: string;
  leaseTtl: string;
  tlsCert?: string;
  tlsKey?: string;
  insecure?: boolean;
}

/** A pending stop request: resolves with what asked for it (a signal name). */
export interface StopRequest {
  requested: Promise<string>;
  /** Stops listening for the request (the server failed to start). */
  dispose(): void;
}

export interface ServeDeps {
  /** Listens for the request to stop; by default the first SIGINT or SIGTERM. */
  stopRequest(): StopRequest;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The first SIGINT or SIGTERM. The handlers go away when it arrives, so a second Ctrl-C kills
 * the process at once should the graceful stop hang.
 */
export function processStopRequest(): StopRequest {
  let dispose = () => {};
  const requested = new Promise<string>((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      dispose();
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
    dispose = () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    };
  });
  return { requested, dispose };
}

/** `fleet serve`: the control plane's HTTP API on one store. */
export function registerServeCommand(
  program: Command,
  io: CliIo,
  deps: ServeDeps = { stopRequest: processStopRequest },
): void {
  program
    .command('serve')
    .description('run the control plane: the HTTP API, on the store, until SIGINT or SIGTERM')
    .option('--db <path|url>', 'SQLite file or postgres:// URL (default: <data dir>/fleet.db)')
    .option(
      '--data-dir <dir>',
      'data directory (default: $FLEET_DATA_DIR or the platform data dir); holds credentials.json',
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on; 0 picks a free one', '7070')
    .option('--lease-ttl <duration>', 'how long a claim lasts without renewal, e.g. 30s, 2m', '30s')
    .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--insecure', 'allow plain HTTP on a non-loopback --host (TLS ends at a proxy)')
    .action(async (options: ServeOptions) => {
      await serve(options, io, deps);
    });
}

async function serve(options: ServeOptions, io: CliIo, deps: ServeDeps): Promise<void> {
  const port = parsePort(options.port);
  const leaseTtlMs = parseLeaseTtl(options.leaseTtl);
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined))
    throw new CliError('--tls-cert and --tls-key go together — pass both, or neither');
  const target = storeTarget(options, io);
  const level = io.env.FLEET_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    throw new CliError(`FLEET_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not "${level}"`);

  // Loaded here: the other commands do not need the server and its dependencies.
  const { createServerLogger } = await import('../server/logger.js');
  const { ServerStartError, startServer } = await import('../server/run-server.js');
  const logger = createServerLogger({ write: io.err, level: level as LogLevel });

  const stopRequest = deps.stopRequest();
  let running: RunningServer;
  try {
    running = await startServer({
      ...(options.db === undefined ? {} : { db: target.db }),
      dataDir: target.dataDir,
      host: options.host,
      port,
      leaseTtlMs,
      ...(options.tlsCert === undefined || options.tlsKey === undefined
        ? {}
        : { tls: { certFile: options.tlsCert, keyFile: options.tlsKey } }),
      insecure: options.insecure === true,
      logger,
      version: packageVersion(),
    });
  } catch (err) {
    stopRequest.dispose();
    if (err instanceof ServerStartError) {
      const message = err.reason === 'store' ? explainOpenError(target, err.cause) : err.message;
      throw new CliError(message, { cause: err });
    }
    throw err;
  }

  const { credentials } = running;
  io.out(
    `${target.dialect} store at ${target.location}; lease TTL ${formatDuration(leaseTtlMs)}\n` +
      `admin credentials in ${credentials.path}` +
      (credentials.created ? ' (new admin token)\n' : '\n') +
      // Last, and in this form: scripts and tests wait for this line.
      `listening on ${running.url}\n`,
  );

  const signal = await stopRequest.requested;
  logger.info({ signal }, 'stop requested; finishing in-flight requests');
  await running.stop();
}

function parsePort(text: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(port) || port > 65_535)
    throw new CliError(`--port must be a whole number from 0 to 65535, not "${text}"`);
  return port;
}

function parseLeaseTtl(text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    if (err instanceof InvalidInputError)
      throw new CliError(`--lease-ttl: ${err.issues.map((i) => i.message).join('; ')}`);
    throw err;
  }
  if (ms < 1_000)
    throw new CliError(
      `--lease-ttl must be at least 1s (got ${text}): a factory renews its leases well before they expire`,
    );
  return ms;
}
