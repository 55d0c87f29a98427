// Landed migrations are never edited; add a new numbered file instead.
export const migration = {
  id: 3,
  name: 'plans',
  sql: /* sql */ `
-- The plan controller looks for unfinished plans (composite jobs) on every tick.
CREATE INDEX jobs_open_composites ON jobs (id)
  WHERE kind = 'composite' AND stage IN ('blocked', 'queued');
`,
};
