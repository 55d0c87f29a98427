import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, inject, onTestFinished } from 'vitest';
import type { Store, StoreOptions } from '../../src/store/index.js';
import { openPostgresStore } from '../../src/store/postgres/open.js';
import { openSqliteStore } from '../../src/store/sqlite/open.js';
import { TestClock } from './clock.js';

export type StoreName = 'sqlite' | 'postgres';

export interface OpenedStore {
  store: Store;
  clock: TestClock;
  /** Where this store lives: a SQLite file path, or a PostgreSQL schema. */
  location: string;
  /** Opens another handle on the same database (another process would do the same). */
  reopen(options?: Partial<StoreOptions>): Promise<Store>;
}

export interface StoreKind {
  name: StoreName;
  available: boolean;
  /**
   * A fresh, empty store on a test clock, closed (and its database dropped) when the test
   * finishes. `random` defaults to 0.5 so retry delays are predictable.
   */
  open(options?: Partial<StoreOptions>): Promise<OpenedStore>;
}

let counter = 0;
const runId = inject('runId');
/** `fleet_test_<run>_<worker>_<n>`: the run's teardown drops exactly its own schemas. */
export const testSchemaName = () => `fleet_test_${runId}_${process.pid}_${counter++}`;

function baseOptions(clock: TestClock, dir: string, options: Partial<StoreOptions>): StoreOptions {
  return { blobDir: join(dir, 'blobs'), clock: clock.now, random: () => 0.5, ...options };
}

const sqlite: StoreKind = {
  name: 'sqlite',
  available: true,
  async open(options = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-test-'));
    const clock = new TestClock();
    const path = join(dir, 'fleet.db');
    const handles: Store[] = [];
    const reopen = async (more: Partial<StoreOptions> = {}) => {
      const s = await openSqliteStore({
        ...baseOptions(clock, dir, { ...options, ...more }),
        path,
      });
      handles.push(s);
      return s;
    };
    const store = await reopen();
    onTestFinished(async () => {
      for (const h of handles) await h.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });
    return { store, clock, location: path, reopen };
  },
};

const pgUrl = inject('pgUrl');

const postgres: StoreKind = {
  name: 'postgres',
  available: pgUrl !== null,
  async open(options = {}) {
    const url = pgUrl!;
    const dir = mkdtempSync(join(tmpdir(), 'fleet-test-'));
    const clock = new TestClock();
    const schema = testSchemaName();
    const handles: Store[] = [];
    const reopen = async (more: Partial<StoreOptions> = {}) => {
      const s = await openPostgresStore({
        ...baseOptions(clock, dir, { ...options, ...more }),
        connectionString: url,
        schema,
        poolSize: 4,
      });
      handles.push(s);
      return s;
    };
    const store = await reopen();
    onTestFinished(async () => {
      for (const h of handles) await h.close().catch(() => undefined);
      await dropSchema(url, schema);
      rmSync(dir, { recursive: true, force: true });
    });
    return { store, clock, location: schema, reopen };
  },
};

export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export const STORES: readonly StoreKind[] = [sqlite, postgres];

/**
 * The conformance loop: `body` runs once per store, as Kysely runs its suite per dialect. A
 * store that cannot run here (no PostgreSQL) is skipped, not silently passed.
 */
export function describeStores(title: string, body: (kind: StoreKind) => void): void {
  for (const kind of STORES) {
    describe.skipIf(!kind.available)(`${title} [${kind.name}]`, () => body(kind));
  }
}

export { pgUrl };
