import { createServer } from 'node:net';

/** A loopback server that accepts every connection and drops it at once. */
export interface DeadEndpoint {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** How many connections it has accepted (and dropped) so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Starts a model endpoint that can never answer: it listens on 127.0.0.1 on a free port and
 * destroys each connection as it arrives, counting them. A CLI pointed at it fails its model
 * request with a connection error at once, and no token is spent. Kept open rather than closed
 * after taking a port, so no other process can take the port while a probe runs.
 *
 * @example
 * const dead = await startDeadEndpoint();
 * // ANTHROPIC_BASE_URL=dead.url claude -p …   → "Unable to connect to API (ECONNRESET)"
 * await dead.close();
 */
export function startDeadEndpoint(): Promise<DeadEndpoint> {
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`the dead endpoint has no TCP address (${String(address)})`));
        return;
      }
      resolve({
        url: `http://127.0.0.1:${address.port}`,
        connections: () => accepted,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
