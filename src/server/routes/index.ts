import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../server-context.js';
import { artifactRoutes } from './artifacts.js';
import { eventRoutes } from './events.js';
import { factoryRoutes } from './factories.js';
import { factorySocketRoutes } from './factory-socket.js';
import { healthRoutes } from './health.js';
import { jobRoutes } from './jobs.js';
import { metricsRoutes } from './metrics.js';
import { openApiRoutes } from './openapi.js';
import { planRoutes } from './plans.js';
import { scheduleRoutes } from './schedules.js';
import { tokenRoutes } from './tokens.js';

export type RouteModule = (app: FastifyInstance, context: ServerContext) => Promise<void>;

/** Every route module, registered in this order. */
export const ROUTES: RouteModule[] = [
  healthRoutes,
  jobRoutes,
  eventRoutes,
  artifactRoutes,
  factoryRoutes,
  factorySocketRoutes,
  tokenRoutes,
  planRoutes,
  scheduleRoutes,
  metricsRoutes,
  openApiRoutes,
];
