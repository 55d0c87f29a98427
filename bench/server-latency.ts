import { performance } from 'node:perf_hooks';
import type { Store } from '../src/store/index.js';
import { BENCH_TENANT } from './burn-down.js';
import { BenchFactory, expectResult } from './factory-client.js';
import type { BenchServer } from './server.js';
import { percentile } from './stats.js';

export interface LatencyConfig {
  /** Timed submits. */
  samples: number;
  /** Submits before the timed ones, not counted. */
  warmup: number;
}

export interface LatencyResult {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** How long one submitted job may take to be claimed before the bench gives up. */
const CLAIM_TIMEOUT_MS = 10_000;

interface Assignment {
  job: { id: string };
  lease: { leaseEpoch: number };
}

/**
 * A factory on the control lane that claims (limit 1) on every `wake` push and completes each
 * job it gets right away, as a real one with a free seat would. It records when each job's
 * claim reply arrived; `claimed(jobId)` resolves with that time.
 */
class WakeClaimer {
  private readonly factory: BenchFactory;
  private readonly arrived = new Map<string, number>();
  private readonly waiters = new Map<
    string,
    { resolve: (at: number) => void; reject: (err: Error) => void }
  >();
  private readonly completions: Promise<void>[] = [];
  private claiming = false;
  private wanted = false;
  failure: Error | null = null;

  constructor(factory: BenchFactory) {
    this.factory = factory;
    factory.onPush((push) => {
      if (push.type !== 'wake') return;
      // A wake during a claim: claim once more after it, so no work is left waiting.
      this.wanted = true;
      if (!this.claiming) void this.claimLoop();
    });
  }

  private async claimLoop(): Promise<void> {
    this.claiming = true;
    try {
      while (this.wanted && this.failure === null) {
        this.wanted = false;
        const reply = await this.factory.request({ type: 'claim', limit: 1 });
        const { assignments } = expectResult(reply, 'claim') as { assignments: Assignment[] };
        for (const a of assignments) {
          const ref = { jobId: a.job.id, epoch: a.lease.leaseEpoch };
          this.completions.push(
            this.factory
              .request({ type: 'complete', ...ref })
              .then((r) => void expectResult(r, `complete of ${ref.jobId}`)),
          );
          const waiter = this.waiters.get(ref.jobId);
          if (waiter === undefined) this.arrived.set(ref.jobId, reply.at);
          else {
            this.waiters.delete(ref.jobId);
            waiter.resolve(reply.at);
          }
        }
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      for (const w of this.waiters.values()) w.reject(this.failure);
      this.waiters.clear();
    } finally {
      this.claiming = false;
    }
  }

  /** When the claim reply holding `jobId` arrived (performance.now()). */
  claimed(jobId: string): Promise<number> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const at = this.arrived.get(jobId);
    if (at !== undefined) {
      this.arrived.delete(jobId);
      return Promise.resolve(at);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(jobId);
        reject(
          new Error(`job ${jobId} was not claimed within ${CLAIM_TIMEOUT_MS} ms of its submit`),
        );
      }, CLAIM_TIMEOUT_MS);
      this.waiters.set(jobId, {
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  /** Waits for every completion sent so far; throws the first failure. */
  async settle(): Promise<void> {
    await Promise.all(this.completions);
    if (this.failure !== null) throw this.failure;
  }
}

/** Submits one job over HTTP; resolves with its id. */
async function submit(server: BenchServer): Promise<string> {
  const res = await fetch(`${server.baseUrl}/v1/jobs`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${server.adminToken}`,
      'content-type': 'application/json',
      'x-fleet-tenant': BENCH_TENANT,
    },
    body: JSON.stringify({ jobs: [{ bodyMd: 'noop' }] }),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST /v1/jobs answered ${res.status}: ${text}`);
  const { jobs } = JSON.parse(text) as { jobs: { job: { id: string } }[] };
  return jobs[0]!.job.id;
}

/**
 * Submit → claimed through the server: `warmup + samples` sequential submits (POST /v1/jobs,
 * keep-alive), each timed from just before its POST until the claim reply holding that job
 * reaches a connected factory, which claims on the server's `wake` push. Throws unless every
 * job ends up succeeded.
 */
export async function submitToClaim(
  store: Store,
  server: BenchServer,
  config: LatencyConfig,
  progress: (line: string) => void,
): Promise<LatencyResult> {
  const { factory } = await BenchFactory.connect(
    server.factoryUrl,
    server.factoryToken,
    'control',
    'bench-latency',
  );
  try {
    const claimer = new WakeClaimer(factory);
    const latencies: number[] = [];
    const total = config.warmup + config.samples;
    let lastReport = performance.now();
    for (let i = 0; i < total; i++) {
      const t0 = performance.now();
      const jobId = await submit(server);
      const t1 = await claimer.claimed(jobId);
      if (i >= config.warmup) latencies.push(t1 - t0);
      if (t1 - lastReport >= 2000) {
        progress(`  ${i + 1}/${total} submitted and claimed`);
        lastReport = t1;
      }
    }
    await claimer.settle();
    const counts = await store.countJobs(BENCH_TENANT);
    if (counts.succeeded !== total)
      throw new Error(`expected ${total} succeeded jobs, countJobs says ${JSON.stringify(counts)}`);
    return {
      samples: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: Math.max(...latencies),
    };
  } finally {
    await factory.close();
  }
}
