import { z } from 'zod';
import { PlanState } from './plan.js';
import { Artifact } from './schemas/artifact.js';
import { JobEvent } from './schemas/event.js';
import { Factory } from './schemas/factory.js';
import { Job, JobStage } from './schemas/job.js';
import { Insights, Run } from './schemas/run.js';
import { Schedule } from './schemas/schedule.js';
import { Token } from './schemas/token.js';

/**
 * The bodies the API answers with, built from the record schemas: the server declares its
 * responses with them (and so the OpenAPI document), the client parses what it receives with
 * them. One source of truth for both ends. Unknown fields are dropped rather than refused, so a
 * newer server that adds a field still talks to an older client.
 */

export const HealthResponse = z.object({
  ok: z.literal(true),
  version: z.string(),
  store: z.string(),
});
export type Health = z.infer<typeof HealthResponse>;

export const SubmitResponse = z.object({
  jobs: z.array(z.object({ job: Job, created: z.boolean() })),
});
export type SubmitResult = z.infer<typeof SubmitResponse>;

export const JobPageResponse = z.object({ items: z.array(Job), next: z.string().nullable() });
export type JobPage = z.infer<typeof JobPageResponse>;

export const JobInsightsTotals = Insights.pick({
  tokensIn: true,
  tokensOut: true,
  tokensCached: true,
  costUsd: true,
  turns: true,
  toolCalls: true,
}).required();
export type JobInsightsTotals = z.infer<typeof JobInsightsTotals>;

export const JobDetailResponse = z.object({
  job: Job,
  runs: z.array(Run),
  insights: JobInsightsTotals,
});
export type JobDetail = z.infer<typeof JobDetailResponse>;

export const JobResponse = z.object({ job: Job });

export const EventPageResponse = z.object({
  items: z.array(JobEvent),
  next: z.number().int().nullable(),
});
export type EventPage = z.infer<typeof EventPageResponse>;

export const AppendEventsResponse = z.object({
  firstSeq: z.number().int(),
  lastSeq: z.number().int(),
});
export type AppendEventsResult = z.infer<typeof AppendEventsResponse>;

/** The data of the SSE `end` event: the stage the job finished in. */
export const StreamEnd = z.object({ stage: JobStage });

export const ArtifactListResponse = z.object({ items: z.array(Artifact) });
export const ArtifactResponse = z.object({ artifact: Artifact });

export const FactoryListResponse = z.object({ items: z.array(Factory) });
export const FactoryResponse = z.object({ factory: Factory });

export const CreatedTokenResponse = z.object({ token: Token, secret: z.string().min(1) });
export type CreatedToken = z.infer<typeof CreatedTokenResponse>;
export const TokenListResponse = z.object({ items: z.array(Token) });
export const TokenResponse = z.object({ token: Token });

export const ScheduleResponse = z.object({ schedule: Schedule });
export const ScheduleListResponse = z.object({ items: z.array(Schedule) });

export const PlanSummary = z.object({ plan: Job, state: PlanState });
export type PlanSummary = z.infer<typeof PlanSummary>;
export const PlanListResponse = z.object({ items: z.array(PlanSummary) });
export const PlanDetailResponse = PlanSummary.extend({
  jobs: z.array(Job),
  /** The phase reports written so far (Markdown artifacts of the plan). */
  reports: z.array(Artifact),
});
export type PlanDetail = z.infer<typeof PlanDetailResponse>;
