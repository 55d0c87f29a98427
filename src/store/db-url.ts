/**
 * Whether a `--db` value names a PostgreSQL server (else it is a SQLite file path). Kept apart
 * from the openers so callers can ask without loading a database driver.
 */
export function isPostgresUrl(db: string | undefined): db is string {
  return db !== undefined && /^postgres(ql)?:\/\//.test(db);
}
