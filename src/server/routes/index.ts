import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../build-server.js';
import { healthRoutes } from './health.js';
import { jobRoutes } from './jobs.js';

export type RouteModule = (app: FastifyInstance, context: ServerContext) => Promise<void>;

/** Every route module, registered in this order. */
export const ROUTES: RouteModule[] = [healthRoutes, jobRoutes];
