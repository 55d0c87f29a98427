import WebSocket from 'ws';
import { type ServerMessage, ServerMessage as ServerMessageSchema } from '../../src/core/index.js';
import type { StoreKind } from '../helpers/stores.js';
import { bearer, openServer } from './helpers.js';

/**
 * A fresh server of `kind` listening on a free loopback port, with its factory socket's `url`
 * and a `factoryToken` for tenant `acme`.
 */
export async function openFactorySocket(kind: StoreKind) {
  const server = await openServer(kind);
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = server.app.server.address() as { port: number };
  const url = `ws://127.0.0.1:${port}/v1/factory`;
  const factoryToken = await server.token('factory', ['acme']);
  return { ...server, url, factoryToken };
}

/** A raw protocol client: sends requests with ids, collects replies and pushes. */
export class RawFactory {
  readonly socket: WebSocket;
  readonly pushes: ServerMessage[] = [];
  private next = 1;
  private readonly waiting = new Map<number, (m: ServerMessage) => void>();
  private readonly pushWaiters: ((m: ServerMessage) => void)[] = [];

  constructor(url: string, token: string | null) {
    this.socket = new WebSocket(url, token === null ? {} : { headers: bearer(token) });
    this.socket.on('message', (data) => {
      const m = ServerMessageSchema.parse(JSON.parse(data.toString()));
      if (m.type === 'reply') this.waiting.get(m.id)?.(m);
      else {
        this.pushes.push(m);
        for (const w of this.pushWaiters.splice(0)) w(m);
      }
    });
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
  }

  request(body: Record<string, unknown>): Promise<Extract<ServerMessage, { type: 'reply' }>> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (m: ServerMessage) => void);
      this.socket.send(JSON.stringify({ ...body, id }));
    });
  }

  sendRaw(text: string): void {
    this.socket.send(text);
  }

  nextPush(): Promise<ServerMessage> {
    return new Promise((resolve) => this.pushWaiters.push(resolve));
  }

  close(): void {
    this.socket.close();
  }
}

/** A hello for `lane`, as a factory named `name` would send it. */
export const hello = (lane: 'control' | 'events', name = 'host-a') => ({
  type: 'hello',
  protocol: 1,
  lane,
  name,
  capabilities: ['linux'],
  seats: 2,
  version: '0.1.0',
});
