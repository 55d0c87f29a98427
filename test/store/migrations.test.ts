import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/store/postgres/open.js';
import { MIGRATIONS as PG_MIGRATIONS } from '../../src/store/postgres/migrations/index.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../../src/store/sqlite/migrations/index.js';
import { openSqliteStore } from '../../src/store/sqlite/open.js';
import { dropSchema, pgUrl, testSchemaName } from '../helpers/stores.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

describe('migrations [sqlite]', () => {
  it('migrate once when several processes open a new file together', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-mig-'));
    const path = join(dir, 'fleet.db');
    const script = `
      const { openSqliteStore } = await import(${JSON.stringify(join(root, 'src/store/sqlite/open.ts'))});
      const s = await openSqliteStore({ path: ${JSON.stringify(path)}, blobDir: ${JSON.stringify(dir)} });
      await s.enqueue([{ tenant: 't', bodyMd: String(process.pid) }]);
      await s.close();`;
    await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
          cwd: root,
        }),
      ),
    );
    const db = new Database(path, { readonly: true });
    const rows = db.prepare('SELECT id FROM fleet_migrations ORDER BY id').all();
    expect(rows).toEqual(SQLITE_MIGRATIONS.map((m) => ({ id: m.id })));
    expect(db.prepare('SELECT count(*) AS n FROM jobs').get()).toEqual({ n: 4 });
    db.close();
  });

  it('refuses a database migrated by a newer Fleet', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-mig-'));
    const path = join(dir, 'fleet.db');
    const store = await openSqliteStore({ path, blobDir: dir });
    await store.close();
    const db = new Database(path);
    db.prepare(
      "INSERT INTO fleet_migrations (id, name, applied_at) VALUES (999, 'future', 0)",
    ).run();
    db.close();
    await expect(openSqliteStore({ path, blobDir: dir })).rejects.toThrow(
      /migrated by a newer Fleet \(schema 999/,
    );
  });
});

describe.skipIf(pgUrl === null)('migrations [postgres]', () => {
  it('migrate once when several replicas start together', async () => {
    const schema = testSchemaName();
    const dir = mkdtempSync(join(tmpdir(), 'fleet-mig-'));
    try {
      const stores = await Promise.all(
        Array.from({ length: 4 }, () =>
          openPostgresStore({ connectionString: pgUrl!, schema, blobDir: dir, poolSize: 2 }),
        ),
      );
      await Promise.all(stores.map((s) => s.close()));
      const client = new pg.Client({ connectionString: pgUrl! });
      await client.connect();
      const { rows } = await client.query(
        `SELECT id FROM "${schema}".fleet_migrations ORDER BY id`,
      );
      expect(rows).toEqual(PG_MIGRATIONS.map((m) => ({ id: m.id })));
      await client.query(
        `INSERT INTO "${schema}".fleet_migrations (id, name, applied_at) VALUES (999, 'future', 0)`,
      );
      await client.end();
      await expect(
        openPostgresStore({ connectionString: pgUrl!, schema, blobDir: dir }),
      ).rejects.toThrow(/migrated by a newer Fleet/);
    } finally {
      await dropSchema(pgUrl!, schema);
    }
  });

  it('says which server it could not reach', async () => {
    await expect(
      openPostgresStore({
        connectionString: 'postgres://postgres@127.0.0.1:1/none',
        blobDir: tmpdir(),
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
