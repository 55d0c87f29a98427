// Landed migrations are never edited; add a new numbered file instead.
export const migration = {
  id: 2,
  name: 'tokens',
  sql: /* sql */ `
CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'factory', 'agent')),
  tenants JSONB NOT NULL,
  job_id TEXT,
  -- SHA-256 of the secret: the secret itself is never stored.
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT
);
CREATE INDEX tokens_tenant ON tokens (tenant, created_at);
`,
};
