import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { FactoryListResponse, FactoryResponse } from '../../core/index.js';
import { requestTenant, requireRole } from '../auth.js';
import { drainFactory } from '../factory/drain.js';
import type { ServerContext } from '../server-context.js';
import { ERROR_RESPONSES, IdParams, TenantQuery } from './common.js';

const errors = ERROR_RESPONSES;

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
    async (request) => ({
      factory: await drainFactory(store, requestTenant(request), request.params.id),
    }),
  );
}
