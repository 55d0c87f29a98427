/**
 * The Fleet API client: the one module that talks HTTP to a control plane.
 *
 * @example
 * import { FleetClient } from 'fleet/client';
 * const fleet = new FleetClient({ baseUrl: 'http://127.0.0.1:7070', token });
 */
export {
  FleetClient,
  type ArtifactUpload,
  type FleetClientOptions,
  type FollowEventsOptions,
  type JobSubmission,
  type ListEventsQuery,
  type ListJobsQuery,
  type ReconnectPolicy,
  type ScheduleSubmission,
} from './fleet-client.js';
export {
  FactoryConnection,
  type ClaimResult,
  type EventBatch,
  type EventsResult,
  type FactoryConnectionOptions,
  type FactoryHello,
  type FactoryIdentity,
  type FactoryLogger,
  type HeartbeatOptions,
  type HeartbeatResult,
  type ReconcileResult,
  type RunFailure,
  type RunReport,
  type StaleRef,
} from './factory-connection.js';
export { ConnectionStateMachine, canMove, type ConnectionState } from './connection-state.js';
export { reconnectDelayMs, type ReconnectBackoff } from './backoff.js';
export {
  FactoryProtocolError,
  FleetApiError,
  FleetClientError,
  FleetConnectionError,
  FleetResponseError,
  type ApiIssue,
  type ConnectionFailure,
} from './errors.js';
export type {
  AppendEventsResult,
  CreatedToken,
  EventPage,
  Health,
  JobDetail,
  JobInsightsTotals,
  JobPage,
  OpenApiDocument,
  SubmitResult,
} from './responses.js';
export { SseParser, type SseMessage } from './sse.js';
export {
  buildUrl,
  encodeQuery,
  encodeSegment,
  factorySocketUrl,
  fillPath,
  parseBaseUrl,
  type BaseUrl,
  type PathParams,
  type Query,
  type QueryValue,
} from './urls.js';
