import { performance } from 'node:perf_hooks';
import { parseBenchArgs, USAGE, type BenchOptions } from './args.js';
import { burnDown, enqueueJobs } from './burn-down.js';
import { runPgbench } from './pgbench.js';
import { planVariants } from './plan.js';
import { toJson, toTable, type BenchReport, type ResultRow } from './report.js';
import { withFreshStore } from './stores.js';

/** Progress and diagnostics: always stderr, so `--json` keeps stdout to one document. */
const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function main(o: BenchOptions): Promise<void> {
  const started = performance.now();
  const variants = planVariants(o);

  let pgbenchTps: number | null = null;
  let pgbenchNote = 'skipped: --no-pgbench';
  if (o.pgbench) {
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

  const report: BenchReport = { results, baseline: { pgbenchTps } };
  progress(`total bench time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  process.stdout.write(`${o.json ? toJson(report) : toTable(report, pgbenchNote)}\n`);
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
