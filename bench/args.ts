import { parseArgs } from 'node:util';

export type StoreKind = 'sqlite' | 'postgres';

/** The measurements the bench can run. */
export const SECTIONS = ['burn-down', 'latency', 'ingest', 'footprint'] as const;
export type Section = (typeof SECTIONS)[number];
/** What runs without --only: the footprint (a factory child, 50 agents) only on request. */
const DEFAULT_SECTIONS: Section[] = ['burn-down', 'latency', 'ingest'];

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
  /** What runs: the store burn-down, submit → claimed latency, event ingest. */
  only: Section[];
  /** Timed submit → claimed samples per store. */
  latencyJobs: number;
  /** Submits before the timed ones, not counted. */
  latencyWarmup: number;
  /** Events per ingest run; null: the per-store default. */
  ingestEvents: number | null;
  /** Events per `events` request. */
  ingestBatch: number;
  /** `events` requests in flight on the events lane. */
  ingestInFlight: number;
  /** Footprint: stand-in agents at once on one factory. */
  footprintAgents: number;
  /** Footprint: seconds each stand-in agent prints. */
  footprintSeconds: number;
  /** Footprint: lines per second per stand-in agent. */
  footprintRate: number;
  /** Flood: lines per second from the one flooding agent. */
  floodRate: number;
  /** Flood: seconds it floods. */
  floodSeconds: number;
  /** Flood: the server's lease TTL (heartbeats every third of it). */
  floodLeaseTtlMs: number;
  /** Where the factory child writes a V8 CPU profile (--cpu-prof); null: none. */
  cpuProfDir: string | null;
  /** The CLI the factory child runs: the built dist/cli/main.js, or a .ts file under tsx. */
  factoryEntry: string;
  /** Extra Node flags for the factory child, e.g. ['--max-old-space-size=64']. */
  factoryNodeFlags: string[];
}

/** Events per ingest run when --ingest-events is absent. */
export const DEFAULT_INGEST_EVENTS: Record<StoreKind, number> = {
  sqlite: 200_000,
  postgres: 100_000,
};

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
  --no-pgbench           skip the pgbench baseline (it only runs with the burn-down)
  --only LIST            burn-down,latency,ingest,footprint (default the first three)
  --latency-jobs N       timed submit → claimed samples per store (default 500)
  --latency-warmup N     submits before those, not counted (default 50)
  --ingest-events N      events per ingest run (default 200000 on SQLite, 100000 on PostgreSQL)
  --ingest-batch N       events per events request (default 500, at most 10000)
  --ingest-in-flight N   events requests in flight (default 8)
  --footprint-agents N   stand-in agents at once on one factory (default 50; SQLite only)
  --footprint-seconds S  seconds each stand-in agent prints (default 20)
  --footprint-rate N     lines per second per stand-in agent (default 20)
  --flood-rate N         lines per second from the flooding agent (default 50000)
  --flood-seconds S      seconds it floods (default 10)
  --flood-lease-ttl MS   the server's lease TTL during the flood (default 3000)
  --cpu-prof DIR         write a V8 CPU profile of the factory child to DIR
  --factory-node-flags F extra Node flags for the factory child, space-separated
  --factory-entry FILE   the CLI the factory child runs (default dist/cli/main.js, what
                         \`fleet\` runs, built by \`npm run bench\`; a .ts file runs under tsx)
environment: FLEET_BENCH_SAMPLES=1 prints every 500 ms CPU sample of the footprint`;

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

function nonNegativeInt(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${flag} needs a non-negative integer, got "${raw}"`);
  return n;
}

function sectionList(raw: string | undefined): Section[] {
  if (raw === undefined) return [...DEFAULT_SECTIONS];
  const names = raw.split(',').map((s) => s.trim());
  for (const n of names)
    if (!(SECTIONS as readonly string[]).includes(n))
      throw new Error(`--only: unknown measurement "${n}" (use ${SECTIONS.join(', ')})`);
  return SECTIONS.filter((s) => names.includes(s));
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
      only: { type: 'string' },
      'latency-jobs': { type: 'string' },
      'latency-warmup': { type: 'string' },
      'ingest-events': { type: 'string' },
      'ingest-batch': { type: 'string' },
      'ingest-in-flight': { type: 'string' },
      'footprint-agents': { type: 'string' },
      'footprint-seconds': { type: 'string' },
      'footprint-rate': { type: 'string' },
      'flood-rate': { type: 'string' },
      'flood-seconds': { type: 'string' },
      'flood-lease-ttl': { type: 'string' },
      'cpu-prof': { type: 'string' },
      'factory-entry': { type: 'string' },
      'factory-node-flags': { type: 'string' },
    },
  });
  const jobs = positiveInt('--jobs', values.jobs, 50_000);
  const ingestBatch = positiveInt('--ingest-batch', values['ingest-batch'], 500);
  // The protocol takes at most 10,000 events per batch.
  if (ingestBatch > 10_000) throw new Error(`--ingest-batch is at most 10000, got ${ingestBatch}`);
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
    only: sectionList(values.only),
    latencyJobs: positiveInt('--latency-jobs', values['latency-jobs'], 500),
    latencyWarmup: nonNegativeInt('--latency-warmup', values['latency-warmup'], 50),
    ingestEvents:
      values['ingest-events'] === undefined
        ? null
        : positiveInt('--ingest-events', values['ingest-events'], 0),
    ingestBatch,
    ingestInFlight: positiveInt('--ingest-in-flight', values['ingest-in-flight'], 8),
    footprintAgents: positiveInt('--footprint-agents', values['footprint-agents'], 50),
    footprintSeconds: positiveInt('--footprint-seconds', values['footprint-seconds'], 20),
    footprintRate: positiveInt('--footprint-rate', values['footprint-rate'], 20),
    floodRate: positiveInt('--flood-rate', values['flood-rate'], 50_000),
    floodSeconds: positiveInt('--flood-seconds', values['flood-seconds'], 10),
    floodLeaseTtlMs: positiveInt('--flood-lease-ttl', values['flood-lease-ttl'], 3_000),
    cpuProfDir: values['cpu-prof'] ?? null,
    factoryEntry: values['factory-entry'] ?? 'dist/cli/main.js',
    factoryNodeFlags: (values['factory-node-flags'] ?? '').split(' ').filter((f) => f !== ''),
  };
}
