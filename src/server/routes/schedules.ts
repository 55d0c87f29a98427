import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  ConflictError,
  InvalidInputError,
  JobSpec,
  NotFoundError,
  Schedule,
  ScheduleListResponse,
  ScheduleResponse,
  ScheduleRule,
  checkRule,
  nextRunAt,
} from '../../core/index.js';
import type { Store } from '../../store/index.js';
import { ApiError } from '../api-errors.js';
import { requestTenant, requireRole } from '../auth.js';
import type { ServerContext } from '../server-context.js';
import { ERROR_RESPONSES, IdParams, TenantQuery } from './common.js';

/**
 * The job each firing submits: a job spec without what the schedule decides itself (the
 * tenant, when it runs, the idempotency key of each firing) or what only agents set (parent).
 */
export const ScheduleTemplate = JobSpec.omit({
  tenant: true,
  idempotencyKey: true,
  parentId: true,
  runAt: true,
});

export const CreateScheduleBody = z
  .object({
    name: Schedule.shape.name,
    rule: ScheduleRule,
    template: ScheduleTemplate,
    allowOverlap: z.boolean().default(false),
    paused: z.boolean().default(false),
  })
  .strict();

export const PatchScheduleBody = z.object({ paused: z.boolean() }).strict();

const errors = ERROR_RESPONSES;
const MUTATE_TRIES = 3;

/** `/v1/schedules`: rules that submit a job from a template (cron, every, at). */
export async function scheduleRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store, clock } = ctx;

  r.post(
    '/v1/schedules',
    {
      preHandler: requireRole('admin', 'operator'),
      schema: {
        summary: 'Create a schedule; its first run time is computed now',
        querystring: TenantQuery,
        body: CreateScheduleBody,
        response: { 201: ScheduleResponse, ...errors },
      },
    },
    async (request, reply) => {
      const tenant = requestTenant(request);
      const body = request.body;
      checkRule(body.rule, 'request body', 'body.rule');
      const now = clock();
      const first = nextRunAt(body.rule, now);
      // Only an `at` in the past has no next run (a cron that never matches failed checkRule).
      if (first === null)
        throw new InvalidInputError('request body', [
          { path: 'body.rule.at', message: `is not after now (${iso(now)}); pick a future time` },
        ]);
      await refuseTakenName(store, tenant, body.name);
      let schedule: Schedule;
      try {
        schedule = await store.createSchedule({ ...body, tenant, nextRunAt: first });
      } catch (err) {
        // Two creates racing for one name: the store's unique key refused the second.
        await refuseTakenName(store, tenant, body.name);
        throw err;
      }
      request.log.info({ scheduleId: schedule.id, nextRunAt: first }, 'schedule created');
      return reply.status(201).send({ schedule });
    },
  );

  r.get(
    '/v1/schedules',
    {
      preHandler: requireRole('admin', 'operator'),
      schema: {
        summary: 'List the schedules of a tenant, by name',
        querystring: TenantQuery,
        response: { 200: ScheduleListResponse, ...errors },
      },
    },
    async (request) => ({ items: await store.listSchedules(requestTenant(request)) }),
  );

  r.get(
    '/v1/schedules/:id',
    {
      preHandler: requireRole('admin', 'operator'),
      schema: {
        summary: 'A schedule with its next and last run',
        params: IdParams,
        querystring: TenantQuery,
        response: { 200: ScheduleResponse, ...errors },
      },
    },
    async (request) => ({
      schedule: await readSchedule(store, requestTenant(request), request.params.id),
    }),
  );

  r.patch(
    '/v1/schedules/:id',
    {
      preHandler: requireRole('admin', 'operator'),
      schema: {
        summary: 'Pause or resume a schedule; resuming counts the next run from now',
        params: IdParams,
        querystring: TenantQuery,
        body: PatchScheduleBody,
        response: { 200: ScheduleResponse, ...errors },
      },
    },
    async (request) => {
      const tenant = requestTenant(request);
      const { paused } = request.body;
      const schedule = await setPaused(store, tenant, request.params.id, paused, clock);
      request.log.info(
        { scheduleId: schedule.id, paused },
        paused ? 'schedule paused' : 'schedule resumed',
      );
      return { schedule };
    },
  );

  r.delete(
    '/v1/schedules/:id',
    {
      preHandler: requireRole('admin', 'operator'),
      schema: {
        summary: 'Delete a schedule; jobs it already submitted stay',
        params: IdParams,
        querystring: TenantQuery,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      await store.deleteSchedule(requestTenant(request), request.params.id);
      request.log.info({ scheduleId: request.params.id }, 'schedule deleted');
      return reply.status(204).send(null);
    },
  );
}

const iso = (ms: number) => new Date(ms).toISOString();

async function readSchedule(store: Store, tenant: string, id: string): Promise<Schedule> {
  const schedule = await store.getSchedule(tenant, id);
  if (schedule === null) throw new NotFoundError('schedule', id);
  return schedule;
}

/** Names are unique per tenant (the CLI finds schedules by name). */
async function refuseTakenName(store: Store, tenant: string, name: string): Promise<void> {
  const taken = (await store.listSchedules(tenant)).find((s) => s.name === name);
  if (taken !== undefined)
    throw new ApiError(
      409,
      'conflict',
      `a schedule named "${name}" already exists (${taken.id}); pick another name or delete that one first`,
    );
}

/**
 * Pauses or resumes. Resuming counts the next run from now: time spent paused is not caught
 * up. The scheduler may advance the schedule at the same moment, so a rev conflict is retried.
 */
async function setPaused(
  store: Store,
  tenant: string,
  id: string,
  paused: boolean,
  clock: () => number,
): Promise<Schedule> {
  for (let attempt = 1; ; attempt++) {
    const current = await readSchedule(store, tenant, id);
    if (current.paused === paused) return current;
    const patch = paused ? { paused } : { paused, nextRunAt: nextRunAt(current.rule, clock()) };
    try {
      return await store.updateSchedule(tenant, id, current.rev, patch);
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= MUTATE_TRIES) throw err;
    }
  }
}
