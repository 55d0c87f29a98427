import type { Database } from 'better-sqlite3';
import { assertKnownSchema } from '../shared/migrations.js';
import { MIGRATIONS } from './migrations/index.js';

/**
 * Applies pending migrations in one `BEGIN IMMEDIATE` transaction. The immediate lock makes a
 * second process that starts at the same time wait (busy timeout) and then find the work done.
 */
export function migrateSqlite(db: Database): number[] {
  db.exec(
    'CREATE TABLE IF NOT EXISTS fleet_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  const run = db.transaction(() => {
    const applied = new Set(
      (db.prepare('SELECT id FROM fleet_migrations').all() as { id: number }[]).map((r) => r.id),
    );
    assertKnownSchema(applied, MIGRATIONS);
    const done: number[] = [];
    for (const m of MIGRATIONS) {
      if (applied.has(m.id)) continue;
      db.exec(m.sql);
      db.prepare('INSERT INTO fleet_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(
        m.id,
        m.name,
        Date.now(),
      );
      done.push(m.id);
    }
    return done;
  });
  return run.immediate();
}
