/**
 * What a {@link FleetClient} call can fail with. Every class extends {@link FleetClientError},
 * so a caller can catch them all in one place. No message ever contains the caller's token.
 */

/** A field the server (or the client's own check) found wrong: `body.jobs.0.priority`. */
export interface ApiIssue {
  path: string;
  message: string;
}

/** Base class of the client's errors; `route` is the template called (`GET /v1/jobs/:id`). */
export abstract class FleetClientError extends Error {
  readonly route: string;

  constructor(route: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.route = route;
  }
}

/**
 * The server answered with an error status. `code` is the stable code from the error body
 * (`not_found`, `invalid_input`, `stale_lease`…); `issues` names the offending fields.
 */
export class FleetApiError extends FleetClientError {
  readonly status: number;
  readonly code: string;
  readonly issues: ApiIssue[] | undefined;
  /** The server's `x-request-id`: quote it to find the request in the server log. */
  readonly requestId: string | null;

  constructor(init: {
    route: string;
    status: number;
    code: string;
    message: string;
    issues?: ApiIssue[] | undefined;
    requestId: string | null;
  }) {
    super(init.route, init.message);
    this.name = 'FleetApiError';
    this.status = init.status;
    this.code = init.code;
    this.issues = init.issues;
    this.requestId = init.requestId;
  }
}

/** Why no answer came: nobody listening, a name that does not resolve, a timeout, a reset. */
export type ConnectionFailure = 'refused' | 'unresolved' | 'timeout' | 'reset' | 'other';

/**
 * The server could not be reached or stopped answering. The message says what to do next,
 * e.g. `no server at http://127.0.0.1:7070 — start one with fleet up (or fleet serve)`.
 */
export class FleetConnectionError extends FleetClientError {
  readonly baseUrl: string;
  readonly reason: ConnectionFailure;

  constructor(init: {
    route: string;
    baseUrl: string;
    reason: ConnectionFailure;
    message: string;
    cause?: unknown;
  }) {
    super(init.route, init.message, { cause: init.cause });
    this.name = 'FleetConnectionError';
    this.baseUrl = init.baseUrl;
    this.reason = init.reason;
  }
}

/**
 * The server answered 2xx with a body this client does not understand: the field paths in
 * `issues` say what differed. Usually the client and server are different versions.
 */
export class FleetResponseError extends FleetClientError {
  readonly status: number;
  readonly issues: ApiIssue[];
  readonly requestId: string | null;

  constructor(init: {
    route: string;
    status: number;
    message: string;
    issues?: ApiIssue[];
    requestId: string | null;
  }) {
    super(init.route, init.message);
    this.name = 'FleetResponseError';
    this.status = init.status;
    this.issues = init.issues ?? [];
    this.requestId = init.requestId;
  }
}

/**
 * The server answered a factory-socket request with an error (`stale_lease`, `invalid_input`,
 * `not_registered`…): the request was refused, the connection is fine. `route` names the
 * request (`WS /v1/factory complete`).
 */
export class FactoryProtocolError extends FleetClientError {
  readonly code: string;
  readonly issues: ApiIssue[] | undefined;

  constructor(init: {
    route: string;
    code: string;
    message: string;
    issues?: ApiIssue[] | undefined;
  }) {
    super(init.route, init.message);
    this.name = 'FactoryProtocolError';
    this.code = init.code;
    this.issues = init.issues;
  }
}
