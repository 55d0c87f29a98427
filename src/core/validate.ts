import type { z } from 'zod';
import { InvalidInputError, type InputIssue } from './errors.js';

/**
 * Parses `input` with `schema`, turning zod's issues into an {@link InvalidInputError} that names
 * each field path and what was expected.
 */
export function parseInput<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what: string,
): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new InvalidInputError(what, result.error.issues.flatMap(toInputIssues));
}

function toInputIssues(issue: z.core.$ZodIssue): InputIssue[] {
  const path = issue.path.map(String);
  // zod reports unknown keys of a strict object once, at the object's path; name each key's own
  // path instead, so every issue points at the offending field.
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: [...path, key].join('.'), message: 'unknown field' }));
  }
  return [{ path: path.join('.'), message: issue.message }];
}
