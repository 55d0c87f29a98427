import type { Generated } from 'kysely';

/**
 * Row shapes as both dialects store them. JSON columns hold text on SQLite and jsonb on
 * PostgreSQL (read back as a string or an object: the mappers accept both); timestamps are
 * integer milliseconds; booleans are 0/1 integers so one shape serves both dialects.
 */
type Json = unknown;

export interface JobsTable {
  id: string;
  tenant: string;
  key: string | null;
  idempotency_key: string | null;
  parent_id: string | null;
  kind: string;
  stage: string;
  stage_reason: string | null;
  body_md: string;
  manifest: Json;
  priority: number;
  capabilities: Json;
  engine: string;
  profile: string | null;
  deps: Json;
  lock: string | null;
  timeout_ms: number | null;
  max_attempts: number;
  attempts: number;
  run_at: number;
  verify: Json;
  checkpoint: Json | null;
  requires_approval: number;
  approved_at: number | null;
  lease_epoch: number;
  lease_holder: string | null;
  lease_expires_at: number | null;
  lease_renewals: number;
  event_seq: number;
  last_error: string | null;
  rev: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface RunsTable {
  id: string;
  tenant: string;
  job_id: string;
  attempt: number;
  factory_id: string;
  engine: string;
  profile_snapshot: Json | null;
  lease_epoch: number;
  started_at: number;
  ended_at: number | null;
  exit: Json | null;
  verify_result: Json | null;
  result: string | null;
  output: Json | null;
  insights: Json;
}

export interface EventsTable {
  job_id: string;
  seq: number;
  tenant: string;
  type: string;
  at: number;
  epoch: number | null;
  data: Json;
}

export interface ArtifactsTable {
  id: string;
  tenant: string;
  job_id: string;
  run_id: string | null;
  kind: string;
  name: string;
  sha256: string;
  size: number;
  media_type: string;
  created_at: number;
}

export interface FactoriesTable {
  id: string;
  tenant: string;
  name: string;
  kind: string;
  capabilities: Json;
  seats: number;
  version: string;
  status: string;
  last_seen_at: number | null;
  rev: number;
  created_at: number;
  updated_at: number;
}

export interface ProfilesTable {
  id: string;
  tenant: string;
  name: string;
  version: number;
  persona: string;
  defaults: Json;
  prompt_parts: Json;
  created_at: number;
}

export interface SignalsTable {
  id: string;
  tenant: string;
  job_id: string;
  key: string;
  body: string;
  status: string;
  created_at: number;
  delivered_at: number | null;
  drained_at: number | null;
  expires_at: number | null;
  rev: number;
}

export interface SchedulesTable {
  id: string;
  tenant: string;
  name: string;
  rule: Json;
  template: Json;
  paused: number;
  allow_overlap: number;
  next_run_at: number | null;
  last_run_at: number | null;
  last_job_id: string | null;
  rev: number;
  created_at: number;
  updated_at: number;
}

export interface JobDepsTable {
  job_id: string;
  dep_id: string;
}

export interface LocksTable {
  tenant: string;
  name: string;
  job_id: string;
  acquired_at: number;
}

export interface TokensTable {
  id: string;
  tenant: string;
  name: string;
  role: string;
  tenants: Json;
  job_id: string | null;
  hash: string;
  prefix: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface MigrationsTable {
  id: number;
  name: string;
  applied_at: Generated<number>;
}

export interface Tables {
  jobs: JobsTable;
  job_deps: JobDepsTable;
  locks: LocksTable;
  runs: RunsTable;
  events: EventsTable;
  artifacts: ArtifactsTable;
  factories: FactoriesTable;
  profiles: ProfilesTable;
  signals: SignalsTable;
  schedules: SchedulesTable;
  tokens: TokensTable;
  fleet_migrations: MigrationsTable;
}
