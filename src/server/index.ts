export { buildServer, type ServerContext, type ServerOptions } from './build-server.js';
export { EventHub } from './event-hub.js';
export { newTokenSecret, hashSecret } from './token-secret.js';
export { ErrorBody, ApiError } from './api-errors.js';
export { TENANT_HEADER, type Principal } from './auth.js';
export { createMetrics, type FleetMetrics } from './metrics.js';
export { instrumentStore } from './instrument-store.js';
export {
  startServer,
  ServerStartError,
  type StartServerOptions,
  type RunningServer,
} from './run-server.js';
