import type { z } from 'zod';
import {
  type Artifact,
  type EventInput,
  type Factory,
  type Job,
  JobEvent,
  type JobSpecInput,
  type JobStage,
  type Schedule,
  type ScheduleRule,
  type Token,
  type TokenSpecInput,
} from '../core/index.js';
import {
  type ApiIssue,
  type ConnectionFailure,
  FleetApiError,
  FleetConnectionError,
  FleetResponseError,
} from './errors.js';
import {
  AppendEventsResponse,
  type AppendEventsResult,
  ArtifactListResponse,
  ArtifactResponse,
  type CreatedToken,
  CreatedTokenResponse,
  type EventPage,
  EventPageResponse,
  FactoryListResponse,
  FactoryResponse,
  type Health,
  HealthResponse,
  type JobDetail,
  JobDetailResponse,
  type JobPage,
  JobPageResponse,
  JobResponse,
  PlanDetailResponse,
  PlanListResponse,
  type PlanDetail,
  type PlanSummary,
  type OpenApiDocument,
  OpenApiResponse,
  ScheduleListResponse,
  ScheduleResponse,
  SubmitResponse,
  type SubmitResult,
  TokenListResponse,
  TokenResponse,
} from './responses.js';
import { SseParser } from './sse.js';
import { type BaseUrl, type PathParams, type Query, buildUrl, parseBaseUrl } from './urls.js';

export interface FleetClientOptions {
  /** The server, e.g. `http://127.0.0.1:7070` (a path prefix is kept). */
  baseUrl: string;
  /** A bearer token secret (`fleet_…`). Without one, only `health` and `openapi` work. */
  token?: string | undefined;
  /** The tenant to act in (sent as `x-fleet-tenant`); default: the token's own. */
  tenant?: string | undefined;
  /** A `fetch` to use instead of the global one (tests, proxies, instrumentation). */
  fetch?: typeof globalThis.fetch;
  /**
   * How long one call may take, body included, before it fails with a `timeout`
   * {@link FleetConnectionError}. For {@link FleetClient.followEvents}, how long opening the
   * stream may take. Default 30 s.
   */
  timeoutMs?: number;
}

/** A job as submitted: a job spec whose tenant comes from the client (or the token). */
export type JobSubmission = Omit<JobSpecInput, 'tenant'>;

/** A schedule as created: each firing submits `template` (no run time, key or parent of its own). */
export interface ScheduleSubmission {
  /** Unique in the tenant. */
  name: string;
  rule: ScheduleRule;
  template: Omit<JobSubmission, 'idempotencyKey' | 'parentId' | 'runAt'>;
  /** Fire even while the previous firing's job is unfinished; default false. */
  allowOverlap?: boolean;
  /** Create it paused; default false. */
  paused?: boolean;
}

export interface ListJobsQuery {
  stage?: JobStage | readonly JobStage[];
  key?: string;
  lock?: string;
  /** Children of this composite job. */
  plan?: string;
  /** `composite`: plans only; `leaf`: no plans. */
  kind?: 'leaf' | 'composite';
  /** Page size, 1..1000 (server default 100). */
  limit?: number;
  /** The `next` cursor of the previous page. */
  after?: string;
}

export interface ListEventsQuery {
  /** Events with a seq greater than this; default 0. */
  after?: number;
  limit?: number;
}

export interface FollowEventsOptions {
  /** Start after this seq (default 0: from the first event). */
  after?: number;
  /** Stops following; the iteration then ends without an error. */
  signal?: AbortSignal;
  /** Reconnect policy after a dropped stream. */
  reconnect?: ReconnectPolicy;
  /**
   * A stream silent for this long is taken as dead and reconnected (the server sends a
   * keep-alive every 15 s). Default 45 s.
   */
  idleTimeoutMs?: number;
}

export interface ReconnectPolicy {
  /** First delay; doubles with each consecutive failure. Default 250 ms. */
  minDelayMs?: number;
  /** Default 5 s. */
  maxDelayMs?: number;
  /** Consecutive failed reconnects before giving up with the last error. Default 10. */
  maxAttempts?: number;
}

export interface ArtifactUpload {
  kind: string;
  name: string;
  /** The run that produced it, if any. */
  runId?: string | null;
  /** Default `application/octet-stream`. */
  mediaType?: string;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface CallInit {
  params?: PathParams;
  query?: Query;
  /** A JSON body; `undefined` sends none (and no content type). */
  json?: unknown;
  bytes?: Uint8Array;
  headers?: Record<string, string>;
  accept?: string;
  signal?: AbortSignal;
}

interface Opened {
  response: Response;
  route: string;
  requestId: string | null;
  /** Stops the call's timeout (once the body has been read, or a stream is open). */
  settle: () => void;
  /** Stops listening to the caller's signal (once the body has been read or dropped). */
  release: () => void;
  timedOut: () => boolean;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const EVENTS_ROUTE = '/v1/jobs/:id/events';

/**
 * The typed client of the Fleet HTTP API: the one module the CLI, factory, TUI and MCP server
 * use to talk to a control plane. Each method is one route; answers are checked against the
 * core schemas, so callers get validated records or a {@link FleetClientError}:
 * {@link FleetApiError} (the server said no), {@link FleetConnectionError} (no server, timeout)
 * or {@link FleetResponseError} (an answer this client does not understand).
 *
 * @example
 * const fleet = new FleetClient({ baseUrl: 'http://127.0.0.1:7070', token, tenant: 'acme' });
 * const { jobs } = await fleet.submitJobs([{ bodyMd: 'Fix the flaky test' }]);
 * for await (const event of fleet.followEvents(jobs[0]!.job.id)) console.log(event.type);
 */
export class FleetClient {
  readonly baseUrl: string;
  readonly tenant: string | undefined;
  private readonly base: BaseUrl;
  // ES private: neither util.inspect nor JSON.stringify of a client shows the token.
  readonly #token: string | undefined;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly timeoutMs: number;
  readonly #options: FleetClientOptions;

  constructor(options: FleetClientOptions) {
    this.#options = options;
    this.base = parseBaseUrl(options.baseUrl);
    this.baseUrl = this.base.display;
    this.#token = options.token === '' ? undefined : options.token;
    this.tenant = options.tenant === '' ? undefined : options.tenant;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new RangeError('timeoutMs must be a positive number');
  }

  /** The same client acting in another tenant. */
  withTenant(tenant: string): FleetClient {
    return new FleetClient({ ...this.#options, tenant });
  }

  // ---- Health and documents -------------------------------------------------------------

  /** `GET /healthz`: the server is up and its store answers. Needs no token. */
  health(): Promise<Health> {
    return this.json('GET', '/healthz', HealthResponse);
  }

  /** `GET /openapi.json`: the OpenAPI 3 document of every route. Needs no token. */
  openapi(): Promise<OpenApiDocument> {
    return this.json('GET', '/openapi.json', OpenApiResponse);
  }

  /** `GET /metrics`: Prometheus text exposition (admin token). */
  async metrics(): Promise<string> {
    const opened = await this.open('GET', '/metrics', { accept: 'text/plain' });
    return this.readBody(opened, (r) => r.text());
  }

  // ---- Jobs ------------------------------------------------------------------------------

  /**
   * `POST /v1/jobs`: submits jobs in one transaction. `created` is false for a job whose
   * idempotency key was already used (the first job is returned).
   */
  submitJobs(specs: readonly JobSubmission[]): Promise<SubmitResult> {
    return this.json('POST', '/v1/jobs', SubmitResponse, { json: { jobs: specs } });
  }

  /** `GET /v1/jobs`: a page of jobs, newest first; pass `next` back as `after`. */
  listJobs(query: ListJobsQuery = {}): Promise<JobPage> {
    const { stage, key, lock, plan, kind, limit, after } = query;
    const stages = typeof stage === 'string' ? [stage] : stage;
    return this.json('GET', '/v1/jobs', JobPageResponse, {
      query: { stage: stages, key, lock, plan, kind, limit, after },
    });
  }

  /** `GET /v1/jobs/:id`: the job with its runs and insight totals. */
  getJob(id: string): Promise<JobDetail> {
    return this.json('GET', '/v1/jobs/:id', JobDetailResponse, { params: { id } });
  }

  /** `POST /v1/jobs/:id/cancel`; `reason` defaults to `cancelled_by_user` on the server. */
  async cancelJob(id: string, reason?: string): Promise<Job> {
    const json = reason === undefined ? undefined : { reason };
    const params = { id };
    return (await this.json('POST', '/v1/jobs/:id/cancel', JobResponse, { params, json })).job;
  }

  /**
   * `POST /v1/jobs/:id/reject`: a job waiting for approval is cancelled (reason `rejected`); a
   * plan's phase waiting for approval fails and the plan stops.
   */
  async rejectJob(id: string): Promise<Job> {
    return (await this.json('POST', '/v1/jobs/:id/reject', JobResponse, { params: { id } })).job;
  }

  // ---- Plans -----------------------------------------------------------------------------

  /** `GET /v1/plans`: plans with their phases, newest first. */
  async listPlans(query: { limit?: number } = {}): Promise<PlanSummary[]> {
    return (await this.json('GET', '/v1/plans', PlanListResponse, { query })).items;
  }

  /** `GET /v1/plans/:id`: a plan's phases, jobs and phase reports. */
  getPlan(id: string): Promise<PlanDetail> {
    return this.json('GET', '/v1/plans/:id', PlanDetailResponse, { params: { id } });
  }

  /** `POST /v1/jobs/:id/retry`: a failed or cancelled job runs again with fresh attempts. */
  async retryJob(id: string): Promise<Job> {
    return (await this.json('POST', '/v1/jobs/:id/retry', JobResponse, { params: { id } })).job;
  }

  /** `POST /v1/jobs/:id/approve`: releases a job that waits for a person. */
  async approveJob(id: string): Promise<Job> {
    return (await this.json('POST', '/v1/jobs/:id/approve', JobResponse, { params: { id } })).job;
  }

  // ---- Events ----------------------------------------------------------------------------

  /** `GET /v1/jobs/:id/events`: a page of a job's events; `next` is the seq to pass as `after`. */
  listEvents(id: string, query: ListEventsQuery = {}): Promise<EventPage> {
    return this.json('GET', EVENTS_ROUTE, EventPageResponse, {
      params: { id },
      query: { after: query.after, limit: query.limit },
    });
  }

  /** `POST /v1/jobs/:id/events`: appends events under the lease `epoch` (factory or admin). */
  appendEvents(
    id: string,
    epoch: number,
    events: readonly EventInput[],
  ): Promise<AppendEventsResult> {
    return this.json('POST', EVENTS_ROUTE, AppendEventsResponse, {
      params: { id },
      json: { epoch, events },
    });
  }

  /**
   * Follows a job's events live (`GET /v1/jobs/:id/events?follow=1`, Server-Sent Events) until
   * the job has finished and every event was delivered. A dropped stream is reopened with
   * backoff from the last event seen (`Last-Event-ID`), so events arrive once each and in
   * order. Aborting `signal`, or leaving the loop, closes the stream.
   *
   * @throws FleetApiError when the server refuses (unknown job, no permission);
   *   FleetConnectionError when the first connection fails or reconnecting keeps failing.
   */
  async *followEvents(
    id: string,
    options: FollowEventsOptions = {},
  ): AsyncGenerator<JobEvent, void, undefined> {
    const { signal } = options;
    const minDelay = options.reconnect?.minDelayMs ?? 250;
    const maxDelay = options.reconnect?.maxDelayMs ?? 5_000;
    const maxAttempts = options.reconnect?.maxAttempts ?? 10;
    const idleMs = options.idleTimeoutMs ?? 45_000;
    const route = `GET ${EVENTS_ROUTE}`;
    let last = options.after ?? 0;
    let connected = false;
    let failures = 0;
    let serverRetry: number | undefined;

    const aborted = () => signal?.aborted === true;
    while (!aborted()) {
      const conn = new AbortController();
      const unlink = link(signal, conn);
      let idle: ReturnType<typeof setTimeout> | undefined;
      let dropped: unknown;
      let release: () => void = () => undefined;
      try {
        const opened = await this.open('GET', EVENTS_ROUTE, {
          params: { id },
          query: { follow: 1, after: last },
          headers: { 'last-event-id': String(last) },
          accept: 'text/event-stream',
          signal: conn.signal,
        });
        opened.settle();
        release = opened.release;
        const { response } = opened;
        const type = response.headers.get('content-type') ?? '';
        if (!type.startsWith('text/event-stream') || response.body === null) {
          await response.body?.cancel().catch(() => undefined);
          throw new FleetResponseError({
            route,
            status: response.status,
            message: `${route} answered with "${type}" instead of an event stream`,
            requestId: opened.requestId,
          });
        }
        connected = true;
        const parser = new SseParser();
        const reader = response.body.getReader();
        const arm = () => {
          clearTimeout(idle);
          idle = setTimeout(() => conn.abort(new Error('idle')), idleMs);
        };
        for (;;) {
          arm();
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (err) {
            dropped = err;
            break;
          }
          // A slow consumer is not a silent server: the idle clock runs only while reading.
          clearTimeout(idle);
          const messages = chunk.done ? parser.end() : parser.push(chunk.value);
          serverRetry = parser.retryMs ?? serverRetry;
          for (const message of messages) {
            if (message.event === 'end') return;
            const event = this.parseBody(route, 200, opened.requestId, message.data, JobEvent);
            if (event.seq <= last) continue;
            last = event.seq;
            failures = 0;
            yield event;
          }
          if (chunk.done) break;
        }
      } catch (err) {
        if (aborted()) return;
        if (!connected || !isTransient(err)) throw err;
        dropped = err;
      } finally {
        clearTimeout(idle);
        conn.abort();
        release();
        unlink();
      }
      if (aborted()) return;
      failures += 1;
      if (failures > maxAttempts)
        throw dropped instanceof FleetConnectionError
          ? dropped
          : new FleetConnectionError({
              route,
              baseUrl: this.baseUrl,
              reason: 'reset',
              message: `the event stream of job ${id} at ${this.baseUrl} kept closing before the job ended (${maxAttempts} reconnects) — check the server log`,
              cause: dropped,
            });
      const backoff = Math.min(
        maxDelay,
        Math.max(minDelay, serverRetry ?? 0) * 2 ** (failures - 1),
      );
      await sleep(backoff * (0.5 + Math.random() / 2), signal);
    }
  }

  // ---- Artifacts -------------------------------------------------------------------------

  /** `GET /v1/jobs/:id/artifacts`. */
  async listArtifacts(jobId: string): Promise<Artifact[]> {
    return (
      await this.json('GET', '/v1/jobs/:id/artifacts', ArtifactListResponse, {
        params: { id: jobId },
      })
    ).items;
  }

  /** `PUT /v1/jobs/:id/artifacts`: stores `content` under the lease `epoch` (factory or admin). */
  async uploadArtifact(
    jobId: string,
    epoch: number,
    spec: ArtifactUpload,
    content: Uint8Array | string,
  ): Promise<Artifact> {
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    const query = {
      epoch,
      kind: spec.kind,
      name: spec.name,
      runId: spec.runId,
      mediaType: spec.mediaType,
    };
    return (
      await this.json('PUT', '/v1/jobs/:id/artifacts', ArtifactResponse, {
        params: { id: jobId },
        query,
        bytes,
      })
    ).artifact;
  }

  /** `GET /v1/artifacts/:id`: the artifact's record (not its bytes). */
  async getArtifact(id: string): Promise<Artifact> {
    return (await this.json('GET', '/v1/artifacts/:id', ArtifactResponse, { params: { id } }))
      .artifact;
  }

  /** `GET /v1/artifacts/:id/content`: the artifact's bytes. */
  async readArtifact(id: string): Promise<Uint8Array> {
    const opened = await this.open('GET', '/v1/artifacts/:id/content', {
      params: { id },
      accept: '*/*',
    });
    return this.readBody(opened, async (r) => new Uint8Array(await r.arrayBuffer()));
  }

  // ---- Factories -------------------------------------------------------------------------

  /** `GET /v1/factories` (admin, operator). */
  async listFactories(): Promise<Factory[]> {
    return (await this.json('GET', '/v1/factories', FactoryListResponse)).items;
  }

  /** `POST /v1/factories/:id/drain`: the factory takes no new work (admin, operator). */
  async drainFactory(id: string): Promise<Factory> {
    return (await this.json('POST', '/v1/factories/:id/drain', FactoryResponse, { params: { id } }))
      .factory;
  }

  // ---- Tokens ----------------------------------------------------------------------------

  /** `POST /v1/tokens` (admin): the new token and its secret, which is shown only this once. */
  createToken(spec: TokenSpecInput): Promise<CreatedToken> {
    return this.json('POST', '/v1/tokens', CreatedTokenResponse, { json: spec });
  }

  /** `GET /v1/tokens` (admin): every tenant's tokens, or those made in `tenant`. */
  async listTokens(query: { tenant?: string } = {}): Promise<Token[]> {
    return (await this.json('GET', '/v1/tokens', TokenListResponse, { query })).items;
  }

  /** `POST /v1/tokens/:id/revoke` (admin). */
  async revokeToken(id: string): Promise<Token> {
    return (await this.json('POST', '/v1/tokens/:id/revoke', TokenResponse, { params: { id } }))
      .token;
  }

  // ---- Schedules -------------------------------------------------------------------------

  /** `POST /v1/schedules` (admin, operator): the schedule, with its first `nextRunAt`. */
  async createSchedule(spec: ScheduleSubmission): Promise<Schedule> {
    return (await this.json('POST', '/v1/schedules', ScheduleResponse, { json: spec })).schedule;
  }

  /** `GET /v1/schedules`: the tenant's schedules, by name. */
  async listSchedules(): Promise<Schedule[]> {
    return (await this.json('GET', '/v1/schedules', ScheduleListResponse)).items;
  }

  /** `GET /v1/schedules/:id`. */
  async getSchedule(id: string): Promise<Schedule> {
    return (await this.json('GET', '/v1/schedules/:id', ScheduleResponse, { params: { id } }))
      .schedule;
  }

  /** `PATCH /v1/schedules/:id`: pauses, or resumes with the next run counted from now. */
  async pauseSchedule(id: string, paused: boolean): Promise<Schedule> {
    const init = { params: { id }, json: { paused } };
    return (await this.json('PATCH', '/v1/schedules/:id', ScheduleResponse, init)).schedule;
  }

  /** `DELETE /v1/schedules/:id`: jobs it already submitted stay. */
  async deleteSchedule(id: string): Promise<void> {
    const opened = await this.open('DELETE', '/v1/schedules/:id', { params: { id } });
    await this.readBody(opened, () => Promise.resolve());
  }

  // ---- Plumbing --------------------------------------------------------------------------

  /** One call whose answer is JSON checked against `schema`. */
  private async json<S extends z.ZodType>(
    method: Method,
    template: string,
    schema: S,
    init: CallInit = {},
  ): Promise<z.output<S>> {
    const opened = await this.open(method, template, init);
    const text = await this.readBody(opened, (r) => r.text());
    return this.parseBody(opened.route, opened.response.status, opened.requestId, text, schema);
  }

  private parseBody<S extends z.ZodType>(
    route: string,
    status: number,
    requestId: string | null,
    text: string,
    schema: S,
  ): z.output<S> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new FleetResponseError({
        route,
        status,
        requestId,
        message: `${route} answered with a body that is not JSON: ${snippet(this.redact(text))}`,
      });
    }
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    const issues: ApiIssue[] = parsed.error.issues.map((i) => ({
      path: i.path.length === 0 ? '(body)' : i.path.map(String).join('.'),
      message: i.message,
    }));
    const listed = issues
      .slice(0, 3)
      .map((i) => `${i.path}: ${i.message}`)
      .join('; ');
    const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : '';
    throw new FleetResponseError({
      route,
      status,
      requestId,
      issues,
      message: `${route} answered with an unexpected body: ${listed}${more} — the client and server may be different versions`,
    });
  }

  /**
   * Sends a request and returns the response once its status is a success; any other status
   * becomes a {@link FleetApiError}, a failed connection a {@link FleetConnectionError}. The
   * timeout keeps running until `settle()`, so reading the body is covered too.
   */
  private async open(method: Method, template: string, init: CallInit): Promise<Opened> {
    const route = `${method} ${template}`;
    const url = buildUrl(this.base, template, init.params, init.query);
    const headers: Record<string, string> = {
      accept: init.accept ?? 'application/json',
      ...init.headers,
    };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    if (this.tenant !== undefined) headers['x-fleet-tenant'] = this.tenant;
    let body: string | Uint8Array | undefined;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    } else if (init.bytes !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      body = init.bytes;
    }

    const controller = new AbortController();
    const unlink = link(init.signal, controller);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    const settle = () => clearTimeout(timer);

    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: controller.signal,
      });
    } catch (err) {
      settle();
      unlink();
      if (init.signal?.aborted === true) throw init.signal.reason;
      throw this.connectionError(route, err, timedOut);
    }
    const requestId = response.headers.get('x-request-id');
    const opened: Opened = {
      response,
      route,
      requestId,
      settle,
      release: unlink,
      timedOut: () => timedOut,
    };
    if (response.ok) return opened;
    const text = await this.readBody(opened, (r) => r.text());
    throw this.apiError(route, response, requestId, text);
  }

  /** Reads the body under the call's timeout; a failure midway is a connection error. */
  private async readBody<T>(opened: Opened, read: (r: Response) => Promise<T>): Promise<T> {
    try {
      return await read(opened.response);
    } catch (err) {
      throw this.connectionError(opened.route, err, opened.timedOut());
    } finally {
      opened.settle();
      opened.release();
    }
  }

  private apiError(
    route: string,
    response: Response,
    requestId: string | null,
    text: string,
  ): FleetApiError {
    const status = response.status;
    const parsed = errorBody(text);
    if (parsed !== null)
      return new FleetApiError({
        route,
        status,
        requestId,
        code: parsed.code,
        message: this.redact(parsed.message),
        issues: parsed.issues?.map((i) => ({ path: i.path, message: this.redact(i.message) })),
      });
    // Not the server's error shape: a proxy, or something else listening on the port.
    const what = `${route} failed with HTTP ${status}${response.statusText === '' ? '' : ` ${response.statusText}`}`;
    const body = text.trim() === '' ? '' : `: ${snippet(this.redact(text))}`;
    return new FleetApiError({
      route,
      status,
      requestId,
      code: `http_${status}`,
      message: `${what}${body} (is ${this.baseUrl} a Fleet server?)`,
    });
  }

  private connectionError(route: string, err: unknown, timedOut: boolean): FleetConnectionError {
    const at = this.baseUrl;
    const reason: ConnectionFailure = timedOut ? 'timeout' : failureOf(err);
    const message = {
      refused: `no server at ${at} — start one with fleet up (or fleet serve)`,
      unresolved: `cannot resolve the host of ${at} — check the server URL`,
      timeout: `no answer from ${at} within ${this.timeoutMs} ms (${route}) — check that the server is healthy, or allow a longer timeout`,
      reset: `the connection to ${at} closed before ${route} was answered — try again; if it keeps happening, check the server log`,
      other: `cannot reach ${at} (${route}): ${this.redact(causeText(err))}`,
    }[reason];
    return new FleetConnectionError({ route, baseUrl: at, reason, message, cause: err });
  }

  /** Belt and braces: no message built from outside text may carry the token. */
  private redact(text: string): string {
    return this.#token === undefined ? text : text.split(this.#token).join('[token]');
  }
}

/** Worth a reconnect: the connection failed or broke, or a proxy says the server is restarting. */
function isTransient(err: unknown): boolean {
  if (err instanceof FleetConnectionError) return true;
  if (err instanceof FleetApiError)
    return err.status === 502 || err.status === 503 || err.status === 504;
  return false;
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function errorBody(
  text: string,
): { code: string; message: string; issues?: ApiIssue[] | undefined } | null {
  const value = tryJson(text) as { error?: unknown } | null;
  const e = value?.error as { code?: unknown; message?: unknown; issues?: unknown } | undefined;
  if (typeof e !== 'object' || e === null) return null;
  if (typeof e.code !== 'string' || typeof e.message !== 'string') return null;
  const issues = Array.isArray(e.issues)
    ? e.issues
        .filter(
          (i): i is ApiIssue =>
            typeof i === 'object' &&
            i !== null &&
            typeof (i as ApiIssue).path === 'string' &&
            typeof (i as ApiIssue).message === 'string',
        )
        .map((i) => ({ path: i.path, message: i.message }))
    : undefined;
  return { code: e.code, message: e.message, issues };
}

/** Errno-style codes along an error's cause chain, mapped to what they mean for a caller. */
export function failureOf(err: unknown): ConnectionFailure {
  const codes = new Set<string>();
  const walk = (e: unknown, depth: number) => {
    if (depth > 8 || typeof e !== 'object' || e === null) return;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.add(code);
    if (e instanceof AggregateError) for (const inner of e.errors) walk(inner, depth + 1);
    walk((e as { cause?: unknown }).cause, depth + 1);
  };
  walk(err, 0);
  const has = (...c: string[]) => c.some((x) => codes.has(x));
  if (has('ECONNREFUSED')) return 'refused';
  if (has('ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME')) return 'unresolved';
  if (
    has('ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT')
  )
    return 'timeout';
  if (has('ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED')) return 'reset';
  if (err instanceof Error && err.name === 'AbortError') return 'reset';
  if (err instanceof TypeError && err.message === 'terminated') return 'reset';
  return 'other';
}

function causeText(err: unknown): string {
  let e: unknown = err;
  // `fetch failed` says nothing; the cause says what.
  while (e instanceof Error && e.message === 'fetch failed' && e.cause !== undefined) e = e.cause;
  const text = e instanceof Error ? e.message || e.name : String(e);
  return text.replace(/\s+/g, ' ').trim();
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/** Aborts `target` when `source` aborts; returns the function that stops listening. */
function link(source: AbortSignal | undefined, target: AbortController): () => void {
  if (source === undefined) return () => undefined;
  if (source.aborted) {
    target.abort(source.reason);
    return () => undefined;
  }
  const onAbort = () => target.abort(source.reason);
  source.addEventListener('abort', onAbort, { once: true });
  return () => source.removeEventListener('abort', onAbort);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
