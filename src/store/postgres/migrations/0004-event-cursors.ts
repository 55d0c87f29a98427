// Landed migrations are never edited; add a new numbered file instead.
export const migration = {
  id: 4,
  name: 'event-cursors',
  sql: /* sql */ `
-- Exactly-once events from factories: per job, the highest factory-local event number stored
-- under the lease epoch that wrote it. A batch sent again after a reconnect skips what is
-- already stored. A new epoch starts its numbering again at 1.
CREATE TABLE event_cursors (
  job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  local_seq BIGINT NOT NULL
);
`,
};
