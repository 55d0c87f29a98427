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
  manifest TEXT NOT NULL,
  priority INTEGER NOT NULL,
  capabilities TEXT NOT NULL,
  engine TEXT NOT NULL,
  profile TEXT,
  deps TEXT NOT NULL,
  lock TEXT,
  timeout_ms INTEGER,
  max_attempts INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  run_at INTEGER NOT NULL,
  verify TEXT NOT NULL,
  checkpoint TEXT,
  requires_approval INTEGER NOT NULL DEFAULT 0,
  approved_at INTEGER,
  lease_epoch INTEGER NOT NULL DEFAULT 0,
  lease_holder TEXT,
  lease_expires_at INTEGER,
  lease_renewals INTEGER NOT NULL DEFAULT 0,
  event_seq INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  rev INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER
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
) WITHOUT ROWID;
CREATE INDEX job_deps_dep ON job_deps (dep_id);

-- One row per held lock: the primary key makes a second holder impossible.
CREATE TABLE locks (
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  acquired_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, name)
) WITHOUT ROWID;
CREATE INDEX locks_job ON locks (job_id);

CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  factory_id TEXT NOT NULL,
  engine TEXT NOT NULL,
  profile_snapshot TEXT,
  lease_epoch INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  exit TEXT,
  verify_result TEXT,
  result TEXT,
  output TEXT,
  insights TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE UNIQUE INDEX runs_job_epoch ON runs (job_id, lease_epoch);

CREATE TABLE events (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  tenant TEXT NOT NULL,
  type TEXT NOT NULL,
  at INTEGER NOT NULL,
  epoch INTEGER,
  data TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

CREATE TABLE artifacts (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  run_id TEXT,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  media_type TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX artifacts_job ON artifacts (job_id, created_at);

CREATE TABLE factories (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  capabilities TEXT NOT NULL,
  seats INTEGER NOT NULL,
  version TEXT NOT NULL,
  status TEXT NOT NULL,
  last_seen_at INTEGER,
  rev INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (tenant, name)
);

CREATE TABLE profiles (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  persona TEXT NOT NULL,
  defaults TEXT NOT NULL,
  prompt_parts TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (tenant, name, version)
);

CREATE TABLE signals (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER,
  drained_at INTEGER,
  expires_at INTEGER,
  rev INTEGER NOT NULL DEFAULT 1,
  UNIQUE (tenant, job_id, key)
);

CREATE TABLE schedules (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  rule TEXT NOT NULL,
  template TEXT NOT NULL,
  paused INTEGER NOT NULL DEFAULT 0,
  allow_overlap INTEGER NOT NULL DEFAULT 0,
  next_run_at INTEGER,
  last_run_at INTEGER,
  last_job_id TEXT,
  rev INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (tenant, name)
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0;
`,
};
