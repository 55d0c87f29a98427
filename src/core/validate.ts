import type { z } from 'zod';
import { InvalidInputError } from './errors.js';

/**
 * Parses `input` with `schema`, turning zod's issues into an {@link InvalidInputError} that names
 * each field path and what was expected.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidInputError(
    what,
    result.error.issues.map((issue) => ({
      path: issue.path.map(String).join('.'),
      message: issue.message,
    })),
  );
}
