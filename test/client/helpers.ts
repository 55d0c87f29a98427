import { once } from 'node:events';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { onTestFinished } from 'vitest';
import { FleetClient, type FleetClientOptions } from '../../src/client/index.js';
import type { Claimed, Store } from '../../src/store/index.js';
import type { StoreKind } from '../helpers/stores.js';
import { type OpenServerOptions, type OpenedServer, openServer } from '../server/helpers.js';

export interface ListeningServer extends OpenedServer {
  baseUrl: string;
  port: number;
  /** A client of this server; `token` undefined means none. */
  client(token?: string, options?: Partial<FleetClientOptions>): FleetClient;
}

/** A fresh store with the HTTP app listening on a free loopback port (closed after the test). */
export async function listen(
  kind: StoreKind,
  options: OpenServerOptions = {},
): Promise<ListeningServer> {
  const server = await openServer(kind, options);
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  // After a client aborts a stream, undici opens a spare connection that sends nothing; the
  // server would wait for its keep-alive timeout to close. Drop every socket first (the after
  // hooks run in reverse order, so this runs before the app.close() that openServer set up).
  onTestFinished(() => server.app.server.closeAllConnections());
  const { port } = server.app.server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const client = (token?: string, options: Partial<FleetClientOptions> = {}) =>
    new FleetClient({ baseUrl, token, ...options });
  return { ...server, baseUrl, port, client };
}

/** Enqueues a job in `tenant` and claims it: events and artifacts need a live lease. */
export async function claimedJob(store: Store, tenant = 'acme'): Promise<Claimed> {
  await store.enqueue([{ tenant, bodyMd: 'work' }]);
  const [claimed] = await store.claim({
    factoryId: 'factory-1',
    tenants: [tenant],
    capabilities: [],
    limit: 1,
  });
  if (claimed === undefined) throw new Error('nothing to claim');
  return claimed;
}

/** A port nobody listens on (taken, then released). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A TCP server that runs `onConnection` for each socket; closed (sockets too) after the test. */
export async function tcpServer(onConnection: (socket: Socket) => void): Promise<{
  server: Server;
  port: number;
}> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/**
 * A TCP proxy to `upstreamPort`. For the n-th connection (from 0), `cut(n, received)` sees all
 * the upstream has sent on it so far: a byte count (at most `received.length`) makes the proxy
 * forward exactly that much and then drop both sides, as a network failure mid-response would;
 * null forwards everything.
 */
export async function cuttingProxy(
  upstreamPort: number,
  cut: (connection: number, received: Buffer) => number | null,
): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const { port } = await tcpServer((client) => {
    const n = count++;
    const upstream = connect(upstreamPort, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    let cutting = false;
    upstream.on('close', () => {
      if (!cutting) client.destroy();
    });
    client.on('data', (d) => upstream.write(d));
    let received = Buffer.alloc(0);
    let sent = 0;
    upstream.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      const limit = cut(n, received);
      const upTo = limit ?? received.length;
      if (upTo > sent) client.write(received.subarray(sent, upTo));
      sent = Math.max(sent, upTo);
      if (limit !== null) {
        // What was written still goes out; then the connection ends mid-response.
        cutting = true;
        client.end();
        upstream.destroy();
      }
    });
  });
  return { port, connections: () => count };
}
