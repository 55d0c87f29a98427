import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the PostgreSQL server the PostgreSQL suite runs against, or null to skip it. */
    pgUrl: string | null;
    /** Names this run's PostgreSQL schemas, so teardown drops only its own. */
    runId: string;
  }
}

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Finds PostgreSQL once for the whole run. Without it, the PostgreSQL half of the store suite
 * skips with one line saying how to enable it; with `CI=true`, a missing server fails the run.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = process.env.FLEET_TEST_PG_URL ?? DEFAULT_URL;
  const reason = await probe(url);
  if (reason !== null) {
    if (process.env.CI === 'true')
      throw new Error(`CI=true requires PostgreSQL, but ${url} is unreachable: ${reason}`);
    console.warn(
      `PostgreSQL suite skipped: ${url} is unreachable (${reason}). Start PostgreSQL or set FLEET_TEST_PG_URL to run it.`,
    );
  }
  const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  project.provide('pgUrl', reason === null ? url : null);
  project.provide('runId', runId);
  return async () => {
    if (reason === null) await dropTestSchemas(url, runId);
  };
}

async function probe(url: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Schemas a crashed test of this run left behind (each test drops its own when it finishes).
 * Only this run's: another vitest run on the same server may be using its schemas right now.
 */
async function dropTestSchemas(url: string, runId: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)`,
      [`fleet_test_${runId}_`],
    );
    for (const { nspname } of rows) await client.query(`DROP SCHEMA "${nspname}" CASCADE`);
  } finally {
    await client.end();
  }
}
