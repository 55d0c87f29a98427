import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import { toErrorResponse } from './api-errors.js';
import { authenticate } from './auth.js';
import { EventHub } from './event-hub.js';
import { ROUTES } from './routes/index.js';

export interface ServerOptions {
  store: Store;
  /** A pino logger; default: no request logging (tests). */
  logger?: Logger;
  /** Wake-ups for live streams; pass one to share it with other parts of the process. */
  hub?: EventHub;
  version?: string;
}

/** What every route plugin receives. */
export interface ServerContext {
  store: Store;
  hub: EventHub;
  version: string;
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
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  const context: ServerContext = {
    store: options.store,
    hub: options.hub ?? new EventHub(),
    version: options.version ?? '0.0.0',
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

  for (const register of ROUTES) await register(app, context);
  return app;
}
