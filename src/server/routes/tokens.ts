import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Tenant, Token, TokenSpec, CreatedTokenResponse } from '../../core/index.js';
import { ErrorBody } from '../api-errors.js';
import { requireRole } from '../auth.js';
import type { ServerContext } from '../server-context.js';
import { IdParams } from './common.js';
import { newTokenSecret } from '../token-secret.js';

/** Admin tokens see every tenant's tokens; `?tenant=` narrows the list to one. */
const ListTokensQuery = z.object({ tenant: Tenant.optional() }).strict();
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** `/v1/tokens`: minting, listing and revoking bearer tokens (admin only). */
export async function tokenRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store } = ctx;

  r.post(
    '/v1/tokens',
    {
      preHandler: requireRole('admin'),
      schema: {
        summary: 'Mint a token; the response carries its secret, shown this once',
        body: TokenSpec,
        response: { 201: CreatedTokenResponse, ...errors },
      },
    },
    async (request, reply) => {
      const spec = request.body;
      const secret = newTokenSecret(spec.role);
      const token = await store.createToken(spec.tenants[0] ?? 'system', spec, secret);
      request.log.info({ tokenId: token.id, role: token.role }, 'token minted');
      return reply.status(201).send({ token, secret: secret.secret });
    },
  );

  r.get(
    '/v1/tokens',
    {
      preHandler: requireRole('admin'),
      schema: {
        summary: 'List tokens (never their secrets)',
        querystring: ListTokensQuery,
        response: { 200: z.object({ items: z.array(Token) }), ...errors },
      },
    },
    async (request) => ({ items: await store.listTokens(request.query.tenant) }),
  );

  r.post(
    '/v1/tokens/:id/revoke',
    {
      preHandler: requireRole('admin'),
      schema: {
        summary: 'Revoke a token: requests bearing it are refused from now on',
        params: IdParams,
        response: { 200: z.object({ token: Token }), ...errors },
      },
    },
    async (request) => {
      const token = await store.revokeToken(request.params.id);
      request.log.info({ tokenId: token.id }, 'token revoked');
      return { token };
    },
  );
}
