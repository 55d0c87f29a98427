import { FleetApiError, FleetClient, FleetClientError } from '../client/index.js';
import { credentialsPath, readCredentials } from '../server/credentials.js';
import { CliError } from './cli-error.js';
import { resolveDataDir } from './data-dir.js';
import type { CliIo } from './io.js';

export interface ConnectionOptions {
  server?: string;
  token?: string;
  dataDir?: string;
}

const DEFAULT_SERVER = 'http://127.0.0.1:7070';

/**
 * The client a command talks to the server with. The server and token come from the flags,
 * else `FLEET_SERVER` / `FLEET_TOKEN`, else the credential file `fleet serve` wrote in the data
 * directory.
 */
export function connect(options: ConnectionOptions, io: CliIo): FleetClient {
  const { server, token } = resolveConnection(options, io);
  return new FleetClient({ baseUrl: server, token });
}

/**
 * Server and token for a command: the flags, else `FLEET_SERVER` / `FLEET_TOKEN`, else the
 * credential file `fleet serve` wrote in the data directory. `tokenHint` says which token the
 * command needs when there is none.
 */
export function resolveConnection(
  options: ConnectionOptions,
  io: CliIo,
  tokenHint = '',
): { server: string; token: string } {
  const path = credentialsPath(resolveDataDir(options.dataDir, io));
  const needFile = options.token === undefined && io.env.FLEET_TOKEN === undefined;
  const saved =
    needFile || (options.server ?? io.env.FLEET_SERVER) === undefined
      ? readCredentials(path)
      : null;
  const server = options.server ?? io.env.FLEET_SERVER ?? saved?.server ?? DEFAULT_SERVER;
  const token = options.token ?? io.env.FLEET_TOKEN ?? saved?.token;
  if (token === undefined)
    throw new CliError(
      `no token: pass --token${tokenHint}, set FLEET_TOKEN, or start Fleet with fleet up (it writes ${path})`,
    );
  return { server, token };
}

/**
 * Runs a client call, turning its errors into one-line CLI errors: an unreachable server says
 * how to start one, a refused token how to pass another.
 */
export async function calling<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof FleetApiError && err.status === 401)
      throw new CliError(
        `the server refused the token (${err.message}) — pass --token or set FLEET_TOKEN`,
        { cause: err },
      );
    if (err instanceof FleetClientError) throw new CliError(err.message, { cause: err });
    throw err;
  }
}

/** Adds the connection flags every server-talking command shares. */
export function connectionFlags<C extends { option(flags: string, description: string): C }>(
  command: C,
): C {
  return command
    .option(
      '--server <url>',
      'Fleet server (default: $FLEET_SERVER, the credential file, or http://127.0.0.1:7070)',
    )
    .option('--token <token>', 'bearer token (default: $FLEET_TOKEN or the credential file)')
    .option(
      '--data-dir <dir>',
      'where to find the credential file (default: $FLEET_DATA_DIR or the platform data dir)',
    );
}
