import { z } from 'zod';
import { EpochMs, Id, JsonObject, Rev, Tenant } from './common.js';
import { Lease } from './lease.js';

export const JOB_STAGES = [
  'blocked',
  'queued',
  'claimed',
  'running',
  'verifying',
  'succeeded',
  'failed',
  'cancelled',
] as const;
export const JobStage = z.enum(JOB_STAGES);
export type JobStage = z.infer<typeof JobStage>;

/** Stages in which a job holds a lease (a factory is working on it). */
export const ACTIVE_STAGES = ['claimed', 'running', 'verifying'] as const satisfies JobStage[];
export const TERMINAL_STAGES = ['succeeded', 'failed', 'cancelled'] as const satisfies JobStage[];

export const JobKind = z.enum(['leaf', 'composite']);
export type JobKind = z.infer<typeof JobKind>;

/** Work in progress committed to a branch, so a retry can start from it. */
export const Checkpoint = z.object({
  wipBranch: z.string().min(1),
  wipBase: z.string().min(1),
  wipCommit: z.string().min(1),
});
export type Checkpoint = z.infer<typeof Checkpoint>;

const JobKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/, 'letters, digits, "_", ".", ":", "/" or "-"');

/**
 * What a caller submits. Everything but `tenant` and `bodyMd` has a default. `deps` names other
 * jobs by key or id, in the same batch or already stored; the store resolves them to ids.
 */
export const JobSpec = z
  .object({
    tenant: Tenant,
    bodyMd: z.string(),
    key: JobKey.nullable().default(null),
    idempotencyKey: z.string().min(1).max(200).nullable().default(null),
    /** A stored job's id, or the key of a job in the same batch (a plan and its jobs). */
    parentId: Id.nullable().default(null),
    kind: JobKind.default('leaf'),
    manifest: JsonObject.default({}),
    priority: z.number().int().min(-1000).max(1000).default(0),
    capabilities: z.array(z.string().min(1)).default([]),
    engine: z.string().min(1).default('shell'),
    profile: z.string().min(1).nullable().default(null),
    deps: z.array(z.string().min(1)).default([]),
    lock: z.string().min(1).max(200).nullable().default(null),
    timeoutMs: z.number().int().positive().nullable().default(null),
    maxAttempts: z.number().int().min(1).max(100).default(3),
    runAt: EpochMs.nullable().default(null),
    verify: z.array(z.string().min(1)).default([]),
    requiresApproval: z.boolean().default(false),
  })
  // An unknown field is most likely a typo ("timout"): say so rather than drop it.
  .strict();
export type JobSpecInput = z.input<typeof JobSpec>;
export type JobSpec = z.output<typeof JobSpec>;

export const Job = z.object({
  id: Id,
  tenant: Tenant,
  key: z.string().nullable(),
  idempotencyKey: z.string().nullable(),
  parentId: Id.nullable(),
  kind: JobKind,
  stage: JobStage,
  /** Why the job is in its stage, when that is not obvious: `dep_failed`, `cancelled_by_user`… */
  stageReason: z.string().nullable(),
  bodyMd: z.string(),
  manifest: JsonObject,
  priority: z.number().int(),
  capabilities: z.array(z.string()),
  engine: z.string(),
  profile: z.string().nullable(),
  /** Resolved job ids. */
  deps: z.array(Id),
  lock: z.string().nullable(),
  timeoutMs: z.number().int().nullable(),
  maxAttempts: z.number().int(),
  /** Attempts started so far (claims). */
  attempts: z.number().int().nonnegative(),
  runAt: EpochMs,
  verify: z.array(z.string()),
  checkpoint: Checkpoint.nullable(),
  requiresApproval: z.boolean(),
  approvedAt: EpochMs.nullable(),
  /** The epoch of the latest lease; 0 before the first claim. */
  leaseEpoch: z.number().int().nonnegative(),
  lease: Lease.nullable(),
  lastError: z.string().nullable(),
  rev: Rev,
  createdAt: EpochMs,
  updatedAt: EpochMs,
  finishedAt: EpochMs.nullable(),
});
export type Job = z.infer<typeof Job>;

/** Fields a caller may change on a stored job (guarded by `rev`). */
export const JobPatch = z
  .object({
    priority: z.number().int().min(-1000).max(1000),
    manifest: JsonObject,
    bodyMd: z.string(),
    runAt: EpochMs,
    timeoutMs: z.number().int().positive().nullable(),
    maxAttempts: z.number().int().min(1).max(100),
    checkpoint: Checkpoint.nullable(),
  })
  .partial()
  .strict();
export type JobPatch = z.infer<typeof JobPatch>;
