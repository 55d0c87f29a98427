import type { StoreKind } from './args.js';
import { round } from './stats.js';

export interface ResultRow {
  name: string;
  store: StoreKind;
  jobs: number;
  concurrency: number;
  batch: number;
  jobsPerSec: number;
  claimP50Ms: number;
  claimP99Ms: number;
  /** jobsPerSec ÷ pgbench TPS; null without a baseline. */
  ratioToPgbench: number | null;
  seconds: number;
  claims: number;
}

/** Submit → claimed latency through the server, one row per store. */
export interface LatencyRow {
  name: 'submit-to-claim';
  store: StoreKind;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Event ingest through the factory socket, one row per store. */
export interface IngestRow {
  name: 'event-ingest';
  store: StoreKind;
  events: number;
  batch: number;
  inFlight: number;
  eventsPerSec: number;
  seconds: number;
}

export interface BenchReport {
  /** The burn-downs. */
  results: ResultRow[];
  latency: LatencyRow[];
  ingest: IngestRow[];
  baseline: { pgbenchTps: number | null };
}

/** The targets: submit → claimed p50 at most this many ms. */
export const LATENCY_TARGET_P50_MS: Record<StoreKind, number> = { sqlite: 5, postgres: 10 };
/** The targets: at least this many events/s through the factory socket. */
export const INGEST_TARGET_EVENTS_PER_SEC: Record<StoreKind, number> = {
  sqlite: 50_000,
  postgres: 20_000,
};

/**
 * The `--json` document, with figures rounded to meaningful precision: the burn-downs, then
 * the latency rows, then the ingest rows, all in `results` (tell them apart by `name`).
 */
export function toJson(report: BenchReport): string {
  return JSON.stringify(
    {
      results: [
        ...report.results.map((r) => ({
          name: r.name,
          store: r.store,
          jobs: r.jobs,
          concurrency: r.concurrency,
          jobsPerSec: round(r.jobsPerSec, 1),
          claimP50Ms: round(r.claimP50Ms, 3),
          claimP99Ms: round(r.claimP99Ms, 3),
          batch: r.batch,
          ratioToPgbench: r.ratioToPgbench === null ? null : round(r.ratioToPgbench, 3),
          seconds: round(r.seconds, 2),
          claims: r.claims,
        })),
        ...report.latency.map((r) => ({
          name: r.name,
          store: r.store,
          samples: r.samples,
          p50Ms: round(r.p50Ms, 3),
          p99Ms: round(r.p99Ms, 3),
          maxMs: round(r.maxMs, 3),
        })),
        ...report.ingest.map((r) => ({
          name: r.name,
          store: r.store,
          events: r.events,
          batch: r.batch,
          inFlight: r.inFlight,
          eventsPerSec: round(r.eventsPerSec, 1),
          seconds: round(r.seconds, 2),
        })),
      ],
      baseline: {
        pgbenchTps:
          report.baseline.pgbenchTps === null ? null : round(report.baseline.pgbenchTps, 1),
      },
    },
    null,
    2,
  );
}

/** Text columns (the first `textColumns`) left-aligned, numbers right-aligned. */
function table(header: string[], rows: string[][], textColumns: number): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i < textColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

/** The human tables: a section per measurement that ran. */
export function toTable(report: BenchReport, pgbenchNote: string): string {
  const sections: string[][] = [];
  if (report.results.length > 0) sections.push(burnDownTable(report, pgbenchNote));
  if (report.latency.length > 0)
    sections.push([
      'submit → claimed through the server (sequential submits, one factory claiming on wake)',
      '',
      ...table(
        ['store', 'samples', 'p50 ms', 'p99 ms', 'max ms', 'target p50', 'met'],
        report.latency.map((r) => {
          const target = LATENCY_TARGET_P50_MS[r.store];
          return [
            r.store,
            String(r.samples),
            r.p50Ms.toFixed(2),
            r.p99Ms.toFixed(2),
            r.maxMs.toFixed(2),
            `≤ ${target} ms`,
            r.p50Ms <= target ? 'yes' : 'no',
          ];
        }),
        1,
      ),
    ]);
  if (report.ingest.length > 0)
    sections.push([
      'event ingest through the factory socket (events lane, one job)',
      '',
      ...table(
        ['store', 'events', 'batch', 'in flight', 'events/s', 'seconds', 'target', 'met'],
        report.ingest.map((r) => {
          const target = INGEST_TARGET_EVENTS_PER_SEC[r.store];
          return [
            r.store,
            String(r.events),
            String(r.batch),
            String(r.inFlight),
            r.eventsPerSec.toFixed(0),
            r.seconds.toFixed(2),
            `≥ ${target}`,
            r.eventsPerSec >= target ? 'yes' : 'no',
          ];
        }),
        1,
      ),
    ]);
  return sections.map((lines) => lines.join('\n')).join('\n\n');
}

/** The burn-down table: one row per burn-down, then the pgbench line. */
function burnDownTable(report: BenchReport, pgbenchNote: string): string[] {
  const header = [
    'name',
    'store',
    'jobs',
    'conc',
    'batch',
    'jobs/s',
    'claim p50 ms',
    'claim p99 ms',
    '÷ pgbench',
  ];
  const rows = report.results.map((r) => [
    r.name,
    r.store,
    String(r.jobs),
    String(r.concurrency),
    String(r.batch),
    r.jobsPerSec.toFixed(0),
    r.claimP50Ms.toFixed(2),
    r.claimP99Ms.toFixed(2),
    r.ratioToPgbench === null ? 'n/a' : `${r.ratioToPgbench.toFixed(2)}×`,
  ]);
  const tps = report.baseline.pgbenchTps;
  return [
    'store burn-down (store API, no server)',
    '',
    ...table(header, rows, 2),
    '',
    tps === null
      ? `pgbench TPS: n/a (${pgbenchNote})`
      : `pgbench TPS: ${tps.toFixed(0)} (${pgbenchNote})`,
  ];
}
