import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { isPostgresUrl } from '../store/db-url.js';
import type { Store } from '../store/index.js';
import { buildServer } from './build-server.js';
import { CredentialsFileError, ensureCredentials, type EnsuredCredentials } from './credentials.js';
import { EventHub } from './event-hub.js';
import { instrumentStore } from './instrument-store.js';
import { alwaysLeader, startPgLeadership, type Leadership } from './leader.js';
import { createMetrics } from './metrics.js';
import { newReplicaId, PgHubTransport } from './pg-hub-transport.js';
import { runPlanLoop } from './plans.js';
import { reaperIntervalMs, runReaperLoop } from './reaper-loop.js';
import { runSchedulerLoop } from './scheduler-loop.js';

export interface StartServerOptions {
  /** A `postgres://` URL or a SQLite file path; default: `<dataDir>/fleet.db`. */
  db?: string;
  /**
   * The PostgreSQL schema holding Fleet's tables, default `fleet`. Replicas on one schema act
   * as one server (shared wake-ups, one leader); tests use a schema each.
   */
  schema?: string;
  /** Holds the embedded database, the artifact blobs and `credentials.json`. */
  dataDir: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  leaseTtlMs: number;
  /** PEM files; with them the server speaks HTTPS. */
  tls?: { certFile: string; keyFile: string };
  /** Allow plain HTTP on a non-loopback address (TLS ends at a proxy in front). */
  insecure?: boolean;
  logger: Logger;
  version: string;
  /** How long in-flight requests get to finish on stop before their connections are cut. */
  shutdownGraceMs?: number;
  /** Milliseconds since the epoch for the store, routes and scheduler; default `Date.now`. */
  clock?: () => number;
  /** How often the leader looks for due schedules; default 1 s. */
  schedulerIntervalMs?: number;
  /** How often the leader moves plans on (phases, gates, approvals); default 250 ms. */
  planIntervalMs?: number;
}

export interface RunningServer {
  /** Where the server listens, e.g. `http://127.0.0.1:7070`. */
  url: string;
  port: number;
  credentials: EnsuredCredentials;
  /** Whether this replica leads (runs the reaper and the scheduler); always true on SQLite. */
  isLeader(): boolean;
  /**
   * Stops accepting connections, ends live event streams (clients resume from Last-Event-ID),
   * lets in-flight requests finish (for up to `shutdownGraceMs`, then cuts them), stops the
   * loops and closes the store. Calling it again returns the same promise.
   */
  stop(): Promise<void>;
}

/** Why the server did not start, in words for the person starting it. */
export class ServerStartError extends Error {
  readonly reason: 'exposed' | 'tls' | 'store' | 'listen' | 'credentials';

  constructor(reason: ServerStartError['reason'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ServerStartError';
    this.reason = reason;
  }
}

const DEFAULT_GRACE_MS = 5_000;

/**
 * Runs the control plane: opens the store, serves the HTTP API, keeps `credentials.json` and
 * reaps expired leases until {@link RunningServer.stop}. A failure to start closes whatever
 * was opened and throws a {@link ServerStartError} (or the unexpected error).
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { host, logger } = options;
  checkExposure(host, options.tls !== undefined, options.insecure === true);
  const tls = options.tls === undefined ? undefined : readTls(options.tls);
  const store = await openServerStore(options);
  try {
    return await serve(options, store, tls);
  } catch (err) {
    await store.close().catch((e: unknown) => logger.error({ err: e }, 'closing the store failed'));
    throw err;
  }
}

/**
 * Refuses plain HTTP beyond this machine: bearer tokens would cross the network in clear.
 * `--insecure` is for a proxy in front that terminates TLS.
 */
export function checkExposure(host: string, tls: boolean, insecure: boolean): void {
  if (tls || insecure || isLoopback(host)) return;
  throw new ServerStartError(
    'exposed',
    `refusing to serve plain HTTP on ${host}: bearer tokens would cross the network unencrypted — ` +
      `pass --tls-cert FILE --tls-key FILE, listen on 127.0.0.1, or add --insecure if a proxy in front terminates TLS`,
  );
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function readTls(files: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const read = (file: string, option: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ServerStartError(
        'tls',
        `cannot read ${option} ${file} (${(err as Error).message}) — it must be a readable PEM file`,
        { cause: err },
      );
    }
  };
  return { cert: read(files.certFile, '--tls-cert'), key: read(files.keyFile, '--tls-key') };
}

/** The PostgreSQL database and schema `--db` names, or null for the embedded store. */
function postgresTarget(
  options: StartServerOptions,
): { connectionString: string; schema: string } | null {
  if (!isPostgresUrl(options.db)) return null;
  return { connectionString: options.db, schema: options.schema ?? 'fleet' };
}

async function openServerStore(options: StartServerOptions): Promise<Store> {
  // Loaded on demand, as the CLI does: the database drivers are not needed before this.
  const { openStore } = await import('../store/index.js');
  try {
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    return await openStore({
      ...(options.db === undefined ? {} : { db: options.db }),
      ...(options.schema === undefined ? {} : { schema: options.schema }),
      dataDir: options.dataDir,
      leaseTtlMs: options.leaseTtlMs,
      logger: options.logger.child({ component: 'store' }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    });
  } catch (err) {
    throw new ServerStartError('store', (err as Error).message, { cause: err });
  }
}

async function serve(
  options: StartServerOptions,
  store: Store,
  tls: { cert: Buffer; key: Buffer } | undefined,
): Promise<RunningServer> {
  const { host, logger } = options;
  const hub = new EventHub();
  // One registry for the routes and the reaper: expired leases count in GET /metrics too.
  const metrics = createMetrics(store);
  const instrumented = instrumentStore(store, metrics);
  // Our own server (Fastify's serverFactory): it can speak TLS, and stop() drains it. Being
  // app.server, it also carries WebSocket upgrades (the factory protocol). app.close() then runs
  // as with app.listen(): preClose hooks (live event streams and factory sockets end), then this
  // hook waits until every connection is closed, then the route modules' onClose hooks
  // (registered earlier, so run later) release what requests use.
  let draining = false;
  let inFlight = 0;
  let server!: HttpServer | HttpsServer;
  const app = await buildServer({
    store: instrumented,
    logger,
    hub,
    metrics,
    version: options.version,
    leaseTtlMs: options.leaseTtlMs,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    serverFactory: (route) => {
      const handle = (req: IncomingMessage, res: ServerResponse) => {
        if (draining) res.setHeader('connection', 'close');
        inFlight++;
        res.once('close', () => inFlight--);
        route(req, res);
      };
      server = tls === undefined ? createHttpServer(handle) : createHttpsServer(tls, handle);
      return server;
    },
  });

  let drained: Promise<void> = Promise.resolve();
  app.addHook('onClose', async () => {
    await drained;
  });
  await app.ready();

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await app.close();
    throw listenError(host, options.port, err);
  }
  server.on('error', (err) => logger.error({ err }, 'server error'));

  const port = (server.address() as AddressInfo).port;
  const scheme = tls === undefined ? 'http' : 'https';
  const url = `${scheme}://${urlHost(host)}:${port}`;
  const reachableUrl = `${scheme}://${urlHost(isUnspecified(host) ? '127.0.0.1' : host)}:${port}`;

  let credentials: EnsuredCredentials;
  try {
    credentials = await ensureCredentials({
      dataDir: options.dataDir,
      store,
      serverUrl: reachableUrl,
      logger,
    });
  } catch (err) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await app.close();
    if (err instanceof CredentialsFileError)
      throw new ServerStartError('credentials', err.message, { cause: err });
    throw err;
  }

  // Replicas on one PostgreSQL schema share wake-ups and elect the one that runs the reaper.
  // Neither start throws: without PostgreSQL for a moment, followers poll and nobody reaps.
  const pgTarget = postgresTarget(options);
  const replica = newReplicaId();
  let leadership: Leadership = alwaysLeader();
  if (pgTarget !== null) {
    const coordination = logger.child({ component: 'replicas', replica });
    await hub.attach(new PgHubTransport({ ...pgTarget, replicaId: replica, logger: coordination }));
    leadership = await startPgLeadership({
      ...pgTarget,
      replicaId: replica,
      logger: coordination,
    });
  }

  const loops = new AbortController();
  const intervalMs = reaperIntervalMs(options.leaseTtlMs);
  const reaper = runReaperLoop({
    store: instrumented,
    hub,
    logger: logger.child({ component: 'reaper' }),
    intervalMs,
    signal: loops.signal,
    isLeader: () => leadership.isLeader,
  });
  const scheduler = runSchedulerLoop({
    store: instrumented,
    hub,
    logger: logger.child({ component: 'scheduler' }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.schedulerIntervalMs === undefined
      ? {}
      : { intervalMs: options.schedulerIntervalMs }),
    signal: loops.signal,
    isLeader: () => leadership.isLeader,
  });
  const planner = runPlanLoop({
    store: instrumented,
    hub,
    logger: logger.child({ component: 'plans' }),
    clock: options.clock ?? Date.now,
    intervalMs: options.planIntervalMs ?? 250,
    signal: loops.signal,
    isLeader: () => leadership.isLeader,
  });

  logger.info(
    {
      url,
      store: store.dialect,
      ...(pgTarget === null ? {} : { schema: pgTarget.schema, replica }),
      leader: leadership.isLeader,
      dataDir: options.dataDir,
      leaseTtlMs: options.leaseTtlMs,
      reapEveryMs: intervalMs,
    },
    'fleet server listening',
  );

  const graceMs = options.shutdownGraceMs ?? DEFAULT_GRACE_MS;
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      logger.info({ inFlight }, 'shutting down');
      draining = true;
      drained = new Promise<void>((resolve) => server.close(() => resolve()));
      // A keep-alive connection turns idle when its last response ends: close it then.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const deadline = setTimeout(() => {
        logger.warn({ inFlight }, 'grace period over; closing open connections');
        server.closeAllConnections();
      }, graceMs);
      try {
        await app.close();
      } catch (err) {
        logger.error({ err }, 'closing the app failed');
        await drained;
      } finally {
        clearInterval(sweep);
        clearTimeout(deadline);
      }
      loops.abort();
      await reaper;
      await scheduler;
      await planner;
      // Another replica takes the lead; this one stops hearing and telling them.
      await leadership.close();
      await hub
        .close()
        .catch((err: unknown) => logger.error({ err }, 'closing the hub transport failed'));
      await store
        .close()
        .catch((err: unknown) => logger.error({ err }, 'closing the store failed'));
      logger.info('stopped');
    })();
    return stopping;
  };

  return { url, port, credentials, isLeader: () => leadership.isLeader, stop };
}

function listenError(host: string, port: number, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const at = `${urlHost(host)}:${port}`;
  const why = (err as Error).message;
  if (code === 'EADDRINUSE')
    return new ServerStartError(
      'listen',
      `${at} is already in use (${why}) — stop the other server or pick another --port`,
      { cause: err },
    );
  if (code === 'EACCES')
    return new ServerStartError(
      'listen',
      `not allowed to listen on ${at} (${why}) — ports below 1024 need privileges; pick another --port`,
      { cause: err },
    );
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new ServerStartError(
      'listen',
      `cannot listen on ${host} (${why}) — --host must be an address of this machine`,
      { cause: err },
    );
  return err instanceof Error ? err : new Error(String(err));
}

function isUnspecified(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::' || host === '[::]';
}

function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}
