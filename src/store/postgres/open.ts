import pg from 'pg';
import type { StoreOptions } from '../port.js';
import { migratePostgres } from './migrate.js';
import { PostgresStore } from './postgres-store.js';

export interface PostgresStoreOptions extends StoreOptions {
  connectionString: string;
  /** Schema holding Fleet's tables, default `fleet`. Tests use one schema each. */
  schema?: string;
  /** Pool size, default 10. */
  poolSize?: number;
}

const INT8_OID = 20;

/** Opens (creating the schema and migrating when needed) a PostgreSQL store. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const schema = options.schema ?? 'fleet';
  if (!/^[a-z_][a-z0-9_]*$/.test(schema))
    throw new Error(`invalid schema name "${schema}": use lowercase letters, digits and "_"`);
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    // Every connection resolves table names in Fleet's schema first. JIT compilation costs
    // milliseconds and only pays off for long analytic queries, never for queue statements.
    options: `-c search_path=${schema},public -c jit=off`,
    // Timestamps are int8 milliseconds; they fit a JS number, so parse them as one.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client's error (server restart) must not crash the process; the pool replaces it.
  pool.on('error', (err) =>
    options.logger?.warn({ err }, 'idle PostgreSQL connection failed; the pool replaces it'),
  );
  try {
    const client = await pool.connect();
    try {
      await migratePostgres(client, schema);
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end();
    throw err;
  }
  return new PostgresStore(pool, options);
}
