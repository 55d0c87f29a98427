import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { PlanDetailResponse, PlanListResponse, PlanState, type Job } from '../../core/index.js';
import { requestTenant, requireRole } from '../auth.js';
import { readPlan } from '../plans.js';
import type { ServerContext } from '../server-context.js';
import { ERROR_RESPONSES, IdParams, TenantQuery } from './common.js';

const ListPlansQuery = TenantQuery.extend({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
}).strict();

/**
 * `/v1/plans`: plans and their progress. A plan is a composite job, so it is submitted, cancelled,
 * approved and rejected through `/v1/jobs`; these routes add its phases, jobs and reports.
 */
export async function planRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store } = ctx;

  r.get(
    '/v1/plans',
    {
      preHandler: requireRole('admin', 'operator'),
      schema: {
        summary: 'List plans with their phases, newest first',
        querystring: ListPlansQuery,
        response: { 200: PlanListResponse, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const tenant = requestTenant(request);
      const page = await store.listJobs(tenant, { kind: 'composite', limit: request.query.limit });
      return { items: page.items.flatMap((plan) => summary(plan)) };
    },
  );

  r.get(
    '/v1/plans/:id',
    {
      preHandler: requireRole('admin', 'operator'),
      schema: {
        summary: 'A plan: its phases (status, gate decision, report), jobs and reports',
        params: IdParams,
        querystring: TenantQuery,
        response: { 200: PlanDetailResponse, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const tenant = requestTenant(request);
      const view = await readPlan(store, tenant, request.params.id);
      const reports = (await store.listArtifacts(tenant, view.plan.id)).filter(
        (a) => a.kind === 'report',
      );
      return { ...view, reports };
    },
  );
}

/** A listed plan with its state; one whose state is unreadable is left out of the list. */
function summary(plan: Job): { plan: Job; state: PlanState }[] {
  const state = PlanState.safeParse((plan.manifest as { plan?: unknown }).plan);
  return state.success ? [{ plan, state: state.data }] : [];
}
