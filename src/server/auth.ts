import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Token, TokenRole } from '../core/index.js';
import type { Store } from '../store/index.js';
import { ApiError, forbidden, unauthorized } from './api-errors.js';
import { hashSecret } from './token-secret.js';

/** Who is calling: the token's role and scope. */
export interface Principal {
  tokenId: string;
  role: TokenRole;
  /** Tenants the caller may act in; empty means every tenant (admin). */
  tenants: string[];
  jobId: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export const TENANT_HEADER = 'x-fleet-tenant';
const DEFAULT_TENANT = 'default';

/** Reads `Authorization: Bearer <secret>` and resolves it to a principal (null when absent). */
export async function authenticate(
  store: Store,
  request: FastifyRequest,
): Promise<Principal | null> {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) throw unauthorized('Authorization header must be "Bearer <token>"');
  const token = await store.findTokenByHash(hashSecret(match[1]!));
  if (token === null) throw unauthorized('token is unknown, revoked or expired');
  return toPrincipal(token);
}

function toPrincipal(token: Token): Principal {
  return { tokenId: token.id, role: token.role, tenants: token.tenants, jobId: token.jobId };
}

/** A route guard: the caller must be authenticated with one of `roles`. */
export function requireRole(...roles: TokenRole[]) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const p = request.principal;
    if (p === null) throw unauthorized('this endpoint needs a bearer token');
    if (!roles.includes(p.role))
      throw forbidden(
        `${article(p.role)} ${p.role} token cannot do this (needs ${roles.join(' or ')})`,
      );
  };
}

/**
 * The tenant a request acts in: named by the `x-fleet-tenant` header or `?tenant=`, else the
 * token's only tenant (admin tokens default to "default"). Naming a tenant the token does not
 * cover is a 403: it says nothing about any record in it.
 */
export function requestTenant(request: FastifyRequest): string {
  const p = request.principal;
  if (p === null) throw unauthorized('this endpoint needs a bearer token');
  const header = request.headers[TENANT_HEADER];
  const query = (request.query as { tenant?: unknown } | undefined)?.tenant;
  const named = typeof header === 'string' ? header : typeof query === 'string' ? query : undefined;
  if (named !== undefined) {
    if (p.tenants.length > 0 && !p.tenants.includes(named))
      throw forbidden(`this token cannot act in tenant "${named}"`);
    return named;
  }
  if (p.tenants.length === 0) return DEFAULT_TENANT;
  if (p.tenants.length === 1) return p.tenants[0]!;
  throw new ApiError(
    400,
    'tenant_required',
    `this token spans several tenants; name one with the ${TENANT_HEADER} header`,
  );
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}
