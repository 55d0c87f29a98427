import { EventEmitter } from 'node:events';

/** What replicas tell each other. Small and idempotent: a lost message costs latency only. */
export type HubMessage =
  /** A job changed (events appended, stage moved): followers read the store again. */
  | { topic: 'job'; jobId: string }
  /** Claimable work appeared in a tenant: connected factories are woken to claim. */
  | { topic: 'work'; tenant: string }
  /** A job a factory holds was cancelled: that factory stops the agent. */
  | { topic: 'cancel'; factoryId: string; jobId: string; epoch: number; reason: string };

/** Carries hub messages between replicas (PostgreSQL LISTEN/NOTIFY); absent on one machine. */
export interface HubTransport {
  /** Delivers incoming messages from other replicas to `receive` until closed. */
  start(receive: (message: HubMessage) => void): Promise<void>;
  /** Sends a message to every other replica. Fire and forget. */
  send(message: HubMessage): void;
  close(): Promise<void>;
}

type CancelMessage = Extract<HubMessage, { topic: 'cancel' }>;

/**
 * Wake-ups inside the control plane: whoever changes something publishes it here, and
 * whoever waits on it (SSE followers, connected factories) acts. Messages carry ids, never
 * data, so readers go back to the store; followers also poll, so a lost message costs latency,
 * never an event. With a transport, messages also reach the other replicas.
 */
export class EventHub {
  private readonly emitter = new EventEmitter();
  private transport: HubTransport | null = null;

  constructor() {
    // One listener per SSE follower or connected factory; many are normal.
    this.emitter.setMaxListeners(0);
  }

  /** Connects the hub to other replicas. */
  async attach(transport: HubTransport): Promise<void> {
    await transport.start((message) => this.deliver(message));
    this.transport = transport;
  }

  async close(): Promise<void> {
    const t = this.transport;
    this.transport = null;
    await t?.close();
  }

  /** Publishes a message here and on every other replica. */
  send(message: HubMessage): void {
    this.deliver(message);
    this.transport?.send(message);
  }

  publish(jobId: string): void {
    this.send({ topic: 'job', jobId });
  }

  /** Calls `listener` on each publish for `jobId`; returns the unsubscribe function. */
  subscribe(jobId: string, listener: () => void): () => void {
    return this.on(`job:${jobId}`, listener);
  }

  publishWork(tenant: string): void {
    this.send({ topic: 'work', tenant });
  }

  subscribeWork(tenant: string, listener: () => void): () => void {
    return this.on(`work:${tenant}`, listener);
  }

  publishCancel(message: Omit<CancelMessage, 'topic'>): void {
    this.send({ topic: 'cancel', ...message });
  }

  subscribeCancel(factoryId: string, listener: (message: CancelMessage) => void): () => void {
    return this.on(`cancel:${factoryId}`, listener as (m: HubMessage) => void);
  }

  /** How many listeners follow `jobId`: a closed stream must leave none behind. */
  listenerCount(jobId: string): number {
    return this.emitter.listenerCount(`job:${jobId}`);
  }

  private deliver(message: HubMessage): void {
    switch (message.topic) {
      case 'job':
        this.emitter.emit(`job:${message.jobId}`, message);
        break;
      case 'work':
        this.emitter.emit(`work:${message.tenant}`, message);
        break;
      case 'cancel':
        this.emitter.emit(`cancel:${message.factoryId}`, message);
        break;
    }
  }

  private on(event: string, listener: (m: HubMessage) => void): () => void {
    this.emitter.on(event, listener);
    return () => this.emitter.off(event, listener);
  }
}
