// Landed migrations are never edited; add a new numbered file instead.
export const migration = {
  id: 1,
  name: 'initial',
  sql: /* sql */ `
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  key TEXT,
  idempotency_key TEXT,
  parent_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
  kind TEXT NOT NULL CHECK (kind IN ('leaf', 'composite')),
  stage TEXT NOT NULL CHECK (stage IN ('blocked','queued','claimed','running','verifying','succeeded','failed','cancelled')),
  stage_reason TEXT,
  body_md TEXT NOT NULL,
  manifest JSONB NOT NULL,
  priority BIGINT NOT NULL,
  capabilities JSONB NOT NULL,
  engine TEXT NOT NULL,
  profile TEXT,
  deps JSONB NOT NULL,
  lock TEXT,
  timeout_ms BIGINT,
  max_attempts BIGINT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0,
  run_at BIGINT NOT NULL,
  verify JSONB NOT NULL,
  checkpoint JSONB,
  requires_approval BIGINT NOT NULL DEFAULT 0,
  approved_at BIGINT,
  lease_epoch BIGINT NOT NULL DEFAULT 0,
  lease_holder TEXT,
  lease_expires_at BIGINT,
  lease_renewals BIGINT NOT NULL DEFAULT 0,
  event_seq BIGINT NOT NULL DEFAULT 0,
  last_error TEXT,
  rev BIGINT NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  finished_at BIGINT
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The claim scan: queued leaf jobs in claim order.
CREATE INDEX jobs_claim ON jobs (tenant, priority DESC, run_at, id) WHERE stage = 'queued' AND kind = 'leaf';
CREATE INDEX jobs_lease_expiry ON jobs (lease_expires_at) WHERE lease_holder IS NOT NULL;
CREATE INDEX jobs_tenant_stage ON jobs (tenant, stage, id);
CREATE INDEX jobs_tenant_key ON jobs (tenant, key, created_at) WHERE key IS NOT NULL;
CREATE INDEX jobs_tenant_id ON jobs (tenant, id);
CREATE INDEX jobs_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE job_deps (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  dep_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  PRIMARY KEY (job_id, dep_id)
);
CREATE INDEX job_deps_dep ON job_deps (dep_id);

-- One row per held lock: the primary key makes a second holder impossible.
CREATE TABLE locks (
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  acquired_at BIGINT NOT NULL,
  PRIMARY KEY (tenant, name)
);
CREATE INDEX locks_job ON locks (job_id);

CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  attempt BIGINT NOT NULL,
  factory_id TEXT NOT NULL,
  engine TEXT NOT NULL,
  profile_snapshot JSONB,
  lease_epoch BIGINT NOT NULL,
  started_at BIGINT NOT NULL,
  ended_at BIGINT,
  exit JSONB,
  verify_result JSONB,
  result TEXT,
  output JSONB,
  insights JSONB NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX runs_job_epoch ON runs (job_id, lease_epoch);

CREATE TABLE events (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  seq BIGINT NOT NULL,
  tenant TEXT NOT NULL,
  type TEXT NOT NULL,
  at BIGINT NOT NULL,
  epoch BIGINT,
  data JSONB NOT NULL,
  PRIMARY KEY (job_id, seq)
);

CREATE TABLE artifacts (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  run_id TEXT,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size BIGINT NOT NULL,
  media_type TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX artifacts_job ON artifacts (job_id, created_at);

CREATE TABLE factories (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  capabilities JSONB NOT NULL,
  seats BIGINT NOT NULL,
  version TEXT NOT NULL,
  status TEXT NOT NULL,
  last_seen_at BIGINT,
  rev BIGINT NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (tenant, name)
);

CREATE TABLE profiles (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  version BIGINT NOT NULL,
  persona TEXT NOT NULL,
  defaults JSONB NOT NULL,
  prompt_parts JSONB NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE (tenant, name, version)
);

CREATE TABLE signals (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  delivered_at BIGINT,
  drained_at BIGINT,
  expires_at BIGINT,
  rev BIGINT NOT NULL DEFAULT 1,
  UNIQUE (tenant, job_id, key)
);

CREATE TABLE schedules (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  rule JSONB NOT NULL,
  template JSONB NOT NULL,
  paused BIGINT NOT NULL DEFAULT 0,
  allow_overlap BIGINT NOT NULL DEFAULT 0,
  next_run_at BIGINT,
  last_run_at BIGINT,
  last_job_id TEXT,
  rev BIGINT NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (tenant, name)
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0;
`,
};
