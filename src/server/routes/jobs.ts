import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Insights, Job, Run, JobInsightsTotals } from '../../core/index.js';
import {
  Id,
  JOB_STAGES,
  JobSpec,
  type JobStage,
  NotFoundError,
  IllegalTransitionError,
  JobDetailResponse,
  JobPageResponse,
  JobResponse,
  SubmitResponse,
} from '../../core/index.js';
import type { Logger } from 'pino';
import type { Store } from '../../store/index.js';
import { type PlanContext, cancelJob, cancelPlan, decidePlan } from '../plans.js';
import { forbidden } from '../api-errors.js';
import { requestTenant, requireRole } from '../auth.js';
import { notifyEnqueued } from '../notify-enqueued.js';
import type { ServerContext } from '../server-context.js';
import { ERROR_RESPONSES, IdParams, TenantQuery } from './common.js';

/** A job as submitted over the API: a store job spec, its tenant taken from the request. */
export const JobInput = JobSpec.omit({ tenant: true });

export const SubmitBody = z.object({ jobs: z.array(JobInput).min(1).max(1000) }).strict();

const stageList = z
  .string()
  .transform((s) => s.split(',').filter((x) => x !== ''))
  .pipe(z.array(z.enum(JOB_STAGES)));

export const ListJobsQuery = z
  .object({
    tenant: z.string().optional(),
    stage: stageList.optional(),
    key: z.string().min(1).optional(),
    lock: z.string().min(1).optional(),
    /** Jobs of a plan: children of this composite job. */
    plan: Id.optional(),
    /** `composite` lists plans. */
    kind: z.enum(['leaf', 'composite']).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    after: z.string().min(1).optional(),
  })
  .strict();

/** Optional: a bodiless POST cancels with reason `cancelled_by_user`. */
const CancelBody = z
  .object({ reason: z.string().min(1).max(200) })
  .strict()
  .nullish();

const errors = ERROR_RESPONSES;

/** `/v1/jobs`: submit, list, read, and the person-driven verbs (cancel, retry, approve). */
export async function jobRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store, hub } = ctx;

  r.post(
    '/v1/jobs',
    {
      preHandler: requireRole('admin', 'operator', 'agent'),
      schema: {
        summary: 'Submit one or more jobs (one transaction)',
        querystring: TenantQuery,
        body: SubmitBody,
        response: { 200: SubmitResponse, 201: SubmitResponse, ...errors },
      },
    },
    async (request, reply) => {
      const tenant = requestTenant(request);
      const agentJob = request.principal!.jobId;
      const specs = request.body.jobs.map((spec, i) => {
        // An agent submits children of its own job, and nothing else.
        if (agentJob !== null && spec.parentId !== null && spec.parentId !== agentJob)
          throw forbidden(
            `jobs.${i}.parentId: an agent token submits children of its own job only`,
          );
        return { ...spec, tenant, parentId: agentJob ?? spec.parentId };
      });
      const results = await store.enqueue(specs);
      notifyEnqueued(hub, tenant, results);
      return reply.status(results.some((x) => x.created) ? 201 : 200).send({ jobs: results });
    },
  );

  r.get(
    '/v1/jobs',
    {
      preHandler: requireRole('admin', 'operator', 'factory', 'agent'),
      schema: {
        summary: 'List jobs, newest first',
        querystring: ListJobsQuery,
        response: { 200: JobPageResponse, ...errors },
      },
    },
    async (request) => {
      const tenant = requestTenant(request);
      const q = request.query;
      const agentJob = request.principal!.jobId;
      if (agentJob !== null && q.plan !== undefined && q.plan !== agentJob)
        throw forbidden('an agent token lists the children of its own job only');
      return store.listJobs(tenant, {
        ...(q.stage === undefined ? {} : { stage: q.stage as JobStage[] }),
        ...(q.key === undefined ? {} : { key: q.key }),
        ...(q.lock === undefined ? {} : { lock: q.lock }),
        ...(q.kind === undefined ? {} : { kind: q.kind }),
        ...(agentJob !== null
          ? { parentId: agentJob }
          : q.plan === undefined
            ? {}
            : { parentId: q.plan }),
        limit: q.limit,
        ...(q.after === undefined ? {} : { after: q.after }),
      });
    },
  );

  r.get(
    '/v1/jobs/:id',
    {
      preHandler: requireRole('admin', 'operator', 'factory', 'agent'),
      schema: {
        summary: 'A job with its runs, lease, checkpoint and insight totals',
        params: IdParams,
        querystring: TenantQuery,
        response: { 200: JobDetailResponse, ...errors },
      },
    },
    async (request) => {
      const job = await readableJob(store, request, request.params.id);
      const runs = await store.listRuns(job.tenant, job.id);
      return { job, runs, insights: totals(runs) };
    },
  );

  const verbs = [
    ['cancel', 'Cancel a job (a plan: with its jobs); a running agent is stopped'],
    ['retry', 'Run a failed or cancelled job again, with fresh attempts'],
    ['approve', 'Approve a job, or the phase of a plan, that waits for a person'],
    ['reject', 'Reject a job, or the phase of a plan, that waits for a person'],
  ] as const;
  const plans: PlanContext = { store, hub, logger: app.log as Logger, clock: ctx.clock };
  for (const [verb, summary] of verbs) {
    r.post(
      `/v1/jobs/:id/${verb}`,
      {
        preHandler: requireRole('admin', 'operator'),
        schema: {
          summary,
          params: IdParams,
          querystring: TenantQuery,
          ...(verb === 'cancel' ? { body: CancelBody } : {}),
          response: { 200: JobResponse, ...errors },
        },
      },
      async (request) => {
        const tenant = requestTenant(request);
        const id = request.params.id;
        const target = await store.getJob(tenant, id);
        if (target === null) throw new NotFoundError('job', id);
        const plan = target.kind === 'composite';
        const by = `token ${request.principal!.tokenId}`;
        let job: Job;
        if (verb === 'cancel') {
          const reason =
            (request.body as z.infer<typeof CancelBody>)?.reason ?? 'cancelled_by_user';
          job = plan
            ? await cancelPlan(plans, tenant, id, reason)
            : await cancelJob(plans, tenant, id, reason, true);
        } else if (verb === 'approve' || verb === 'reject') {
          job = plan
            ? await decidePlan(plans, tenant, id, verb, by)
            : verb === 'approve'
              ? await store.approve(tenant, id)
              : await rejectJob(plans, target);
        } else {
          job = await store.retry(tenant, id);
        }
        hub.publish(job.id);
        if (job.stage === 'queued') hub.publishWork(tenant);
        return { job };
      },
    );
  }
}

/** Rejecting a job that waits for approval cancels it with reason `rejected`. */
async function rejectJob(ctx: PlanContext, job: Job): Promise<Job> {
  if (!job.requiresApproval || job.approvedAt !== null || job.stage !== 'blocked')
    throw new IllegalTransitionError(job.stage, 'reject', job.id, 'it is not waiting for approval');
  return cancelJob(ctx, job.tenant, job.id, 'rejected', true);
}

/**
 * The job the caller may read, or a 404: another tenant's job, or for an agent token any job
 * but its own and its children, is indistinguishable from a missing one.
 */
export async function readableJob(store: Store, request: FastifyRequest, id: string): Promise<Job> {
  const tenant = requestTenant(request);
  const job = await store.getJob(tenant, id);
  const agentJob = request.principal!.jobId;
  if (job === null || (agentJob !== null && job.id !== agentJob && job.parentId !== agentJob))
    throw new NotFoundError('job', id);
  return job;
}

function totals(runs: Run[]): z.infer<typeof JobInsightsTotals> {
  const sum = (f: (i: Insights) => number | undefined) =>
    runs.reduce((acc, run) => acc + (f(run.insights) ?? 0), 0);
  return {
    tokensIn: sum((i) => i.tokensIn),
    tokensOut: sum((i) => i.tokensOut),
    tokensCached: sum((i) => i.tokensCached),
    costUsd: sum((i) => i.costUsd),
    turns: sum((i) => i.turns),
    toolCalls: sum((i) => i.toolCalls),
  };
}
