import { z } from 'zod';

export * from '../core/api-bodies.js';

/** An OpenAPI 3 document: its top-level fields checked, everything else passed through. */
export const OpenApiResponse = z.looseObject({
  openapi: z.string().startsWith('3.'),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
});
export type OpenApiDocument = z.infer<typeof OpenApiResponse>;
