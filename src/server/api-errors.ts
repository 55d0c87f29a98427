import type { FastifyError } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { FleetError, type InputIssue, InvalidInputError } from '../core/index.js';

/** The body of every error response: a stable `code` a client can switch on. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Errors of the HTTP layer itself: authentication and authorization. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export const unauthorized = (message: string) => new ApiError(401, 'unauthorized', message);
export const forbidden = (message: string) => new ApiError(403, 'forbidden', message);

const STATUS: Record<FleetError['code'], number> = {
  invalid_input: 400,
  unknown_dependency: 400,
  dependency_cycle: 400,
  not_found: 404,
  stale_lease: 409,
  conflict: 409,
  illegal_transition: 409,
  internal: 500,
};

/**
 * The one mapping from anything thrown to a status and an error body. Request validation
 * failures become 400 `invalid_input` naming `body.field.path`s, like the store's own input
 * errors; domain errors keep their code; anything unexpected is a 500 that says nothing more.
 */
export function toErrorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = (err as FastifyError).validationContext ?? 'request';
    const issues: InputIssue[] = err.validation.flatMap((v) => {
      const base = [where, ...v.instancePath.split('/').filter((p) => p !== '')];
      const keys = (v.params as { keys?: string[] }).keys;
      if (v.keyword === 'unrecognized_keys' && keys !== undefined)
        return keys.map((k) => ({ path: [...base, k].join('.'), message: 'unknown field' }));
      return [{ path: base.join('.'), message: v.message ?? 'invalid' }];
    });
    return respond(400, new InvalidInputError(`request ${where}`, issues));
  }
  if (err instanceof FleetError) return respond(STATUS[err.code], err);
  if (err instanceof ApiError) return { status: err.status, body: body(err.code, err.message) };
  const fe = err as Partial<FastifyError>;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // Fastify's own client errors: malformed JSON, wrong content type, body too large.
    const code = fe.statusCode === 413 ? 'payload_too_large' : 'bad_request';
    return { status: fe.statusCode, body: body(code, fe.message ?? 'bad request') };
  }
  return { status: 500, body: body('internal', 'internal error; the server log has the details') };
}

function respond(status: number, err: FleetError): { status: number; body: ErrorBody } {
  const issues = err instanceof InvalidInputError ? err.issues : undefined;
  return { status, body: body(err.code, err.message, issues) };
}

function body(code: string, message: string, issues?: InputIssue[]): ErrorBody {
  return { error: issues === undefined ? { code, message } : { code, message, issues } };
}
