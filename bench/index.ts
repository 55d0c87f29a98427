import Database from 'better-sqlite3';
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_INGEST_EVENTS,
  parseBenchArgs,
  USAGE,
  type BenchOptions,
  type StoreKind,
} from './args.js';
import { burnDown, enqueueJobs } from './burn-down.js';
import { eventIngest } from './event-ingest.js';
import { bareReaderBaseline, factoryFlood, factoryFootprint } from './factory-footprint.js';
import { runPgbench } from './pgbench.js';
import { planVariants } from './plan.js';
import {
  toJson,
  toTable,
  type BenchReport,
  type FloodRow,
  type FootprintRow,
  type IngestRow,
  type LatencyRow,
  type ResultRow,
} from './report.js';
import { submitToClaim } from './server-latency.js';
import { withServer } from './server.js';
import { withFreshStore, type StoreSetup } from './stores.js';

/** Progress and diagnostics: always stderr, so `--json` keeps stdout to one document. */
const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function main(o: BenchOptions): Promise<void> {
  const started = performance.now();
  const burnDowns = o.only.includes('burn-down');
  const variants = burnDowns ? planVariants(o) : [];

  let pgbenchTps: number | null = null;
  let pgbenchNote = burnDowns ? 'skipped: --no-pgbench' : 'skipped: no burn-down';
  if (o.pgbench && burnDowns) {
    const r = await runPgbench(o.pgUrl, o.concurrency, o.pgbenchSeconds, progress);
    pgbenchTps = r.tps;
    const clients = `-N -c ${o.concurrency} -T ${o.pgbenchSeconds}, scale 1`;
    pgbenchNote = r.tps === null ? `pgbench failed: ${r.reason}` : clients;
    progress(r.tps === null ? `pgbench: no baseline: ${r.reason}` : `pgbench: tps = ${r.tps}`);
  }

  const results: ResultRow[] = [];
  for (const v of variants) {
    progress(
      `${v.name}: ${v.jobs} jobs, concurrency ${v.concurrency}, batch ${v.batch}` +
        (v.durability ? `, durability ${v.durability}` : ''),
    );
    const r = await withFreshStore(v, o.pgUrl, async (store, where) => {
      progress(`  store: ${where}`);
      await enqueueJobs(store, v.jobs, progress);
      return burnDown(store, v);
    });
    progress(
      `  ${r.jobsPerSec.toFixed(0)} jobs/s in ${r.seconds.toFixed(2)} s, ` +
        `claim p50 ${r.claimP50Ms.toFixed(2)} ms, p99 ${r.claimP99Ms.toFixed(2)} ms`,
    );
    results.push({
      name: v.name,
      store: v.store,
      jobs: v.jobs,
      concurrency: v.concurrency,
      batch: v.batch,
      jobsPerSec: r.jobsPerSec,
      claimP50Ms: r.claimP50Ms,
      claimP99Ms: r.claimP99Ms,
      ratioToPgbench: pgbenchTps === null ? null : r.jobsPerSec / pgbenchTps,
      seconds: r.seconds,
      claims: r.claims,
    });
  }

  const latency: LatencyRow[] = [];
  const ingest: IngestRow[] = [];
  for (const kind of o.stores) {
    // The server's default configuration: SQLite with durability normal.
    const setup: StoreSetup = { store: kind, durability: 'normal', concurrency: o.concurrency };
    if (o.only.includes('latency')) latency.push(await runLatency(o, kind, setup));
    if (o.only.includes('ingest')) ingest.push(await runIngest(o, kind, setup));
  }

  const footprint: (FootprintRow | FloodRow)[] = [];
  if (o.only.includes('footprint')) footprint.push(...(await runFootprint(o)));

  const report: BenchReport = {
    results,
    latency,
    ingest,
    footprint,
    baseline: { pgbenchTps },
  };
  progress(`total bench time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  process.stdout.write(`${o.json ? toJson(report) : toTable(report, pgbenchNote)}\n`);
}

async function runLatency(
  o: BenchOptions,
  kind: StoreKind,
  setup: StoreSetup,
): Promise<LatencyRow> {
  progress(
    `submit-to-claim on ${kind}: ${o.latencyWarmup} warm-up + ${o.latencyJobs} timed submits`,
  );
  const r = await withFreshStore(setup, o.pgUrl, async (store, where) => {
    progress(`  store: ${where}`);
    return withServer(store, (server) =>
      submitToClaim(store, server, { samples: o.latencyJobs, warmup: o.latencyWarmup }, progress),
    );
  });
  progress(`  p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`);
  return { name: 'submit-to-claim', store: kind, ...r } satisfies LatencyRow;
}

async function runIngest(o: BenchOptions, kind: StoreKind, setup: StoreSetup): Promise<IngestRow> {
  const config = {
    events: o.ingestEvents ?? DEFAULT_INGEST_EVENTS[kind],
    batch: o.ingestBatch,
    inFlight: o.ingestInFlight,
  };
  progress(
    `event-ingest on ${kind}: ${config.events} events, batch ${config.batch}, ` +
      `${config.inFlight} in flight`,
  );
  const r = await withFreshStore(setup, o.pgUrl, async (store, where) => {
    progress(`  store: ${where}`);
    return withServer(store, (server) => eventIngest(store, server, config, progress));
  });
  progress(`  ${r.eventsPerSec.toFixed(0)} events/s in ${r.seconds.toFixed(2)} s`);
  return {
    name: 'event-ingest',
    store: kind,
    events: r.events,
    batch: config.batch,
    inFlight: config.inFlight,
    eventsPerSec: r.eventsPerSec,
    seconds: r.seconds,
  } satisfies IngestRow;
}

/** The targets for the daemon itself with 50 agents: RSS and CPU (% of one core). */
const FOOTPRINT_TARGET = { rssMb: 150, cpuPct: 5 };
/** The flood must leave the lease at least this far from expiring. */
const MIN_HEADROOM_MS = 1_000;
/** The flood's stored events/s must reach this share of the (paced) generator's rate. */
const FLOOD_KEEP_UP = 0.95;

/** Footprint then flood, each on its own fresh SQLite store and server (the default store). */
async function runFootprint(o: BenchOptions): Promise<[FootprintRow, FloodRow]> {
  const nodeFlags = (label: string) =>
    o.cpuProfDir === null
      ? o.factoryNodeFlags
      : [
          ...o.factoryNodeFlags,
          '--cpu-prof',
          '--cpu-prof-dir',
          o.cpuProfDir,
          '--cpu-prof-name',
          `factory-${label}.cpuprofile`,
        ];
  const setup: StoreSetup = { store: 'sqlite', durability: 'normal', concurrency: o.concurrency };
  progress(
    `baseline: a bare Node reader of ${o.footprintAgents} stand-in agents × ${o.footprintRate} ` +
      `lines/s for ${o.footprintSeconds} s`,
  );
  const baseline = await bareReaderBaseline(
    { agents: o.footprintAgents, seconds: o.footprintSeconds, linesPerSec: o.footprintRate },
    progress,
  );
  progress(
    `factory footprint: ${o.footprintAgents} stand-in agents × ${o.footprintRate} lines/s ` +
      `for ${o.footprintSeconds} s on one factory child`,
  );
  const f = await withFreshStore(setup, o.pgUrl, (store) =>
    withServer(store, (server) =>
      factoryFootprint(
        store,
        server,
        {
          agents: o.footprintAgents,
          seconds: o.footprintSeconds,
          linesPerSec: o.footprintRate,
          nodeFlags: nodeFlags('footprint'),
          entry: o.factoryEntry,
        },
        progress,
      ),
    ),
  );
  progress(
    `factory flood: one agent at ${o.floodRate} lines/s for ${o.floodSeconds} s, ` +
      `lease TTL ${o.floodLeaseTtlMs} ms`,
  );
  const ttl = o.floodLeaseTtlMs;
  const fl = await withFreshStore(setup, o.pgUrl, async (store, where) => {
    const seqs = sqliteLastSeq(where);
    try {
      return await withServer(
        store,
        (server) =>
          factoryFlood(
            store,
            server,
            ttl,
            {
              linesPerSec: o.floodRate,
              lastSeq: seqs.lastSeq,
              seconds: o.floodSeconds,
              nodeFlags: nodeFlags('flood'),
              entry: o.factoryEntry,
            },
            progress,
          ),
        { leaseTtlMs: ttl },
      );
    } finally {
      seqs.close();
    }
  });
  return [
    {
      name: 'factory-footprint',
      ...f,
      baselineCpuPct: baseline.avgCpuPct,
      baselineRssMb: baseline.maxRssMb,
      targetRssMb: FOOTPRINT_TARGET.rssMb,
      targetCpuPct: FOOTPRINT_TARGET.cpuPct,
      met: f.maxRssMb < FOOTPRINT_TARGET.rssMb && f.avgCpuPct < FOOTPRINT_TARGET.cpuPct,
    },
    {
      name: 'factory-flood',
      targetEventsPerSec: o.floodRate,
      linesSent: fl.linesSent,
      eventsStored: fl.eventsStored,
      eventsPerSec: fl.eventsPerSec,
      seconds: fl.seconds,
      ingestSeconds: fl.ingestSeconds,
      leaseTtlMs: fl.leaseTtlMs,
      minLeaseHeadroomMs: fl.minLeaseHeadroomMs,
      minHeadroomTargetMs: MIN_HEADROOM_MS,
      renewals: fl.renewals,
      maxRssMb: fl.maxRssMb,
      avgCpuPct: fl.avgCpuPct,
      // The generator is paced to exactly floodRate: "keeps up" is within 5 % of it.
      met:
        fl.succeeded &&
        fl.minLeaseHeadroomMs >= MIN_HEADROOM_MS &&
        fl.eventsPerSec >= FLOOD_KEEP_UP * o.floodRate,
    },
  ];
}

let options: BenchOptions;
try {
  options = parseBenchArgs(process.argv.slice(2), process.env);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
  process.exit(2);
}
main(options).catch((err: unknown) => {
  progress('bench failed:');
  progress(err instanceof Error ? (err.stack ?? err.message) : String(err));
  if (err instanceof Error && err.cause !== undefined)
    progress(`cause: ${inspectCause(err.cause)}`);
  process.exit(1);
});

function inspectCause(cause: unknown): string {
  return cause instanceof Error ? (cause.stack ?? cause.message) : JSON.stringify(cause);
}

/**
 * max(seq) of a job's events, on a read-only connection to the SQLite file at `path` (opened
 * on first use); `close` closes it.
 */
function sqliteLastSeq(path: string): { lastSeq: (jobId: string) => number; close: () => void } {
  let db: Database.Database | null = null;
  return {
    lastSeq: (jobId) => {
      db ??= new Database(path, { readonly: true, fileMustExist: true });
      const row = db.prepare('SELECT max(seq) AS seq FROM events WHERE job_id = ?').get(jobId) as {
        seq: number | null;
      };
      return row.seq ?? 0;
    },
    close: () => db?.close(),
  };
}
