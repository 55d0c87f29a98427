import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { EventInput, AppendEventsResponse, EventPageResponse } from '../../core/index.js';
import { requireRole } from '../auth.js';
import type { ServerContext } from '../server-context.js';
import { ERROR_RESPONSES, IdParams, TenantQuery } from './common.js';
import { type FollowHandle, followEvents } from '../sse-stream.js';
import { readableJob } from './jobs.js';

const flag = z
  .enum(['0', '1', 'true', 'false'])
  .transform((v) => v === '1' || v === 'true')
  .default(false);

export const EventsQuery = z
  .object({
    tenant: z.string().optional(),
    /** Events with a seq above this one. */
    after: z.coerce.number().int().min(0).default(0),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    /** Stream as Server-Sent Events instead of one page. */
    follow: flag,
  })
  .strict();
const EventsHeaders = z.looseObject({
  /** Where a reconnecting EventSource resumes; wins over `?after=`. */
  'last-event-id': z
    .string()
    .regex(/^\d{1,15}$/, 'expected the seq of the last event received')
    .optional(),
});

/** What a writer sends: an event type is one line, and `end` is the stream's own. */
const PostedEvent = EventInput.extend({
  type: EventInput.shape.type
    .regex(/^[^\r\n]*$/, 'must not contain line breaks')
    .refine((t) => t !== 'end', '"end" is reserved for the end of an event stream'),
}).strict();
export const AppendEventsBody = z
  .object({
    /** The writer's lease epoch: a stale one writes nothing. */
    epoch: z.number().int().positive(),
    events: z.array(PostedEvent).min(1).max(10_000),
  })
  .strict();

const errors = ERROR_RESPONSES;

/** `/v1/jobs/:id/events`: read a job's stream a page at a time or live, and append to it. */
export async function eventRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store, hub } = ctx;
  const streams = new Set<FollowHandle>();
  // Open streams would hold the server open forever: end them when the app closes.
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.close();
  });

  r.get(
    '/v1/jobs/:id/events',
    {
      preHandler: requireRole('admin', 'operator', 'factory', 'agent'),
      schema: {
        summary: "A job's events in seq order; with follow=1 a text/event-stream that stays open",
        params: IdParams,
        querystring: EventsQuery,
        headers: EventsHeaders,
        response: { 200: EventPageResponse, ...errors },
      },
    },
    async (request, reply) => {
      const job = await readableJob(store, request, request.params.id);
      const q = request.query;
      if (!q.follow) {
        const items = await store.readEvents(job.tenant, job.id, {
          afterSeq: q.after,
          limit: q.limit,
        });
        return { items, next: items.length === q.limit ? items[items.length - 1]!.seq : null };
      }
      const lastId = request.headers['last-event-id'];
      reply.hijack();
      const stream = followEvents(
        request.raw,
        reply.raw,
        {
          stage: async () => (await store.getJob(job.tenant, job.id))?.stage ?? null,
          read: (afterSeq, limit) => store.readEvents(job.tenant, job.id, { afterSeq, limit }),
          subscribe: (wake) => hub.subscribe(job.id, wake),
        },
        {
          afterSeq: lastId === undefined ? q.after : Number(lastId),
          headers: reply.getHeaders(),
          onError: (err) => request.log.error({ err, jobId: job.id }, 'event stream failed'),
        },
      );
      streams.add(stream);
      await stream.done;
      streams.delete(stream);
      return reply;
    },
  );

  r.post(
    '/v1/jobs/:id/events',
    {
      preHandler: requireRole('factory', 'admin'),
      schema: {
        summary: "Append events to a job's stream, fenced by the writer's lease epoch",
        params: IdParams,
        querystring: TenantQuery,
        body: AppendEventsBody,
        response: { 200: AppendEventsResponse, ...errors },
      },
    },
    async (request) => {
      // Fenced writes name the job only: check the caller's tenant owns it first.
      const job = await readableJob(store, request, request.params.id);
      const seqs = await store.appendEvents(
        { jobId: job.id, epoch: request.body.epoch },
        request.body.events,
      );
      hub.publish(job.id);
      return seqs;
    },
  );
}
