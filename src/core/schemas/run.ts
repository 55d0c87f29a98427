import { z } from 'zod';
import { EpochMs, Id, JsonObject, Tenant } from './common.js';

export const RUN_RESULTS = [
  'success',
  'agent_failed',
  'gate_failed',
  'timeout',
  'cancelled',
  'lease_lost',
  'crashed',
] as const;
export const RunResult = z.enum(RUN_RESULTS);
export type RunResult = z.infer<typeof RunResult>;

/** What a run cost and did, as far as the engine could tell. Every field is optional. */
export const Insights = z
  .object({
    model: z.string(),
    tokensIn: z.number().int().nonnegative(),
    tokensOut: z.number().int().nonnegative(),
    tokensCached: z.number().int().nonnegative(),
    costUsd: z.number().nonnegative(),
    /** True when cost was computed from a price table rather than reported by the CLI. */
    estimated: z.boolean(),
    turns: z.number().int().nonnegative(),
    toolCalls: z.number().int().nonnegative(),
    filesChanged: z.number().int().nonnegative(),
    linesAdded: z.number().int().nonnegative(),
    linesDeleted: z.number().int().nonnegative(),
  })
  .partial()
  .strict();
export type Insights = z.infer<typeof Insights>;

export const RunExit = z.object({
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
});
export type RunExit = z.infer<typeof RunExit>;

export const VerifyCommandResult = z.object({
  command: z.string(),
  exit: z.number().int().nullable(),
  outputTail: z.string(),
  durationMs: z.number().int().nonnegative(),
});

export const VerifyResult = z.object({
  passed: z.boolean(),
  commands: z.array(VerifyCommandResult),
});
export type VerifyResult = z.infer<typeof VerifyResult>;

export const Run = z.object({
  id: Id,
  tenant: Tenant,
  jobId: Id,
  attempt: z.number().int().positive(),
  factoryId: Id,
  engine: z.string(),
  profileSnapshot: JsonObject.nullable(),
  leaseEpoch: z.number().int().positive(),
  startedAt: EpochMs,
  endedAt: EpochMs.nullable(),
  exit: RunExit.nullable(),
  verifyResult: VerifyResult.nullable(),
  result: RunResult.nullable(),
  /** Free-form outcome data (deliverable commit, summary, error text). */
  output: JsonObject.nullable(),
  insights: Insights,
});
export type Run = z.infer<typeof Run>;
