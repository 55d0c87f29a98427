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
} from './fleet-client.js';
export {
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
  fillPath,
  parseBaseUrl,
  type BaseUrl,
  type PathParams,
  type Query,
  type QueryValue,
} from './urls.js';
