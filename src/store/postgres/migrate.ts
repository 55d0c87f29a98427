import type { PoolClient } from 'pg';
import { assertKnownSchema } from '../shared/migrations.js';
import { MIGRATIONS } from './migrations/index.js';

/**
 * Applies pending migrations in one transaction under a transaction-scoped advisory lock keyed
 * by the schema, so replicas starting together migrate once: the others wait on the lock and
 * then find every migration recorded.
 */
export async function migratePostgres(client: PoolClient, schema: string): Promise<number[]> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`fleet:migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.fleet_migrations
         (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
    );
    const { rows } = await client.query<{ id: number }>(
      `SELECT id FROM ${quoteIdent(schema)}.fleet_migrations`,
    );
    const applied = new Set(rows.map((r) => r.id));
    assertKnownSchema(applied, MIGRATIONS);
    const done: number[] = [];
    for (const m of MIGRATIONS) {
      if (applied.has(m.id)) continue;
      await client.query(m.sql);
      await client.query(
        `INSERT INTO ${quoteIdent(schema)}.fleet_migrations (id, name, applied_at) VALUES ($1, $2, $3)`,
        [m.id, m.name, Date.now()],
      );
      done.push(m.id);
    }
    await client.query('COMMIT');
    return done;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
