import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody } from '../api-errors.js';
import { requireRole } from '../auth.js';
import type { ServerContext } from '../server-context.js';

/** `GET /metrics`: Prometheus text exposition of this server's registry. Admin token. */
export async function metricsRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/metrics',
    {
      preHandler: requireRole('admin'),
      schema: {
        tags: ['meta'],
        summary: 'Prometheus metrics (text exposition format)',
        response: {
          200: {
            description: 'Prometheus text exposition format 0.0.4',
            content: { 'text/plain': { schema: z.string() } },
          },
          401: ErrorBody,
          403: ErrorBody,
        },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await ctx.metrics.scrape();
      return reply.type(contentType).send(body);
    },
  );
}
