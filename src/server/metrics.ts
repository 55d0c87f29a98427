import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ACTIVE_STAGES, JOB_STAGES, type JobStage } from '../core/index.js';
import type { Store } from '../store/index.js';

/** What the factories table says at scrape time. */
interface Snapshot {
  jobs: { tenant: string; stage: JobStage; count: number }[];
  factoriesConnected: number;
  seatsTotal: number;
  seatsBusy: number;
}

/**
 * The control plane's Prometheus metrics, in a registry of their own (never prom-client's
 * global one, so two servers in one process do not collide).
 *
 * Labels are bounded sets only: tenant, stage, result, token kind, seat state. Never a job,
 * run, factory or token id.
 */
export interface FleetMetrics {
  readonly registry: Registry;
  /** Jobs handed out by `claim`, by the claimed job's tenant. */
  readonly claims: Counter<'tenant'>;
  /** How long one `claim` call took. */
  readonly claimDuration: Histogram;
  /** Attempts ended by complete/fail, by run result. */
  readonly runsFinished: Counter<'result'>;
  readonly runCostUsd: Counter;
  /** Tokens reported in run insights, kind = in | out | cached. */
  readonly runTokens: Counter<'kind'>;
  readonly leaseExpiries: Counter;
  readonly eventsIngested: Counter;
  /**
   * Factories online. Read from the factories table on each scrape unless `seatsFromStore` is
   * false, in which case the factory protocol keeps it with this setter.
   */
  setFactoriesConnected(count: number): void;
  /** Seats of online factories (`total`) and seats in use (`busy`); like the above. */
  setSeats(seats: { busy?: number; total?: number }): void;
  /** The exposition text and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

export interface MetricsOptions {
  /**
   * Refresh `fleet_factories_connected` and `fleet_seats` from the store on each scrape
   * (default). False leaves them to the setters.
   */
  seatsFromStore?: boolean;
}

/**
 * Creates the metrics of one server. `store` is read at scrape time (job counts, factories);
 * the counters are fed by `instrumentStore` (see `instrument-store.ts`).
 */
export function createMetrics(store: Store, options: MetricsOptions = {}): FleetMetrics {
  const seatsFromStore = options.seatsFromStore ?? true;
  const registry = new Registry();

  // Both gauges below read the same snapshot: registry.metrics() collects every metric
  // concurrently, so one in-flight read is shared instead of querying once per gauge.
  let inFlight: Promise<Snapshot> | null = null;
  const snapshot = (): Promise<Snapshot> => {
    inFlight ??= readSnapshot(store, seatsFromStore).finally(() => {
      inFlight = null;
    });
    return inFlight;
  };

  new Gauge({
    name: 'fleet_jobs',
    help: 'Jobs by tenant and stage, read from the store at scrape time.',
    labelNames: ['tenant', 'stage'] as const,
    registers: [registry],
    async collect() {
      const { jobs } = await snapshot();
      this.reset();
      // Every stage of a known tenant, zeros included, so series do not blink in and out.
      for (const tenant of new Set(jobs.map((r) => r.tenant)))
        for (const stage of JOB_STAGES) this.set({ tenant, stage }, 0);
      for (const r of jobs) this.set({ tenant: r.tenant, stage: r.stage }, r.count);
    },
  });

  const factoriesConnected = new Gauge({
    name: 'fleet_factories_connected',
    help: 'Factories with status online.',
    registers: [registry],
    async collect() {
      if (!seatsFromStore) return;
      this.set((await snapshot()).factoriesConnected);
    },
  });
  const seats = new Gauge({
    name: 'fleet_seats',
    help: 'Agent seats: total = seats of online factories, busy = jobs claimed, running or verifying.',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      if (!seatsFromStore) return;
      const s = await snapshot();
      this.set({ state: 'total' }, s.seatsTotal);
      this.set({ state: 'busy' }, s.seatsBusy);
    },
  });

  const metrics: FleetMetrics = {
    registry,
    claims: new Counter({
      name: 'fleet_claims_total',
      help: 'Jobs claimed by factories, by tenant.',
      labelNames: ['tenant'] as const,
      registers: [registry],
    }),
    claimDuration: new Histogram({
      name: 'fleet_claim_duration_seconds',
      help: 'Duration of one claim call.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    runsFinished: new Counter({
      name: 'fleet_runs_finished_total',
      help: 'Attempts ended by complete or fail, by run result.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    runCostUsd: new Counter({
      name: 'fleet_run_cost_usd_total',
      help: 'Cost reported in the insights of finished runs, in US dollars.',
      registers: [registry],
    }),
    runTokens: new Counter({
      name: 'fleet_run_tokens_total',
      help: 'Model tokens reported in the insights of finished runs.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    leaseExpiries: new Counter({
      name: 'fleet_lease_expiries_total',
      help: 'Leases the reaper found expired.',
      registers: [registry],
    }),
    eventsIngested: new Counter({
      name: 'fleet_events_ingested_total',
      help: 'Job events appended by factories.',
      registers: [registry],
    }),
    setFactoriesConnected(count) {
      factoriesConnected.set(count);
    },
    setSeats({ busy, total }) {
      if (busy !== undefined) seats.set({ state: 'busy' }, busy);
      if (total !== undefined) seats.set({ state: 'total' }, total);
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
  // Present from the first scrape, even before anything happened.
  for (const kind of ['in', 'out', 'cached']) metrics.runTokens.inc({ kind }, 0);
  metrics.setSeats({ busy: 0, total: 0 });
  return metrics;
}

async function readSnapshot(store: Store, withFactories: boolean): Promise<Snapshot> {
  const jobs = await store.countJobsByTenant();
  const active: readonly JobStage[] = ACTIVE_STAGES;
  const seatsBusy = jobs.filter((r) => active.includes(r.stage)).reduce((n, r) => n + r.count, 0);
  if (!withFactories) return { jobs, factoriesConnected: 0, seatsTotal: 0, seatsBusy };
  const { online: factoriesConnected, seats: seatsTotal } = await store.onlineFactorySeats();
  return { jobs, factoriesConnected, seatsTotal, seatsBusy };
}
