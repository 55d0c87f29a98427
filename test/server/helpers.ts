import type { FastifyInstance } from 'fastify';
import { onTestFinished } from 'vitest';
import type { TokenRole } from '../../src/core/index.js';
import { type ServerOptions, buildServer, newTokenSecret } from '../../src/server/index.js';
import { instrumentStore } from '../../src/server/instrument-store.js';
import { createMetrics, type FleetMetrics } from '../../src/server/metrics.js';
import type { Store, StoreOptions } from '../../src/store/index.js';
import type { OpenedStore, StoreKind } from '../helpers/stores.js';

export interface OpenedServer extends OpenedStore {
  app: FastifyInstance;
  /** The store as the server uses it: instrumented, so calls through it feed `metrics`. */
  served: Store;
  metrics: FleetMetrics;
  /** An admin token's secret. */
  admin: string;
  /** Makes a token and returns its secret. */
  token(role: TokenRole, tenants?: string[], jobId?: string | null): Promise<string>;
}

export interface OpenServerOptions {
  /** More server options (e.g. a short `leaseTtlMs`). */
  server?: Partial<Omit<ServerOptions, 'store' | 'metrics'>>;
  /** More store options (e.g. `clock: Date.now` for a test that runs in real time). */
  store?: Partial<StoreOptions>;
}

/** A fresh store with the HTTP app on it (not listening: tests use `app.inject`). */
export async function openServer(
  kind: StoreKind,
  options: OpenServerOptions = {},
): Promise<OpenedServer> {
  const opened = await kind.open(options.store);
  const metrics = createMetrics(opened.store);
  const served = instrumentStore(opened.store, metrics);
  const app = await buildServer({ version: 'test', ...options.server, store: served, metrics });
  onTestFinished(() => app.close());
  const token = async (role: TokenRole, tenants: string[] = [], jobId: string | null = null) => {
    const s = newTokenSecret(role);
    await opened.store.createToken(tenants[0] ?? 'system', { name: role, role, tenants, jobId }, s);
    return s.secret;
  };
  return { ...opened, app, served, metrics, admin: await token('admin'), token };
}

export const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
