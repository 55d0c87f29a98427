import type { FastifyInstance } from 'fastify';
import { onTestFinished } from 'vitest';
import type { TokenRole } from '../../src/core/index.js';
import { buildServer, newTokenSecret } from '../../src/server/index.js';
import type { OpenedStore, StoreKind } from '../helpers/stores.js';

export interface OpenedServer extends OpenedStore {
  app: FastifyInstance;
  /** An admin token's secret. */
  admin: string;
  /** Makes a token and returns its secret. */
  token(role: TokenRole, tenants?: string[], jobId?: string | null): Promise<string>;
}

/** A fresh store with the HTTP app on it (not listening: tests use `app.inject`). */
export async function openServer(kind: StoreKind): Promise<OpenedServer> {
  const opened = await kind.open();
  const app = await buildServer({ store: opened.store, version: 'test' });
  onTestFinished(() => app.close());
  const token = async (role: TokenRole, tenants: string[] = [], jobId: string | null = null) => {
    const s = newTokenSecret(role);
    await opened.store.createToken(tenants[0] ?? 'system', { name: role, role, tenants, jobId }, s);
    return s.secret;
  };
  return { ...opened, app, admin: await token('admin'), token };
}

export const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
