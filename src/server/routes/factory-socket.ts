import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requestTenant, requireRole } from '../auth.js';
import { AgentTokens } from '../factory/agent-tokens.js';
import { FactoryRegistry } from '../factory/factory-registry.js';
import { FactorySession } from '../factory/factory-session.js';
import type { ServerContext } from '../server-context.js';

/**
 * `GET /v1/factory` upgraded to a WebSocket: the factory protocol (see
 * src/core/protocol/factory-protocol.ts). A factory token serves every tenant it names; an admin
 * token serves the request's tenant.
 */
export async function factorySocketRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const registry = ctx.factories ?? new FactoryRegistry();
  ctx.factories = registry;
  const agentTokens = new AgentTokens(ctx.store, ctx.clock);
  app.get(
    '/v1/factory',
    {
      websocket: true,
      preValidation: requireRole('factory', 'admin'),
      // @fastify/websocket hides upgrade routes from OpenAPI; the protocol's messages are
      // documented (and validated) by the zod union in src/core/protocol/factory-protocol.ts.
      schema: { querystring: z.object({ tenant: z.string().optional() }).strict() },
    },
    (socket, request) => {
      const p = request.principal!;
      const tenants = p.tenants.length > 0 ? p.tenants : [requestTenant(request)];
      new FactorySession(
        {
          store: ctx.store,
          hub: ctx.hub,
          registry,
          agentTokens,
          log: request.log,
          leaseTtlMs: ctx.leaseTtlMs,
          tenants,
        },
        socket,
      );
    },
  );
  app.addHook('preClose', async () => {
    // Close factory sockets (factories reconnect elsewhere) and wait until each one's
    // bookkeeping is written, before the store behind it closes.
    const sessions = [...registry.sessions];
    for (const s of sessions) s.close(1001, 'server shutting down');
    await Promise.all(sessions.map((s) => s.done));
  });
}
