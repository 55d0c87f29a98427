import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  ConflictError,
  NotFoundError,
  FactoryListResponse,
  FactoryResponse,
} from '../../core/index.js';
import { requestTenant, requireRole } from '../auth.js';
import type { ServerContext } from '../server-context.js';
import { ERROR_RESPONSES, IdParams, TenantQuery } from './common.js';

const errors = ERROR_RESPONSES;

/** Tries of the read-then-write drain before a busy factory's rev churn becomes a 409. */
const DRAIN_TRIES = 3;

/** `/v1/factories`: the hosts serving the caller's tenant, and draining one. */
export async function factoryRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store } = ctx;

  r.get(
    '/v1/factories',
    {
      preHandler: requireRole('admin', 'operator'),
      schema: {
        summary: 'List the factories of the caller tenant',
        querystring: TenantQuery,
        response: { 200: FactoryListResponse, ...errors },
      },
    },
    async (request) => ({ items: await store.listFactories(requestTenant(request)) }),
  );

  r.post(
    '/v1/factories/:id/drain',
    {
      preHandler: requireRole('admin', 'operator'),
      schema: {
        summary: 'Drain a factory: it finishes its running jobs and claims no more',
        params: IdParams,
        querystring: TenantQuery,
        response: { 200: FactoryResponse, ...errors },
      },
    },
    async (request) => {
      const tenant = requestTenant(request);
      const id = request.params.id;
      for (let attempt = 1; ; attempt++) {
        const factory = await store.getFactory(tenant, id);
        if (factory === null) throw new NotFoundError('factory', id);
        if (factory.status === 'draining') return { factory };
        try {
          return {
            factory: await store.updateFactory(tenant, id, factory.rev, { status: 'draining' }),
          };
        } catch (err) {
          // A heartbeat bumped the rev between the read and the write: read again.
          if (!(err instanceof ConflictError) || attempt >= DRAIN_TRIES) throw err;
        }
      }
    },
  );
}
