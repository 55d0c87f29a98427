import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { ServerContext } from '../server-context.js';

/** `GET /healthz`: up, and the store answers. No token needed. */
export async function healthRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/healthz',
    {
      schema: {
        response: {
          200: z.object({ ok: z.literal(true), version: z.string(), store: z.string() }),
        },
      },
    },
    async () => {
      await ctx.store.countJobs('__healthz__');
      return { ok: true as const, version: ctx.version, store: ctx.store.dialect };
    },
  );
}
