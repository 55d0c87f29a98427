import type { AddressInfo } from 'node:net';
import { buildServer } from '../src/server/build-server.js';
import { newTokenSecret } from '../src/server/token-secret.js';
import type { Store } from '../src/store/index.js';
import { BENCH_TENANT } from './burn-down.js';

/** A listening control plane on a store, with the tokens the bench uses. */
export interface BenchServer {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** `ws://127.0.0.1:<port>/v1/factory` */
  factoryUrl: string;
  /** Admin token secret, for submitting (with the bench tenant named per request). */
  adminToken: string;
  /** Factory token secret, scoped to the bench tenant. */
  factoryToken: string;
}

/**
 * Runs `body` against a real server on `store` (buildServer, listening on 127.0.0.1 on a free
 * port), then closes the server, which closes factory sockets and writes their bookkeeping.
 */
export async function withServer<T>(
  store: Store,
  body: (server: BenchServer) => Promise<T>,
  options: { leaseTtlMs?: number } = {},
): Promise<T> {
  const admin = newTokenSecret('admin');
  await store.createToken(BENCH_TENANT, { name: 'bench-admin', role: 'admin' }, admin);
  const factory = newTokenSecret('factory');
  await store.createToken(
    BENCH_TENANT,
    { name: 'bench-factory', role: 'factory', tenants: [BENCH_TENANT] },
    factory,
  );
  const app = await buildServer({ store, version: 'bench', ...options });
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    return await body({
      baseUrl: `http://127.0.0.1:${port}`,
      factoryUrl: `ws://127.0.0.1:${port}/v1/factory`,
      adminToken: admin.secret,
      factoryToken: factory.secret,
    });
  } finally {
    await app.close();
  }
}
