import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerFactory,
} from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import { toErrorResponse } from './api-errors.js';
import { authenticate } from './auth.js';
import { EventHub } from './event-hub.js';
import { FactoryRegistry } from './factory/factory-registry.js';
import { instrumentStore } from './instrument-store.js';
import { createMetrics, type FleetMetrics } from './metrics.js';
import { ROUTES } from './routes/index.js';
import type { ServerContext } from './server-context.js';

export type { ServerContext } from './server-context.js';

export interface ServerOptions {
  store: Store;
  /** A pino logger; default: no request logging (tests). */
  logger?: Logger;
  /** Wake-ups for live streams; pass one to share it with other parts of the process. */
  hub?: EventHub;
  version?: string;
  /**
   * Prometheus metrics (`GET /metrics`); default: a registry of this server's own. Pass one to
   * feed it from elsewhere too (e.g. a store wrapped with `instrumentStore` by the caller).
   */
  metrics?: FleetMetrics;
  /** Lease time to live for factory claims and heartbeats; default 30 s. */
  leaseTtlMs?: number;
  /** Milliseconds since the epoch; default `Date.now`. */
  clock?: () => number;
  /**
   * Makes the HTTP(S) server the app runs on (Fastify's serverFactory), for callers that
   * listen themselves; WebSocket upgrades are served on it too.
   */
  serverFactory?: (
    route: (req: IncomingMessage, res: ServerResponse) => void,
  ) => HttpServer | HttpsServer;
}

/**
 * Builds the control plane's HTTP app (not listening): zod-validated routes, bearer-token
 * auth, one error mapping, request ids on every response and log line.
 *
 * @example
 * const app = await buildServer({ store });
 * await app.listen({ host: '127.0.0.1', port: 7070 });
 */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  // Typed with Fastify's base logger so route modules need not know which logger it is.
  const loggerInstance: FastifyBaseLogger | undefined = options.logger;
  const app = Fastify({
    ...(loggerInstance === undefined ? { logger: false } : { loggerInstance }),
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    bodyLimit: 8 * 1024 * 1024,
    // An https.Server is an http.Server as far as Fastify's routing is concerned.
    ...(options.serverFactory === undefined
      ? {}
      : { serverFactory: options.serverFactory as FastifyServerFactory<HttpServer> }),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  const metrics = options.metrics ?? createMetrics(options.store);
  const context: ServerContext = {
    store: instrumentStore(options.store, metrics),
    hub: options.hub ?? new EventHub(),
    version: options.version ?? '0.0.0',
    metrics,
    leaseTtlMs: options.leaseTtlMs ?? 30_000,
    clock: options.clock ?? Date.now,
    factories: new FactoryRegistry(),
  };

  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    request.principal = await authenticate(options.store, request);
  });

  app.setErrorHandler((err, request, reply) => {
    const { status, body } = toErrorResponse(err);
    if (status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code: body.error.code, status }, 'request refused');
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({
      error: {
        code: 'not_found',
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
      },
    });
  });

  // Before the routes: it collects them as they are added (onRoute).
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Fleet',
        description: 'A durable queue and control plane for fleets of AI coding agents',
        version: context.version,
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  // Large event batches from factories: up to the HTTP body limit.
  await app.register(websocket, { options: { maxPayload: 8 * 1024 * 1024 } });
  for (const register of ROUTES) await register(app, context);
  return app;
}
