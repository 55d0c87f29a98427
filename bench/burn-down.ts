import { performance } from 'node:perf_hooks';
import type { Store } from '../src/store/port.js';
import { percentile } from './stats.js';

export const BENCH_TENANT = 'bench';
const ENQUEUE_BATCH = 1000;

export interface BurnDownConfig {
  jobs: number;
  concurrency: number;
  /** Claim limit. */
  batch: number;
}

export interface BurnDownResult {
  seconds: number;
  jobsPerSec: number;
  claims: number;
  claimP50Ms: number;
  claimP99Ms: number;
}

/** Enqueues `jobs` no-op jobs for the bench tenant in batches; not timed. */
export async function enqueueJobs(
  store: Store,
  jobs: number,
  progress: (line: string) => void,
): Promise<void> {
  const started = performance.now();
  let lastReport = started;
  for (let done = 0; done < jobs;) {
    const n = Math.min(ENQUEUE_BATCH, jobs - done);
    const specs = Array.from({ length: n }, () => ({ tenant: BENCH_TENANT, bodyMd: 'noop' }));
    const results = await store.enqueue(specs);
    if (results.length !== n || results.some((r) => !r.created || r.job.stage !== 'queued'))
      throw new Error(`enqueue of ${n} jobs returned unexpected results`);
    done += n;
    const now = performance.now();
    if (now - lastReport >= 2000 || done === jobs) {
      progress(`  enqueued ${done}/${jobs} (${((now - started) / 1000).toFixed(1)} s)`);
      lastReport = now;
    }
  }
}

/**
 * Times `concurrency` claimer loops draining the queue: claim up to `batch`, complete them all
 * in one `completeMany`, until a claim comes back empty. Throws when any completion fails, a job
 * is claimed twice, or the queue does not end with exactly `jobs` succeeded jobs.
 */
export async function burnDown(store: Store, config: BurnDownConfig): Promise<BurnDownResult> {
  const latencies: number[] = [];
  const seen = new Set<string>();
  let aborted = false;

  const claimer = async (i: number): Promise<void> => {
    const factoryId = `bench-${i}`;
    while (!aborted) {
      const t0 = performance.now();
      const claimed = await store.claim({
        factoryId,
        tenants: [BENCH_TENANT],
        capabilities: [],
        limit: config.batch,
      });
      latencies.push(performance.now() - t0);
      if (claimed.length === 0) return;
      if (claimed.length > config.batch)
        throw new Error(`claim(limit ${config.batch}) returned ${claimed.length} jobs`);
      for (const c of claimed) {
        if (seen.has(c.job.id)) throw new Error(`job ${c.job.id} was claimed twice`);
        seen.add(c.job.id);
      }
      const outcomes = await store.completeMany(
        claimed.map((c) => ({ jobId: c.job.id, epoch: c.lease.leaseEpoch })),
      );
      if (outcomes.length !== claimed.length)
        throw new Error(`completeMany of ${claimed.length} returned ${outcomes.length} outcomes`);
      outcomes.forEach((o, k) => {
        if (!o.ok)
          throw new Error(`${factoryId}: complete of job ${claimed[k]!.job.id} failed`, {
            cause: o.error,
          });
      });
    }
  };

  const started = performance.now();
  const loops = Array.from({ length: config.concurrency }, (_, i) =>
    claimer(i).catch((err: unknown) => {
      aborted = true; // the other loops stop at their next turn
      throw err;
    }),
  );
  const settled = await Promise.allSettled(loops);
  const seconds = (performance.now() - started) / 1000;
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure !== undefined) throw failure.reason;

  if (seen.size !== config.jobs)
    throw new Error(`claimed ${seen.size} distinct jobs, expected ${config.jobs}`);
  const counts = await store.countJobs(BENCH_TENANT);
  if (counts.succeeded !== config.jobs)
    throw new Error(
      `expected ${config.jobs} succeeded jobs, countJobs says ${JSON.stringify(counts)}`,
    );

  return {
    seconds,
    jobsPerSec: config.jobs / seconds,
    claims: latencies.length,
    claimP50Ms: percentile(latencies, 50),
    claimP99Ms: percentile(latencies, 99),
  };
}
