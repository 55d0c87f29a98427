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

/** The daemon's own footprint with many agents running (SQLite server in the bench process). */
export interface FootprintRow {
  name: 'factory-footprint';
  agents: number;
  maxRssMb: number;
  /** Steady state: from 2 s after the last agent started. */
  avgCpuPct: number;
  /** From the moment all agents run, their last start-ups included. */
  wholeCpuPct: number;
  maxCpuPct: number;
  targetRssMb: number;
  targetCpuPct: number;
  met: boolean;
  windowSeconds: number;
  samples: number;
  /** The agent guards' total (one sh watcher per agent), not the daemon's. */
  guardsMaxRssMb: number;
  guardsAvgCpuPct: number;
  eventsStored: number;
  /** CPU and RSS of a bare Node process reading the same agents' pipes, in the same run. */
  baselineCpuPct: number;
  baselineRssMb: number;
}

/** Heartbeats under a flood of events from one run. */
export interface FloodRow {
  name: 'factory-flood';
  targetEventsPerSec: number;
  linesSent: number;
  eventsStored: number;
  eventsPerSec: number;
  seconds: number;
  ingestSeconds: number;
  leaseTtlMs: number;
  minLeaseHeadroomMs: number;
  minHeadroomTargetMs: number;
  renewals: number;
  maxRssMb: number;
  avgCpuPct: number;
  met: boolean;
}

export interface BenchReport {
  /** The burn-downs. */
  results: ResultRow[];
  latency: LatencyRow[];
  ingest: IngestRow[];
  footprint: (FootprintRow | FloodRow)[];
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
        ...report.footprint.map((r) =>
          r.name === 'factory-footprint'
            ? {
                ...r,
                maxRssMb: round(r.maxRssMb, 1),
                avgCpuPct: round(r.avgCpuPct, 2),
                wholeCpuPct: round(r.wholeCpuPct, 2),
                maxCpuPct: round(r.maxCpuPct, 2),
                windowSeconds: round(r.windowSeconds, 2),
                guardsMaxRssMb: round(r.guardsMaxRssMb, 1),
                guardsAvgCpuPct: round(r.guardsAvgCpuPct, 2),
                baselineCpuPct: round(r.baselineCpuPct, 2),
                baselineRssMb: round(r.baselineRssMb, 1),
                cpuVsBaseline: round(r.avgCpuPct / r.baselineCpuPct, 2),
              }
            : {
                ...r,
                eventsPerSec: round(r.eventsPerSec, 1),
                seconds: round(r.seconds, 2),
                ingestSeconds: round(r.ingestSeconds, 2),
                minLeaseHeadroomMs: round(r.minLeaseHeadroomMs, 0),
                maxRssMb: round(r.maxRssMb, 1),
                avgCpuPct: round(r.avgCpuPct, 2),
              },
        ),
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
  if (report.footprint.length > 0) sections.push(footprintTable(report.footprint));
  return sections.map((lines) => lines.join('\n')).join('\n\n');
}

/** The footprint and flood rows: the daemon child's own RSS and CPU (% of one core). */
function footprintTable(rows: (FootprintRow | FloodRow)[]): string[] {
  const lines: string[] = [];
  for (const r of rows) {
    if (lines.length > 0) lines.push('');
    if (r.name === 'factory-footprint') {
      lines.push(
        `factory footprint: ${r.agents} stand-in agents at once on one \`fleet factory\` child`,
        '',
        ...table(
          ['measure', 'value', 'target', 'met'],
          [
            [
              'max RSS',
              `${r.maxRssMb.toFixed(1)} MB`,
              `< ${r.targetRssMb} MB`,
              yesNo(r.maxRssMb < r.targetRssMb),
            ],
            [
              'avg CPU (steady)',
              `${r.avgCpuPct.toFixed(1)} %`,
              `< ${r.targetCpuPct} %`,
              yesNo(r.avgCpuPct < r.targetCpuPct),
            ],
            ['avg CPU (with start-ups)', `${r.wholeCpuPct.toFixed(1)} %`, '', ''],
            ['max CPU (500 ms)', `${r.maxCpuPct.toFixed(1)} %`, '', ''],
            [
              'bare reader CPU',
              `${r.baselineCpuPct.toFixed(1)} %`,
              `avg CPU = ${(r.avgCpuPct / r.baselineCpuPct).toFixed(2)}× this`,
              '',
            ],
            ['bare reader RSS', `${r.baselineRssMb.toFixed(1)} MB`, '', ''],
            ['guards RSS (sum)', `${r.guardsMaxRssMb.toFixed(0)} MB`, '', ''],
            ['guards CPU (sum)', `${r.guardsAvgCpuPct.toFixed(1)} %`, '', ''],
            ['window', `${r.windowSeconds.toFixed(1)} s, ${r.samples} samples`, '', ''],
            ['events stored', String(r.eventsStored), '', ''],
          ],
          1,
        ),
      );
    } else {
      lines.push(
        `factory flood: one run printing ${r.targetEventsPerSec} lines/s, lease TTL ${r.leaseTtlMs} ms`,
        '',
        ...table(
          ['measure', 'value', 'target', 'met'],
          [
            [
              'events/s stored',
              r.eventsPerSec.toFixed(0),
              `≥ ${0.95 * r.targetEventsPerSec} (paced)`,
              yesNo(r.eventsPerSec >= 0.95 * r.targetEventsPerSec),
            ],
            [
              'min lease headroom',
              `${r.minLeaseHeadroomMs.toFixed(0)} ms`,
              `≥ ${r.minHeadroomTargetMs} ms`,
              yesNo(r.minLeaseHeadroomMs >= r.minHeadroomTargetMs),
            ],
            ['renewals', String(r.renewals), '', ''],
            ['events stored / sent', `${r.eventsStored} / ${r.linesSent}`, '', ''],
            ['running → succeeded', `${r.seconds.toFixed(1)} s`, '', ''],
            ['factory max RSS', `${r.maxRssMb.toFixed(1)} MB`, '', ''],
            ['factory avg CPU', `${r.avgCpuPct.toFixed(1)} %`, '', ''],
          ],
          1,
        ),
      );
    }
    lines.push(`met: ${yesNo(r.met)}`);
  }
  return lines;
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

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
