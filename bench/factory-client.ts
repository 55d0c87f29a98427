import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

/** A `reply` from the server, with when it arrived (performance.now(), before parsing). */
export interface Reply {
  id: number;
  result?: unknown;
  error?: { code: string; message: string };
  at: number;
}

/** A server push (`wake`, `cancel`, `error`). */
export interface Push {
  type: string;
  [key: string]: unknown;
}

interface Waiter {
  resolve: (reply: Reply) => void;
  reject: (err: Error) => void;
}

/**
 * A minimal raw client for the factory protocol (`/v1/factory`), so the bench depends on the
 * wire format only. No schema validation on the way in: the client's own costs should stay out
 * of what the bench times, since it shares the process (and event loop) with the server.
 */
export class BenchFactory {
  private readonly socket: WebSocket;
  private next = 1;
  private readonly waiting = new Map<number, Waiter>();
  private pushHandler: (push: Push) => void = () => undefined;
  private closedError: Error | null = null;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data, isBinary) => {
      const at = performance.now();
      const m = JSON.parse(isBinary ? '' : data.toString()) as Push & Partial<Reply>;
      if (m.type === 'reply' && typeof m.id === 'number') {
        const w = this.waiting.get(m.id);
        if (w === undefined) return;
        this.waiting.delete(m.id);
        w.resolve({ id: m.id, result: m.result, error: m.error, at });
      } else this.pushHandler(m);
    });
    socket.on('close', (code, reason) => {
      this.closedError = new Error(`factory socket closed (${code} ${reason.toString()})`);
      for (const w of this.waiting.values()) w.reject(this.closedError);
      this.waiting.clear();
    });
  }

  /** Opens a socket on `lane` and says hello; resolves with the client and its factory id. */
  static async connect(
    url: string,
    token: string,
    lane: 'control' | 'events',
    name: string,
  ): Promise<{ factory: BenchFactory; factoryId: string }> {
    const socket = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const factory = new BenchFactory(socket);
    const hello = await factory.request({
      type: 'hello',
      protocol: 1,
      lane,
      name,
      seats: 1,
      version: 'bench',
    });
    const result = expectResult(hello, 'hello') as { factoryId: string };
    return { factory, factoryId: result.factoryId };
  }

  /** Calls `handler` on every push (replaces the previous handler). */
  onPush(handler: (push: Push) => void): void {
    this.pushHandler = handler;
  }

  /** Sends one request (the id is added) and resolves with its reply. */
  request(body: Record<string, unknown>): Promise<Reply> {
    return this.requestText((id) => JSON.stringify({ ...body, id }));
  }

  /** Sends a request whose text `build` makes from its id: prebuilt payloads stay cheap. */
  requestText(build: (id: number) => string): Promise<Reply> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.socket.send(build(id), (err) => {
        if (err === undefined || err === null) return;
        this.waiting.delete(id);
        reject(err);
      });
    });
  }

  /** Closes the socket and waits for the close handshake. */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.close(1000, 'bench done');
    await closed;
  }
}

/** The reply's result; throws with the server's error when it holds one. */
export function expectResult(reply: Reply, what: string): unknown {
  if (reply.error !== undefined)
    throw new Error(`${what} failed: ${reply.error.code}: ${reply.error.message}`);
  return reply.result;
}
