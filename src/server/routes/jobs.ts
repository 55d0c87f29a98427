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
  JobDetailResponse,
  JobPageResponse,
  JobResponse,
  SubmitResponse,
} from '../../core/index.js';
import type { Store } from '../../store/index.js';
import { forbidden } from '../api-errors.js';
import { requestTenant, requireRole } from '../auth.js';
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
      for (const res of results) hub.publish(res.job.id);
      if (results.some((x) => x.created && x.job.stage === 'queued')) hub.publishWork(tenant);
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
    ['cancel', 'Cancel a job; a running agent is stopped and its lease fenced off'],
    ['retry', 'Run a failed or cancelled job again, with fresh attempts'],
    ['approve', 'Approve a job that waits for a person'],
  ] as const;
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
        // The holder of a running job is told to stop it (on whichever replica it is connected).
        const before = verb === 'cancel' ? await store.getJob(tenant, id) : null;
        const job =
          verb === 'cancel'
            ? await store.cancel(
                tenant,
                id,
                (request.body as z.infer<typeof CancelBody>)?.reason ?? 'cancelled_by_user',
              )
            : verb === 'retry'
              ? await store.retry(tenant, id)
              : await store.approve(tenant, id);
        hub.publish(job.id);
        const lease = before?.lease ?? null;
        if (lease !== null)
          hub.publishCancel({
            factoryId: lease.holderFactoryId,
            jobId: job.id,
            epoch: lease.leaseEpoch,
            reason: job.stageReason ?? 'cancelled',
          });
        if (job.stage === 'queued') hub.publishWork(tenant);
        return { job };
      },
    );
  }
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
