import WebSocket, { type RawData } from 'ws';
import {
  ErrorInfo,
  type FactoryRequestInput,
  type FactoryRequestType,
  type FactoryResult,
  FactoryResults,
  type Lane,
  ServerMessage,
} from '../core/index.js';
import {
  type ApiIssue,
  FactoryProtocolError,
  FleetApiError,
  FleetConnectionError,
  FleetResponseError,
} from './errors.js';
import { failureOf } from './fleet-client.js';

/** A request's fields, without `type` and `id` (the socket fills those in). */
export type RequestBody<T extends FactoryRequestType> = Omit<
  Extract<FactoryRequestInput, { type: T }>,
  'type' | 'id'
>;

/** What the server pushes unasked: `wake`, `cancel`, or an `error` about an unreadable message. */
export type ServerPush = Exclude<ServerMessage, { type: 'reply' }>;

export interface LaneSocketOptions {
  url: string;
  lane: Lane;
  headers: Record<string, string>;
  /** The server as shown in messages (`http://127.0.0.1:7070`). */
  baseUrl: string;
  connectTimeoutMs: number;
  /** A request unanswered this long fails with a `timeout` and the socket is dropped. */
  requestTimeoutMs: number;
  onPush: (push: ServerPush) => void;
  /** Once, when the socket is gone (closed by either side, or never opened). */
  onClose: (err: FleetConnectionError) => void;
  /** Strips the token from text that came from outside. */
  redact: (text: string) => string;
}

interface Pending {
  type: FactoryRequestType;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** How long a closing handshake may take before the socket is dropped. */
const CLOSE_GRACE_MS = 2_000;

const route = (type: FactoryRequestType) => `WS /v1/factory ${type}`;

/**
 * One lane of the factory protocol: a WebSocket whose requests carry ids and are answered by
 * one `reply` each. Replies are checked against {@link FactoryResults}. When the socket goes,
 * every request still waiting fails with a {@link FleetConnectionError} (`reset`).
 */
export class LaneSocket {
  readonly lane: Lane;
  /** Settles when the socket is open; rejects when it could not be opened. */
  readonly opened: Promise<void>;
  private readonly options: LaneSocketOptions;
  private readonly ws: WebSocket;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private gone: FleetConnectionError | null = null;
  /** Why the upgrade was refused, read from the server's answer. */
  private refused: FleetApiError | null = null;
  private failure: unknown = null;
  private wasOpen = false;
  private rejectOpen: (err: Error) => void = () => undefined;
  private readonly closedPromise: Promise<void>;

  constructor(options: LaneSocketOptions) {
    this.options = options;
    this.lane = options.lane;
    this.ws = new WebSocket(options.url, {
      headers: options.headers,
      handshakeTimeout: options.connectTimeoutMs,
      // Large event batches: up to the server's own limit.
      maxPayload: 8 * 1024 * 1024,
    });
    this.ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 64 * 1024) body += chunk;
      });
      res.on('end', () => {
        this.refused = this.refusal(res.statusCode ?? 0, body);
        this.ws.terminate();
      });
      res.on('error', () => this.ws.terminate());
    });
    this.ws.on('error', (err) => {
      this.failure ??= err;
    });
    this.ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    this.opened = new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => {
        this.wasOpen = true;
        resolve();
      });
      this.rejectOpen = reject;
    });
    // Nobody may be awaiting `opened` when the socket closes later on: never unhandled.
    this.opened.catch(() => undefined);
    this.closedPromise = new Promise<void>((resolve) => {
      this.ws.once('close', (code, why) => {
        this.onClosed(code, why.toString());
        resolve();
      });
    });
  }

  /** True until the socket closed. */
  get alive(): boolean {
    return this.gone === null;
  }

  /** Sends one request and resolves with its parsed result. */
  request<T extends FactoryRequestType>(type: T, body: RequestBody<T>): Promise<FactoryResult<T>> {
    if (this.gone !== null || this.ws.readyState !== WebSocket.OPEN)
      return Promise.reject(this.gone ?? this.notOpen(type));
    const id = this.nextId++;
    return new Promise<FactoryResult<T>>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        const { baseUrl, requestTimeoutMs } = this.options;
        reject(
          new FleetConnectionError({
            route: route(type),
            baseUrl,
            reason: 'timeout',
            message: `no answer to ${type} from ${baseUrl} within ${requestTimeoutMs} ms — the ${this.lane} lane is dropped and reconnected`,
          }),
        );
        // Requests on a socket are answered in order: one stuck means all behind it are.
        this.terminate();
      }, this.options.requestTimeoutMs);
      this.pending.set(id, { type, resolve: resolve as (v: unknown) => void, reject, timer });
      this.ws.send(JSON.stringify({ type, id, ...body }), (err) => {
        if (err !== undefined && err !== null) this.failure ??= err;
      });
    });
  }

  /** Closes the socket politely (dropping it if the server does not answer); settles once closed. */
  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.close(1000, 'factory closing');
      const timer = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
      void this.closedPromise.then(() => clearTimeout(timer));
    }
    return this.closedPromise;
  }

  /** Drops the socket at once (no closing handshake). */
  terminate(): void {
    this.ws.terminate();
  }

  /** Settles once the socket is closed. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (isBinary) return this.options.onPush(protocolNoise('the server sent a binary message'));
    let json: unknown;
    try {
      json = JSON.parse(data.toString());
    } catch {
      return this.options.onPush(protocolNoise('the server sent a message that is not JSON'));
    }
    const parsed = ServerMessage.safeParse(json);
    if (!parsed.success)
      return this.options.onPush(
        protocolNoise('the server sent a message this client cannot read'),
      );
    const message = parsed.data;
    if (message.type !== 'reply') return this.options.onPush(message);
    const p = this.pending.get(message.id);
    if (p === undefined) return;
    this.pending.delete(message.id);
    clearTimeout(p.timer);
    if (message.error !== undefined) {
      const { code, issues } = message.error;
      p.reject(
        new FactoryProtocolError({
          route: route(p.type),
          code,
          message: this.options.redact(message.error.message),
          issues: issues?.map((i) => ({ path: i.path, message: this.options.redact(i.message) })),
        }),
      );
      return;
    }
    const result = FactoryResults[p.type].safeParse(message.result);
    if (result.success) p.resolve(result.data);
    else p.reject(unexpectedReply(p.type, result.error.issues));
  }

  private onClosed(code: number, closeReason: string): void {
    const { baseUrl } = this.options;
    const why =
      closeReason === '' ? `code ${code}` : `code ${code}: ${this.options.redact(closeReason)}`;
    const cause = this.failure;
    const reason = cause === null ? 'reset' : failureOf(cause);
    const detail = cause instanceof Error ? this.options.redact(cause.message) : why;
    this.gone = new FleetConnectionError({
      route: 'WS /v1/factory',
      baseUrl,
      reason,
      message: this.wasOpen
        ? `the factory ${this.lane} lane to ${baseUrl} closed (${why})`
        : reason === 'refused'
          ? `no server at ${baseUrl} — start one with fleet up (or fleet serve)`
          : `cannot open the factory ${this.lane} lane at ${baseUrl}: ${detail}`,
      cause: this.refused ?? cause ?? undefined,
    });
    this.rejectOpen(this.refused ?? this.gone);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(
        new FleetConnectionError({
          route: route(p.type),
          baseUrl,
          reason: 'reset',
          message: `the factory ${this.lane} lane to ${baseUrl} closed before ${p.type} was answered (${why}) — retry once reconnected`,
          cause: this.gone,
        }),
      );
    }
    this.options.onClose(this.gone);
  }

  private notOpen(type: FactoryRequestType): FleetConnectionError {
    const { baseUrl } = this.options;
    return new FleetConnectionError({
      route: route(type),
      baseUrl,
      reason: 'reset',
      message: `the factory ${this.lane} lane to ${baseUrl} is not open`,
    });
  }

  /** The upgrade was answered with an error status: the server's error body, if it sent one. */
  private refusal(status: number, text: string): FleetApiError {
    let value: unknown = null;
    try {
      value = JSON.parse(text);
    } catch {
      // Not the server's error shape.
    }
    const info = ErrorInfo.safeParse((value as { error?: unknown } | null)?.error);
    const r = 'GET /v1/factory';
    if (info.success)
      return new FleetApiError({
        route: r,
        status,
        code: info.data.code,
        message: this.options.redact(info.data.message),
        issues: info.data.issues,
        requestId: null,
      });
    return new FleetApiError({
      route: r,
      status,
      code: `http_${status}`,
      message: `${r} failed with HTTP ${status} (is ${this.options.baseUrl} a Fleet server?)`,
      requestId: null,
    });
  }
}

function protocolNoise(message: string): ServerPush {
  return { type: 'error', error: { code: 'unreadable_message', message } };
}

function unexpectedReply(
  type: FactoryRequestType,
  zodIssues: readonly { path: readonly PropertyKey[]; message: string }[],
): FleetResponseError {
  const issues: ApiIssue[] = zodIssues.map((i) => ({
    path: i.path.length === 0 ? '(result)' : i.path.map(String).join('.'),
    message: i.message,
  }));
  const listed = issues
    .slice(0, 3)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
  return new FleetResponseError({
    route: route(type),
    // The socket's own status: its upgrade was answered 101 Switching Protocols.
    status: 101,
    issues,
    requestId: null,
    message: `${route(type)} answered with an unexpected result: ${listed} — the client and server may be different versions`,
  });
}
