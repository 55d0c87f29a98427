import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Store } from '../src/store/port.js';
import { openPostgresStore } from '../src/store/postgres/open.js';
import { openSqliteStore } from '../src/store/sqlite/open.js';
import type { Variant } from './plan.js';

let schemaCounter = 0;

async function dropSchema(connectionString: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** What opening a store needs to know of a run: the store, its durability, its concurrency. */
export type StoreSetup = Pick<Variant, 'store' | 'durability' | 'concurrency'>;

/**
 * Opens a fresh, empty store for `variant`, runs `body` on it, then closes it and removes what
 * it created (the temp directory; the PostgreSQL schema), also when `body` throws.
 */
export async function withFreshStore<T>(
  variant: StoreSetup,
  pgUrl: string,
  body: (store: Store, where: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-bench-'));
  const blobDir = join(dir, 'blobs');
  let schema: string | undefined;
  try {
    let store: Store;
    let where: string;
    if (variant.store === 'sqlite') {
      where = join(dir, 'fleet.db');
      store = await openSqliteStore({ path: where, blobDir, durability: variant.durability });
    } else {
      schema = `bench_${process.pid}_${++schemaCounter}`;
      await dropSchema(pgUrl, schema);
      where = `schema ${schema}`;
      store = await openPostgresStore({
        connectionString: pgUrl,
        schema,
        blobDir,
        poolSize: variant.concurrency + 2,
      });
    }
    try {
      return await body(store, where);
    } finally {
      await store.close();
    }
  } finally {
    try {
      if (schema !== undefined) await dropSchema(pgUrl, schema);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
