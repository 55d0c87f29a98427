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

export interface BenchReport {
  results: ResultRow[];
  baseline: { pgbenchTps: number | null };
}

/** The `--json` document, with figures rounded to meaningful precision. */
export function toJson(report: BenchReport): string {
  return JSON.stringify(
    {
      results: report.results.map((r) => ({
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
      baseline: {
        pgbenchTps:
          report.baseline.pgbenchTps === null ? null : round(report.baseline.pgbenchTps, 1),
      },
    },
    null,
    2,
  );
}

/** The human table: one row per burn-down, then the pgbench line. */
export function toTable(report: BenchReport, pgbenchNote: string): string {
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
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  // Text columns left-aligned, numbers right-aligned.
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const tps = report.baseline.pgbenchTps;
  return [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    tps === null
      ? `pgbench TPS: n/a (${pgbenchNote})`
      : `pgbench TPS: ${tps.toFixed(0)} (${pgbenchNote})`,
  ].join('\n');
}
