import { z } from 'zod';
import { Id } from '../schemas/common.js';
import { EventInput } from '../schemas/event.js';
import { FactoryKind } from '../schemas/factory.js';
import { Checkpoint, Job } from '../schemas/job.js';
import { Lease } from '../schemas/lease.js';
import { Insights, Run, RunExit, RunResult, VerifyResult } from '../schemas/run.js';
import { JsonObject } from '../schemas/common.js';

/**
 * The factory protocol: JSON messages over the WebSocket `/v1/factory`. A factory opens two
 * sockets, one per lane: `control` (hello, reconcile, claim, heartbeat, stage changes,
 * completion; the server pushes wake and cancel) and `events` (agent output). Lease traffic
 * never waits behind a flood of events because the two never share a socket.
 *
 * Every request carries a numeric `id`; the server answers each with one `reply` of the same
 * id, holding either `result` or `error`. Requests on one socket are handled in order.
 */
export const PROTOCOL_VERSION = 1;

export const Lane = z.enum(['control', 'events']);
export type Lane = z.infer<typeof Lane>;

const RequestId = z.number().int().nonnegative();
export const FencedRefSchema = z.object({ jobId: Id, epoch: z.number().int().positive() }).strict();

const req = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) =>
  z.object({ type: z.literal(type), id: RequestId, ...shape }).strict();

const report = {
  exit: RunExit.nullable().optional(),
  verifyResult: VerifyResult.nullable().optional(),
  insights: Insights.optional(),
  output: JsonObject.nullable().optional(),
  checkpoint: Checkpoint.nullable().optional(),
};

export const FactoryRequest = z.discriminatedUnion('type', [
  req('hello', {
    protocol: z.literal(PROTOCOL_VERSION),
    lane: Lane,
    name: z.string().min(1).max(200),
    kind: FactoryKind.default('factory'),
    capabilities: z.array(z.string().min(1)).max(100).default([]),
    seats: z.number().int().min(0).max(10_000).default(1),
    version: z.string().max(100).default('unknown'),
    /**
     * The same factory process coming back after a dropped connection: a drain set while it
     * was connected stays in force. A fresh process (no `reconnect`) registers as online.
     */
    reconnect: z.boolean().default(false),
  }),
  /** The runs the factory still holds after a (re)connect: the server says which are valid. */
  req('reconcile', { runs: z.array(FencedRefSchema).max(10_000) }),
  req('claim', {
    limit: z.number().int().min(1).max(1_000),
    leaseTtlMs: z
      .number()
      .int()
      .min(1_000)
      .max(24 * 3_600_000)
      .optional(),
  }),
  /** The factory drains itself (e.g. `drain` over its local socket): no new claims from now. */
  req('drain', {}),
  /** One heartbeat renews every lease the factory holds. */
  req('heartbeat', {
    leases: z.array(FencedRefSchema).max(10_000),
    ttlMs: z
      .number()
      .int()
      .min(1_000)
      .max(24 * 3_600_000)
      .optional(),
  }),
  /** Agent output, batched across jobs; each batch is fenced by its epoch. */
  req('events', {
    batches: z
      .array(
        z
          .object({
            jobId: Id,
            epoch: z.number().int().positive(),
            /**
             * The factory's own number for the batch's first event (per job and epoch, from
             * 1, one per event). With it the append is exactly once: a batch sent again after
             * a reconnect skips the events the server already stored.
             */
            localSeq: z.number().int().positive().optional(),
            events: z.array(EventInput).min(1).max(10_000),
          })
          .strict(),
      )
      .min(1)
      .max(1_000),
  }),
  req('start', { jobId: Id, epoch: z.number().int().positive() }),
  req('verify', { jobId: Id, epoch: z.number().int().positive() }),
  req('checkpoint', { jobId: Id, epoch: z.number().int().positive(), checkpoint: Checkpoint }),
  req('complete', { jobId: Id, epoch: z.number().int().positive(), ...report }),
  req('fail', {
    jobId: Id,
    epoch: z.number().int().positive(),
    result: RunResult.exclude(['success', 'cancelled', 'lease_lost']),
    error: z.string().max(100_000),
    retryable: z.boolean().optional(),
    ...report,
  }),
]);
export type FactoryRequest = z.infer<typeof FactoryRequest>;
export type FactoryRequestInput = z.input<typeof FactoryRequest>;
export type FactoryRequestType = FactoryRequest['type'];

export const ErrorInfo = z.object({
  code: z.string(),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type ErrorInfo = z.infer<typeof ErrorInfo>;

/** What each request's successful reply holds. */
export const FactoryResults = {
  hello: z.object({
    factoryId: Id,
    leaseTtlMs: z.number().int().positive(),
    heartbeatMs: z.number().int().positive(),
    /** The factory reconnected while drained: it gets no claims. Absent from older servers. */
    draining: z.boolean().optional(),
  }),
  reconcile: z.object({ valid: z.array(FencedRefSchema), stale: z.array(FencedRefSchema) }),
  claim: z.object({
    assignments: z.array(
      z.object({
        job: Job,
        run: Run,
        lease: Lease,
        /** A job-scoped `agent` token for the run's agent (FLEET_TOKEN); see AgentTokens. */
        agentToken: z.string().optional(),
      }),
    ),
    /** The factory is drained (say, through the API): no claims until it registers anew. */
    draining: z.boolean().optional(),
  }),
  drain: z.object({ status: z.literal('draining') }),
  heartbeat: z.object({
    renewed: z.array(Lease),
    stale: z.array(FencedRefSchema.extend({ code: z.string() })),
  }),
  events: z.object({
    results: z.array(
      z.union([
        z.object({
          jobId: Id,
          ok: z.literal(true),
          firstSeq: z.number(),
          lastSeq: z.number(),
          /** Events skipped as already stored (a batch sent again); absent from older servers. */
          duplicates: z.number().int().nonnegative().optional(),
        }),
        z.object({ jobId: Id, ok: z.literal(false), error: ErrorInfo }),
      ]),
    ),
  }),
  start: z.object({ job: Job }),
  verify: z.object({ job: Job }),
  checkpoint: z.object({ job: Job }),
  complete: z.object({ job: Job }),
  fail: z.object({ job: Job }),
} satisfies Record<FactoryRequestType, z.ZodType>;
export type FactoryResult<T extends FactoryRequestType> = z.infer<(typeof FactoryResults)[T]>;

export const ServerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('reply'),
    id: RequestId,
    result: z.unknown().optional(),
    error: ErrorInfo.optional(),
  }),
  /** Claimable work may be waiting: claim now instead of at the next poll. */
  z.object({ type: z.literal('wake') }),
  /** Stop this run: the job was cancelled (its lease is already fenced off). */
  z.object({
    type: z.literal('cancel'),
    jobId: Id,
    epoch: z.number().int().positive(),
    reason: z.string(),
  }),
  /** A message that could not be read at all (not JSON, no id): the socket stays open. */
  z.object({ type: z.literal('error'), error: ErrorInfo }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
