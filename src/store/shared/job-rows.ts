import type { JobSpec, PlannedJob } from '../../core/index.js';
import type { JobsTable } from './tables.js';

/** The row a new job is inserted as, in both dialects (JSON columns as text). */
export function newJobRow(spec: JobSpec, planned: PlannedJob, now: number): JobsTable {
  return {
    id: planned.id,
    tenant: spec.tenant,
    key: spec.key,
    idempotency_key: spec.idempotencyKey,
    parent_id: planned.parentId,
    kind: spec.kind,
    stage: planned.stage,
    stage_reason: planned.stageReason,
    body_md: spec.bodyMd,
    manifest: JSON.stringify(spec.manifest),
    priority: spec.priority,
    capabilities: JSON.stringify([...new Set(spec.capabilities)].sort()),
    engine: spec.engine,
    profile: spec.profile,
    deps: JSON.stringify(planned.deps),
    lock: spec.lock,
    timeout_ms: spec.timeoutMs,
    max_attempts: spec.maxAttempts,
    attempts: 0,
    run_at: spec.runAt ?? now,
    verify: JSON.stringify(spec.verify),
    checkpoint: null,
    requires_approval: spec.requiresApproval ? 1 : 0,
    approved_at: null,
    lease_epoch: 0,
    lease_holder: null,
    lease_expires_at: null,
    lease_renewals: 0,
    event_seq: 1,
    last_error: planned.stageReason === 'dep_failed' ? 'a dependency failed' : null,
    rev: 1,
    created_at: now,
    updated_at: now,
    finished_at: planned.stage === 'failed' ? now : null,
  };
}

/** Every column of `jobs`, in table order. */
export const JOB_COLUMNS: readonly (keyof JobsTable)[] = [
  'id',
  'tenant',
  'key',
  'idempotency_key',
  'parent_id',
  'kind',
  'stage',
  'stage_reason',
  'body_md',
  'manifest',
  'priority',
  'capabilities',
  'engine',
  'profile',
  'deps',
  'lock',
  'timeout_ms',
  'max_attempts',
  'attempts',
  'run_at',
  'verify',
  'checkpoint',
  'requires_approval',
  'approved_at',
  'lease_epoch',
  'lease_holder',
  'lease_expires_at',
  'lease_renewals',
  'event_seq',
  'last_error',
  'rev',
  'created_at',
  'updated_at',
  'finished_at',
];

/** Parses a `name@version` profile reference; a bare name means the newest version. */
export function parseProfileRef(ref: string): { name: string; version: number | undefined } {
  const at = ref.lastIndexOf('@');
  if (at <= 0) return { name: ref, version: undefined };
  const version = Number(ref.slice(at + 1));
  return Number.isInteger(version) && version > 0
    ? { name: ref.slice(0, at), version }
    : { name: ref, version: undefined };
}
