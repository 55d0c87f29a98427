import type {
  Artifact,
  Checkpoint,
  Factory,
  Insights,
  Job,
  JobEvent,
  JobKind,
  JobStage,
  JsonObject,
  Profile,
  Run,
  RunExit,
  RunResult,
  Schedule,
  ScheduleRule,
  Signal,
  SignalStatus,
  Token,
  TokenRole,
  VerifyResult,
} from '../../core/index.js';
import type {
  ArtifactsTable,
  EventsTable,
  FactoriesTable,
  JobsTable,
  ProfilesTable,
  RunsTable,
  SchedulesTable,
  SignalsTable,
  TokensTable,
} from './tables.js';

// Rows are trusted (the store wrote them), so mapping casts instead of re-validating: parsing
// every row with zod would cost more than the query on the claim path.

/** A JSON column comes back as text from SQLite and as a parsed value from PostgreSQL. */
export function json<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

function jsonOrNull<T>(value: unknown): T | null {
  return value === null || value === undefined ? null : json<T>(value);
}

/** int8 columns may arrive as strings when a driver is not told to parse them. */
function int(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

function intOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : int(value);
}

export function toJob(r: JobsTable): Job {
  const holder = r.lease_holder;
  return {
    id: r.id,
    tenant: r.tenant,
    key: r.key,
    idempotencyKey: r.idempotency_key,
    parentId: r.parent_id,
    kind: r.kind as JobKind,
    stage: r.stage as JobStage,
    stageReason: r.stage_reason,
    bodyMd: r.body_md,
    manifest: json<JsonObject>(r.manifest),
    priority: int(r.priority),
    capabilities: json<string[]>(r.capabilities),
    engine: r.engine,
    profile: r.profile,
    deps: json<string[]>(r.deps),
    lock: r.lock,
    timeoutMs: intOrNull(r.timeout_ms),
    maxAttempts: int(r.max_attempts),
    attempts: int(r.attempts),
    runAt: int(r.run_at),
    verify: json<string[]>(r.verify),
    checkpoint: jsonOrNull<Checkpoint>(r.checkpoint),
    requiresApproval: int(r.requires_approval) === 1,
    approvedAt: intOrNull(r.approved_at),
    leaseEpoch: int(r.lease_epoch),
    lease:
      holder === null
        ? null
        : {
            jobId: r.id,
            tenant: r.tenant,
            holderFactoryId: holder,
            expiresAt: int(r.lease_expires_at),
            leaseEpoch: int(r.lease_epoch),
            renewals: int(r.lease_renewals),
          },
    lastError: r.last_error,
    rev: int(r.rev),
    createdAt: int(r.created_at),
    updatedAt: int(r.updated_at),
    finishedAt: intOrNull(r.finished_at),
  };
}

export function toRun(r: RunsTable): Run {
  return {
    id: r.id,
    tenant: r.tenant,
    jobId: r.job_id,
    attempt: int(r.attempt),
    factoryId: r.factory_id,
    engine: r.engine,
    profileSnapshot: jsonOrNull<JsonObject>(r.profile_snapshot),
    leaseEpoch: int(r.lease_epoch),
    startedAt: int(r.started_at),
    endedAt: intOrNull(r.ended_at),
    exit: jsonOrNull<RunExit>(r.exit),
    verifyResult: jsonOrNull<VerifyResult>(r.verify_result),
    result: r.result as RunResult | null,
    output: jsonOrNull<JsonObject>(r.output),
    insights: json<Insights>(r.insights),
  };
}

export function toEvent(r: EventsTable): JobEvent {
  return {
    tenant: r.tenant,
    jobId: r.job_id,
    seq: int(r.seq),
    type: r.type,
    at: int(r.at),
    epoch: intOrNull(r.epoch),
    data: json<JsonObject>(r.data),
  };
}

export function toArtifact(r: ArtifactsTable): Artifact {
  return {
    id: r.id,
    tenant: r.tenant,
    jobId: r.job_id,
    runId: r.run_id,
    kind: r.kind,
    name: r.name,
    sha256: r.sha256,
    size: int(r.size),
    mediaType: r.media_type,
    createdAt: int(r.created_at),
  };
}

export function toFactory(r: FactoriesTable): Factory {
  return {
    id: r.id,
    tenant: r.tenant,
    name: r.name,
    kind: r.kind as Factory['kind'],
    capabilities: json<string[]>(r.capabilities),
    seats: int(r.seats),
    version: r.version,
    status: r.status as Factory['status'],
    lastSeenAt: intOrNull(r.last_seen_at),
    rev: int(r.rev),
    createdAt: int(r.created_at),
    updatedAt: int(r.updated_at),
  };
}

export function toProfile(r: ProfilesTable): Profile {
  return {
    id: r.id,
    tenant: r.tenant,
    name: r.name,
    version: int(r.version),
    persona: r.persona,
    defaults: json<Profile['defaults']>(r.defaults),
    promptParts: json<string[]>(r.prompt_parts),
    createdAt: int(r.created_at),
  };
}

export function toSignal(r: SignalsTable): Signal {
  return {
    id: r.id,
    tenant: r.tenant,
    jobId: r.job_id,
    key: r.key,
    body: r.body,
    status: r.status as SignalStatus,
    createdAt: int(r.created_at),
    deliveredAt: intOrNull(r.delivered_at),
    drainedAt: intOrNull(r.drained_at),
    expiresAt: intOrNull(r.expires_at),
    rev: int(r.rev),
  };
}

export function toSchedule(r: SchedulesTable): Schedule {
  return {
    id: r.id,
    tenant: r.tenant,
    name: r.name,
    rule: json<ScheduleRule>(r.rule),
    template: json<JsonObject>(r.template),
    paused: int(r.paused) === 1,
    allowOverlap: int(r.allow_overlap) === 1,
    nextRunAt: intOrNull(r.next_run_at),
    lastRunAt: intOrNull(r.last_run_at),
    lastJobId: r.last_job_id,
    rev: int(r.rev),
    createdAt: int(r.created_at),
    updatedAt: int(r.updated_at),
  };
}

export function toToken(r: TokensTable): Token {
  return {
    id: r.id,
    tenant: r.tenant,
    name: r.name,
    role: r.role as TokenRole,
    tenants: json<string[]>(r.tenants),
    jobId: r.job_id,
    prefix: r.prefix,
    createdAt: int(r.created_at),
    expiresAt: intOrNull(r.expires_at),
    revokedAt: intOrNull(r.revoked_at),
  };
}
