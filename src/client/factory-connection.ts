import type { z } from 'zod';
import {
  type EventInput,
  type FactoryKind,
  type FactoryRequestType,
  type FactoryResult,
  type FencedRefSchema,
  PROTOCOL_VERSION,
} from '../core/index.js';
import { type ReconnectBackoff, reconnectDelayMs } from './backoff.js';
import { type ConnectionState, ConnectionStateMachine } from './connection-state.js';
import { FleetConnectionError } from './errors.js';
import { LaneSocket, type RequestBody, type ServerPush } from './factory-socket.js';
import { factorySocketUrl, parseBaseUrl } from './urls.js';

/** A job under a lease: every factory write about a job carries one. */
export type FencedRef = z.infer<typeof FencedRefSchema>;
/** A lease the server no longer recognises; `code` says why when a heartbeat found it. */
export type StaleRef = FencedRef & { code?: string };

export type FactoryHello = FactoryResult<'hello'>;
export type ReconcileResult = FactoryResult<'reconcile'>;
export type ClaimResult = FactoryResult<'claim'>;
export type HeartbeatResult = FactoryResult<'heartbeat'>;
export type EventsResult = FactoryResult<'events'>;
export type EventBatch = RequestBody<'events'>['batches'][number];
/**
 * An event as the factory keeps it until the server has it (in memory or in the spool file):
 * `localSeq` numbers a run's events (per job and epoch) from 1 and goes along when spooled.
 */
export type LocalEvent = EventInput & { localSeq?: number };

/**
 * The batch for `events` (a run's next events, in order, with their local numbers): the
 * events go without `localSeq`, the batch carries the number of its first event, so the
 * server stores each event once even when the batch is sent again after a reconnect. An
 * event without a number (a spool overflow marker) takes the number before the next one's.
 */
export function eventBatch(ref: FencedRef, events: LocalEvent[]): EventBatch {
  const at = events.findIndex((e) => e.localSeq !== undefined);
  const batch: EventBatch = {
    jobId: ref.jobId,
    epoch: ref.epoch,
    events: events.map(({ localSeq: _, ...event }) => event),
  };
  if (at >= 0) {
    const first = events[at]!.localSeq! - at;
    if (first >= 1) batch.localSeq = first;
  }
  return batch;
}

/** What a finished run reports: exit, verification, insights, output, checkpoint. */
export type RunReport = Omit<RequestBody<'complete'>, 'jobId' | 'epoch'>;
export type RunFailure = Omit<RequestBody<'fail'>, 'jobId' | 'epoch'>;

/** pino, `console`, or anything with these methods. */
export interface FactoryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface FactoryIdentity {
  name: string;
  kind?: z.infer<typeof FactoryKind>;
  capabilities?: string[];
  seats?: number;
  version?: string;
}

export interface FactoryConnectionOptions {
  /** The server, e.g. `http://127.0.0.1:7070`; the socket is `ws://…/v1/factory`. */
  baseUrl: string;
  /** A factory (or admin) token secret. */
  token: string;
  /** The tenant to serve with an admin token (a factory token serves the tenants it names). */
  tenant?: string | undefined;
  factory: FactoryIdentity;
  /** The runs this factory holds right now; sent to the server after every (re)connect. */
  heldRuns: () => FencedRef[];
  /**
   * Claimable work may be waiting: claim now. Also called after every reconnect, since a wake
   * sent while the factory was away is lost.
   */
  onWake?: () => void;
  /** Stop this run: its job was cancelled and its lease is already fenced off. */
  onCancel?: (jobId: string, epoch: number, reason: string) => void;
  /**
   * Runs the server no longer recognises as this factory's live leases: found by the
   * reconcile after a (re)connect, or by a heartbeat. Stop them; their writes would be refused.
   */
  onStale?: (refs: StaleRef[], via: 'reconcile' | 'heartbeat') => void;
  onState?: (state: ConnectionState, previous: ConnectionState) => void;
  logger?: FactoryLogger;
  /** Delays between reconnect attempts; attempts go on until {@link FactoryConnection.close}. */
  reconnect?: ReconnectBackoff;
  /** How long opening a socket may take. Default 10 s. */
  connectTimeoutMs?: number;
  /** A request unanswered this long fails and its socket is reconnected. Default 30 s. */
  requestTimeoutMs?: number;
  /** Jitter source (tests). */
  random?: () => number;
}

export interface HeartbeatOptions {
  /** Every heartbeat's answer (after stale leases went to `onStale`). */
  onBeat?: (result: HeartbeatResult) => void;
  /** A heartbeat that got no answer (the lane dropped); the next one goes on schedule. */
  onError?: (err: Error) => void;
}

/** The sockets of one connection attempt. */
interface Link {
  control: LaneSocket;
  events: LaneSocket;
  /** Set when either socket went: the attempt (or connection) is over. */
  broken: FleetConnectionError | null;
}

const SILENT: FactoryLogger = { info: () => undefined, warn: () => undefined };
/** The most refs one reconcile or heartbeat may carry. */
const MAX_REFS = 10_000;

/**
 * A factory's connection to the control plane: the two lanes of the factory protocol
 * (`control` for leases, `events` for agent output, so lease traffic never waits behind
 * events), typed requests, and reconnection.
 *
 * After `connect()`, a dropped socket drops both: requests waiting on it fail with a
 * {@link FleetConnectionError} (retry once reconnected), and the connection comes back with
 * exponential backoff and jitter, says hello and reconciles `heldRuns()` again. A refused
 * request fails with a {@link FactoryProtocolError} (`stale_lease`, `invalid_input`…).
 *
 * @example
 * const conn = new FactoryConnection({ baseUrl, token, factory: { name: 'host-a' }, heldRuns });
 * await conn.connect();
 * const { assignments } = await conn.claim(2);
 */
export class FactoryConnection {
  readonly baseUrl: string;
  private readonly url: string;
  readonly #token: string;
  private readonly options: FactoryConnectionOptions;
  private readonly log: FactoryLogger;
  private readonly machine: ConnectionStateMachine;
  private link: Link | null = null;
  private failures = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly heartbeats = new Set<() => void>();
  private waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  #hello: FactoryHello | null = null;
  #reconciled: ReconcileResult | null = null;

  constructor(options: FactoryConnectionOptions) {
    const base = parseBaseUrl(options.baseUrl);
    this.baseUrl = base.display;
    this.url = factorySocketUrl(base);
    this.#token = options.token;
    this.options = options;
    this.log = options.logger ?? SILENT;
    this.machine = new ConnectionStateMachine((state, previous) => {
      this.log.info({ state, previous }, 'factory connection state');
      this.safely('onState', () => options.onState?.(state, previous));
    });
  }

  get state(): ConnectionState {
    return this.machine.state;
  }

  /** The latest hello answer: the factory id, the lease TTL and the heartbeat interval. */
  get hello(): FactoryHello | null {
    return this.#hello;
  }

  /** What the latest reconcile said about `heldRuns()`: which are still valid, which stale. */
  get reconciled(): ReconcileResult | null {
    return this.#reconciled;
  }

  /**
   * Opens both lanes, says hello on each, reconciles `heldRuns()`; resolves once connected.
   * A first connection that fails is not retried (the error says why: no server, a refused
   * token); later drops are.
   */
  async connect(): Promise<FactoryHello> {
    if (this.state !== 'disconnected' || this.link !== null || this.reconnectTimer !== undefined)
      throw new Error(`connect() needs a new connection (this one is ${this.state})`);
    try {
      await this.attempt('connecting');
    } catch (err) {
      if ((this.state as ConnectionState) !== 'closed') this.machine.move('disconnected');
      throw err;
    }
    return this.#hello!;
  }

  /** Settles once connected (at once if connected now); rejects if the connection is closed. */
  whenConnected(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(this.closedError('whenConnected'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  // ---- Control lane ----------------------------------------------------------------------

  /** Claims up to `limit` jobs; each assignment holds the job, its new run and its lease. */
  claim(limit: number, leaseTtlMs?: number): Promise<ClaimResult> {
    return this.send('claim', leaseTtlMs === undefined ? { limit } : { limit, leaseTtlMs });
  }

  /** Tells the server this factory drains: it is handed no new claims from now on. */
  async drain(): Promise<void> {
    await this.send('drain', {});
  }

  /** Renews every lease in `leases` in one request; `stale` lists those that are not live. */
  heartbeat(leases: FencedRef[], ttlMs?: number): Promise<HeartbeatResult> {
    return this.send('heartbeat', ttlMs === undefined ? { leases } : { leases, ttlMs });
  }

  async start(ref: FencedRef): Promise<FactoryResult<'start'>> {
    return this.send('start', fenced(ref));
  }

  async verify(ref: FencedRef): Promise<FactoryResult<'verify'>> {
    return this.send('verify', fenced(ref));
  }

  async checkpoint(
    ref: FencedRef,
    checkpoint: RequestBody<'checkpoint'>['checkpoint'],
  ): Promise<FactoryResult<'checkpoint'>> {
    return this.send('checkpoint', { ...fenced(ref), checkpoint });
  }

  async complete(ref: FencedRef, report: RunReport = {}): Promise<FactoryResult<'complete'>> {
    return this.send('complete', { ...report, ...fenced(ref) });
  }

  async fail(ref: FencedRef, failure: RunFailure): Promise<FactoryResult<'fail'>> {
    return this.send('fail', { ...failure, ...fenced(ref) });
  }

  // ---- Events lane -----------------------------------------------------------------------

  /**
   * Appends agent output, batched across jobs, on the events lane. Each batch has its own
   * result: a stale lease refuses that batch only.
   */
  sendEvents(batches: EventBatch[]): Promise<EventsResult> {
    return this.send('events', { batches });
  }

  // ---- Heartbeats ------------------------------------------------------------------------

  /**
   * Sends one batched heartbeat for `leases()` every `heartbeatMs` (from the latest hello) on
   * the control lane; leases found stale go to `onStale`. While disconnected no beat is sent
   * (the reconcile after the reconnect renews the valid leases). Returns the function that
   * stops it; {@link close} stops it too.
   */
  startHeartbeats(leases: () => FencedRef[], options: HeartbeatOptions = {}): () => void {
    if (this.state === 'closed') return () => undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const stop = () => {
      stopped = true;
      clearTimeout(timer);
      this.heartbeats.delete(stop);
    };
    const interval = () => this.#hello?.heartbeatMs ?? 10_000;
    const schedule = (delay: number) => {
      if (!stopped) timer = setTimeout(() => void beat(), Math.max(0, delay));
    };
    const beat = async () => {
      const began = Date.now();
      try {
        const refs = this.state === 'connected' ? leases() : [];
        for (const part of chunks(refs, MAX_REFS)) {
          const result = await this.heartbeat(part);
          if (stopped) return;
          const { stale } = result;
          if (stale.length > 0)
            this.safely('onStale', () => this.options.onStale?.(stale, 'heartbeat'));
          this.safely('onBeat', () => options.onBeat?.(result));
        }
      } catch (err) {
        if (stopped) return;
        this.log.warn({ err }, 'factory heartbeat failed');
        this.safely('onError', () => options.onError?.(err as Error));
      }
      schedule(interval() - (Date.now() - began));
    };
    this.heartbeats.add(stop);
    schedule(interval());
    return stop;
  }

  /** Closes both lanes and stops reconnecting and heartbeats; leaves no timer behind. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    for (const stop of [...this.heartbeats]) stop();
    const link = this.link;
    this.link = null;
    this.machine.move('closed');
    const err = this.closedError('close');
    for (const w of this.waiters.splice(0)) w.reject(err);
    if (link !== null) await Promise.all([link.control.close(), link.events.close()]);
  }

  // ---- Connecting ------------------------------------------------------------------------

  private send<T extends FactoryRequestType>(
    type: T,
    body: RequestBody<T>,
  ): Promise<FactoryResult<T>> {
    const link = this.link;
    if (this.state !== 'connected' || link === null || link.broken !== null)
      return Promise.reject(this.notConnected(type));
    return (type === 'events' ? link.events : link.control).request(type, body);
  }

  /** One attempt: both lanes open, hello on each, reconcile; throws if any step fails. */
  private async attempt(kind: 'connecting' | 'reconnecting'): Promise<void> {
    this.machine.move(kind);
    const link = this.openLink();
    this.link = link;
    const step = async <T>(p: Promise<T>): Promise<T> => {
      const value = await p;
      if (link.broken !== null) throw link.broken;
      if (this.link !== link) throw this.closedError('connect');
      return value;
    };
    try {
      await step(Promise.all([link.control.opened, link.events.opened]));
      // One after the other: both register the same factory (by name).
      const reconnect = kind === 'reconnecting';
      const hello = await step(link.control.request('hello', this.helloBody('control', reconnect)));
      await step(link.events.request('hello', this.helloBody('events', reconnect)));
      this.#hello = hello;
      this.machine.move('reconciling');
      const held = this.options.heldRuns();
      const reconciled: ReconcileResult = { valid: [], stale: [] };
      for (const runs of chunks(held, MAX_REFS)) {
        const part = await step(link.control.request('reconcile', { runs }));
        reconciled.valid.push(...part.valid);
        reconciled.stale.push(...part.stale);
      }
      // A callback may have closed the connection meanwhile.
      if (this.link !== link) throw this.closedError('connect');
      this.#reconciled = reconciled;
      this.failures = 0;
      this.machine.move('connected');
      this.log.info(
        { factoryId: hello.factoryId, valid: reconciled.valid.length, stale: reconciled.stale },
        'factory connected',
      );
    } catch (err) {
      if (this.link === link) {
        this.link = null;
        link.control.terminate();
        link.events.terminate();
      }
      throw err;
    }
    for (const w of this.waiters.splice(0)) w.resolve();
    const { stale } = this.#reconciled;
    if (stale.length > 0) this.safely('onStale', () => this.options.onStale?.(stale, 'reconcile'));
    if (kind === 'reconnecting') this.safely('onWake', () => this.options.onWake?.());
  }

  private openLink(): Link {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    if (this.options.tenant !== undefined && this.options.tenant !== '')
      headers['x-fleet-tenant'] = this.options.tenant;
    const link: Link = { control: undefined!, events: undefined!, broken: null };
    const lane = (name: 'control' | 'events') =>
      new LaneSocket({
        url: this.url,
        lane: name,
        headers,
        baseUrl: this.baseUrl,
        connectTimeoutMs: this.options.connectTimeoutMs ?? 10_000,
        requestTimeoutMs: this.options.requestTimeoutMs ?? 30_000,
        redact: (text) => text.split(this.#token).join('[token]'),
        onPush: (push) => this.pushed(name, push),
        onClose: (err) => this.dropped(link, err),
      });
    link.control = lane('control');
    link.events = lane('events');
    return link;
  }

  /** Either socket of `link` went: both go, and a live connection reconnects. */
  private dropped(link: Link, err: FleetConnectionError): void {
    if (link.broken !== null) return;
    link.broken = err;
    link.control.terminate();
    link.events.terminate();
    if (this.link !== link) return;
    // An attempt in progress fails on its own (its next step sees `broken`).
    if (this.state !== 'connected') return;
    this.link = null;
    this.log.warn({ err }, 'factory connection dropped; reconnecting');
    this.machine.move('disconnected');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = reconnectDelayMs(this.failures, this.options.reconnect, this.options.random);
    this.failures += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.reconnect();
    }, delay);
  }

  private async reconnect(): Promise<void> {
    try {
      await this.attempt('reconnecting');
    } catch (err) {
      if (this.state === 'closed') return;
      this.log.warn({ err, failures: this.failures }, 'factory reconnect failed');
      this.machine.move('disconnected');
      this.scheduleReconnect();
    }
  }

  private pushed(lane: 'control' | 'events', push: ServerPush): void {
    if (push.type === 'wake') this.safely('onWake', () => this.options.onWake?.());
    else if (push.type === 'cancel')
      this.safely('onCancel', () => this.options.onCancel?.(push.jobId, push.epoch, push.reason));
    else this.log.warn({ lane, error: push.error }, 'factory socket error message');
  }

  /** Runs a caller's callback: one that throws is logged, never breaks the connection. */
  private safely(name: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.warn({ err, callback: name }, 'factory connection callback threw');
    }
  }

  private helloBody(lane: 'control' | 'events', reconnect: boolean): RequestBody<'hello'> {
    const { name, kind, capabilities, seats, version } = this.options.factory;
    return {
      protocol: PROTOCOL_VERSION,
      lane,
      name,
      kind,
      capabilities,
      seats,
      version,
      reconnect,
    };
  }

  private notConnected(type: string): FleetConnectionError {
    return new FleetConnectionError({
      route: `WS /v1/factory ${type}`,
      baseUrl: this.baseUrl,
      reason: 'reset',
      message: `the factory connection to ${this.baseUrl} is ${this.state}, not connected — retry once reconnected (whenConnected())`,
    });
  }

  private closedError(what: string): FleetConnectionError {
    return new FleetConnectionError({
      route: `WS /v1/factory ${what}`,
      baseUrl: this.baseUrl,
      reason: 'other',
      message: `the factory connection to ${this.baseUrl} was closed`,
    });
  }
}

/** Just the fencing fields: a caller's object may carry more (a whole lease). */
const fenced = (ref: FencedRef): FencedRef => ({ jobId: ref.jobId, epoch: ref.epoch });

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
