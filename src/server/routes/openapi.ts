import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ServerContext } from '../server-context.js';

/** An OpenAPI 3 document: checked loosely, the generator is the authority on its shape. */
export const OpenApiDocument = z.looseObject({
  openapi: z.string(),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
});

/** `GET /openapi.json`: the OpenAPI 3 document of every route. No token needed. */
export async function openApiRoutes(app: FastifyInstance, _ctx: ServerContext): Promise<void> {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/openapi.json',
    {
      schema: {
        tags: ['meta'],
        summary: 'The OpenAPI 3 document of this API',
        security: [],
        response: { 200: OpenApiDocument },
      },
    },
    async () => OpenApiDocument.parse(app.swagger()),
  );
}
