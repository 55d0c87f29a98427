import WebSocket from 'ws';
import { type ServerMessage, ServerMessage as ServerMessageSchema } from '../../src/core/index.js';
import { bearer } from './helpers.js';

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
