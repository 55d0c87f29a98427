import { parseArgs } from 'node:util';

export type StoreKind = 'sqlite' | 'postgres';

export interface BenchOptions {
  json: boolean;
  jobs: number;
  /** Jobs for the batch-1 variants: unbatched burn-downs are slow, so they run fewer. */
  batch1Jobs: number;
  concurrency: number;
  batch: number;
  stores: StoreKind[];
  pgUrl: string;
  pgbenchSeconds: number;
  pgbench: boolean;
}

export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

export const USAGE = `usage: npm run bench -- [options]
  --json                 print one JSON document on stdout (progress stays on stderr)
  --jobs N               jobs per burn-down (default 50000)
  --batch1-jobs N        jobs for the batch-1 variants (default min(jobs, 10000))
  --concurrency C        claimer loops, also pgbench clients (default 8)
  --batch B              claim limit (default 32)
  --stores LIST          sqlite,postgres (default both)
  --pg-url URL           PostgreSQL database (default $FLEET_BENCH_PG_URL or ${DEFAULT_PG_URL})
  --pgbench-seconds S    pgbench run length (default 10)
  --no-pgbench           skip the pgbench baseline`;

function positiveInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${flag} needs a positive integer, got "${raw}"`);
  return n;
}

function storeList(raw: string | undefined): StoreKind[] {
  if (raw === undefined) return ['sqlite', 'postgres'];
  const kinds = raw.split(',').map((s) => s.trim());
  for (const k of kinds)
    if (k !== 'sqlite' && k !== 'postgres')
      throw new Error(`--stores: unknown store "${k}" (use sqlite, postgres)`);
  return [...new Set(kinds as StoreKind[])];
}

/** Parses the bench's flags (`argv` without node and the script); throws on a bad flag. */
export function parseBenchArgs(
  argv: string[],
  env: Record<string, string | undefined>,
): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      json: { type: 'boolean' },
      jobs: { type: 'string' },
      'batch1-jobs': { type: 'string' },
      concurrency: { type: 'string' },
      batch: { type: 'string' },
      stores: { type: 'string' },
      'pg-url': { type: 'string' },
      'pgbench-seconds': { type: 'string' },
      'no-pgbench': { type: 'boolean' },
    },
  });
  const jobs = positiveInt('--jobs', values.jobs, 50_000);
  return {
    json: values.json ?? false,
    jobs,
    batch1Jobs: positiveInt('--batch1-jobs', values['batch1-jobs'], Math.min(jobs, 10_000)),
    concurrency: positiveInt('--concurrency', values.concurrency, 8),
    batch: positiveInt('--batch', values.batch, 32),
    stores: storeList(values.stores),
    pgUrl: values['pg-url'] ?? env.FLEET_BENCH_PG_URL ?? DEFAULT_PG_URL,
    pgbenchSeconds: positiveInt('--pgbench-seconds', values['pgbench-seconds'], 10),
    pgbench: !(values['no-pgbench'] ?? false),
  };
}
