import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { HubMessage, HubTransport } from './event-hub.js';

export interface PgHubTransportOptions {
  connectionString: string;
  /** Fleet's schema: replicas on one schema hear each other, and only them. */
  schema: string;
  logger: Logger;
  /** Names this replica in payloads (its own messages are dropped on receipt); default random. */
  replicaId?: string;
  /** First delay before re-establishing a dropped LISTEN connection; doubles up to the max. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Sends waiting for the database beyond this many are dropped (the database is down). */
  maxPendingSends?: number;
}

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_999;
/** Longest identifier PostgreSQL keeps (NAMEDATALEN - 1); LISTEN would truncate a longer one. */
const MAX_IDENT_BYTES = 63;
const CONNECT_TIMEOUT_MS = 5_000;
/** At most one warning this often about failing sends: an outage fails every one of them. */
const SEND_WARN_EVERY_MS = 10_000;

const HubMessageSchema = z.discriminatedUnion('topic', [
  z.object({ topic: z.literal('job'), jobId: z.string().min(1) }),
  z.object({ topic: z.literal('work'), tenant: z.string().min(1) }),
  z.object({
    topic: z.literal('cancel'),
    factoryId: z.string().min(1),
    jobId: z.string().min(1),
    epoch: z.number().int(),
    reason: z.string(),
  }),
]);
const Envelope = z.object({ replica: z.string().min(1), message: HubMessageSchema });

/** The NOTIFY channel of a Fleet schema: `fleet_hub_<schema>`, hashed when too long. */
export function hubChannel(schema: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema))
    throw new Error(`invalid schema name "${schema}": use lowercase letters, digits and "_"`);
  const name = `fleet_hub_${schema}`;
  if (name.length <= MAX_IDENT_BYTES) return name;
  return `fleet_hub_${createHash('sha256').update(schema).digest('hex').slice(0, 40)}`;
}

export const newReplicaId = (): string => randomBytes(6).toString('hex');

/**
 * Carries hub messages between replicas over PostgreSQL LISTEN/NOTIFY. One dedicated
 * connection (not from a pool: a pooled one would be handed to others and lose its LISTEN)
 * listens on the schema's channel; sends go through a one-connection pool of their own, so
 * they leave in the order they were made and a reconnecting listener never holds them up.
 *
 * Delivery is best effort, like the hub itself: while the listener is down (it reconnects with
 * backoff) messages are lost, which costs latency only, since followers and factories also poll.
 */
export class PgHubTransport implements HubTransport {
  readonly replicaId: string;
  readonly channel: string;
  private readonly logger: Logger;
  private readonly pool: pg.Pool;
  private readonly sending = new Set<Promise<void>>();
  private receive: ((message: HubMessage) => void) | null = null;
  /** The live listening connection, or null while (re)connecting. */
  private client: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private failures = 0;
  private closed = false;
  private lastSendWarn = 0;

  constructor(private readonly options: PgHubTransportOptions) {
    this.channel = hubChannel(options.schema);
    this.replicaId = options.replicaId ?? newReplicaId();
    this.logger = options.logger;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: 1,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      application_name: `fleet hub send ${this.replicaId}`,
    });
    this.pool.on('error', (err) =>
      this.logger.warn({ err }, 'idle hub sending connection failed; the pool replaces it'),
    );
  }

  /**
   * Starts listening; resolves once the first attempt is over. A failed first attempt is
   * logged and retried like a dropped connection: the server runs on, followers poll.
   */
  async start(receive: (message: HubMessage) => void): Promise<void> {
    this.receive = receive;
    await this.connect();
  }

  send(message: HubMessage): void {
    if (this.closed) return;
    const payload = JSON.stringify({ replica: this.replicaId, message });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
      this.logger.warn(
        { topic: message.topic, bytes: Buffer.byteLength(payload) },
        'hub message too large for NOTIFY; other replicas will see the change on their next poll',
      );
      return;
    }
    if (this.sending.size >= (this.options.maxPendingSends ?? 1_000)) {
      this.warnSend(null, 'too many hub messages waiting for PostgreSQL; dropping');
      return;
    }
    const sent = this.pool.query('SELECT pg_notify($1, $2)', [this.channel, payload]).then(
      () => undefined,
      (err: unknown) => this.warnSend(err, 'sending a hub message failed; dropping it'),
    );
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    await this.connecting;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
    await Promise.allSettled([...this.sending]);
    await this.pool.end().catch(() => undefined);
  }

  /** One attempt at a listening connection; on failure, the next one is scheduled. */
  private connect(): Promise<void> {
    this.connecting ??= this.tryListen().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async tryListen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // A vanished peer (network cut) surfaces as an error instead of silence.
      keepAlive: true,
      application_name: `fleet hub ${this.replicaId}`,
    });
    // Errors before the client is live are the connect's own; afterwards, lost() reconnects.
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, null));
    client.on('notification', (n) => this.onNotification(n));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
    } catch (err) {
      void client.end().catch(() => undefined);
      if (this.closed) return;
      this.failures++;
      const delay = this.backoff();
      this.logger.warn(
        { err, channel: this.channel, retryInMs: delay, attempt: this.failures },
        'cannot listen for hub messages from other replicas; retrying',
      );
      this.schedule(delay);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    if (this.failures > 0)
      this.logger.info({ channel: this.channel }, 'listening for hub messages again');
    else this.logger.debug({ channel: this.channel }, 'listening for hub messages');
    this.failures = 0;
  }

  /** The listening connection dropped: messages are lost until it is back. */
  private lost(client: pg.Client, err: Error | null): void {
    if (client !== this.client || this.closed) return;
    this.client = null;
    void client.end().catch(() => undefined);
    this.failures++;
    const delay = this.backoff();
    this.logger.warn(
      { err, channel: this.channel, retryInMs: delay },
      'hub listening connection lost; messages from other replicas are missed until it is back',
    );
    this.schedule(delay);
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.retry !== null) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.connect();
    }, delayMs);
    this.retry.unref();
  }

  /** Exponential from the min to the max, with jitter so replicas do not reconnect in step. */
  private backoff(): number {
    const min = this.options.reconnectMinMs ?? 100;
    const max = this.options.reconnectMaxMs ?? 5_000;
    const base = Math.min(max, min * 2 ** Math.min(this.failures - 1, 20));
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  private onNotification(n: pg.Notification): void {
    if (n.channel !== this.channel || this.receive === null) return;
    let parsed: z.infer<typeof Envelope>;
    try {
      const result = Envelope.safeParse(JSON.parse(n.payload ?? ''));
      if (!result.success) throw result.error;
      parsed = result.data;
    } catch (err) {
      this.logger.warn(
        { err, channel: n.channel, payload: (n.payload ?? '').slice(0, 200) },
        'ignoring a malformed hub message',
      );
      return;
    }
    // The hub delivered our own messages locally when they were sent.
    if (parsed.replica === this.replicaId) return;
    try {
      this.receive(parsed.message);
    } catch (err) {
      this.logger.error({ err, topic: parsed.message.topic }, 'a hub listener failed');
    }
  }

  private warnSend(err: unknown, msg: string): void {
    const now = Date.now();
    if (now - this.lastSendWarn < SEND_WARN_EVERY_MS) return;
    this.lastSendWarn = now;
    this.logger.warn({ err, channel: this.channel }, msg);
  }
}
