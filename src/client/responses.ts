import { z } from 'zod';
import { Artifact, Factory, Insights, Job, JobEvent, JobStage, Run, Token } from '../core/index.js';

/**
 * The bodies the server answers with, built from the core record schemas. Unknown fields are
 * dropped rather than refused, so a newer server that adds a field still talks to this client.
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

/** An OpenAPI 3 document: its top-level fields checked, everything else passed through. */
export const OpenApiResponse = z.looseObject({
  openapi: z.string().startsWith('3.'),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
});
export type OpenApiDocument = z.infer<typeof OpenApiResponse>;
