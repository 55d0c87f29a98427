import type { Insights, Job, RunResult } from '../core/index.js';
import type { CompleteInput, FailInput, Outcome, Store } from '../store/index.js';
import type { FleetMetrics } from './metrics.js';

/** The verbs that feed metrics; every other method of the store passes through untouched. */
type Instrumented = Pick<
  Store,
  'claim' | 'complete' | 'completeMany' | 'fail' | 'failMany' | 'reapExpired' | 'appendEvents'
>;

/** Stores already wrapped, with the metrics they feed: wrapping twice must not count twice. */
const wrapped = new WeakMap<Store, FleetMetrics>();

/**
 * Wraps `store` so the queue verbs feed `metrics`: claims (count by tenant, duration), finished
 * attempts (result, cost, tokens), lease expiries and ingested events. Only what the store
 * accepted is counted: a stale or failed write counts nothing. Calls reach the store itself,
 * so a verb the store implements with another (complete → completeMany) counts once.
 */
export function instrumentStore(store: Store, metrics: FleetMetrics): Store {
  if (wrapped.get(store) === metrics) return store;

  const finished = (result: RunResult, insights: Insights | undefined): void => {
    metrics.runsFinished.inc({ result });
    if (insights === undefined) return;
    if (insights.costUsd !== undefined) metrics.runCostUsd.inc(insights.costUsd);
    if (insights.tokensIn !== undefined) metrics.runTokens.inc({ kind: 'in' }, insights.tokensIn);
    if (insights.tokensOut !== undefined)
      metrics.runTokens.inc({ kind: 'out' }, insights.tokensOut);
    if (insights.tokensCached !== undefined)
      metrics.runTokens.inc({ kind: 'cached' }, insights.tokensCached);
  };
  const finishedMany = <T extends CompleteInput>(
    inputs: T[],
    outcomes: Outcome<Job>[],
    result: (input: T) => RunResult,
  ): void => {
    outcomes.forEach((o, i) => {
      const input = inputs[i];
      if (o.ok && input !== undefined) finished(result(input), input.insights);
    });
  };

  const overrides: Instrumented = {
    async claim(request) {
      const end = metrics.claimDuration.startTimer();
      try {
        const claimed = await store.claim(request);
        for (const c of claimed) metrics.claims.inc({ tenant: c.job.tenant });
        return claimed;
      } finally {
        end();
      }
    },
    async complete(input) {
      const job = await store.complete(input);
      finished('success', input.insights);
      return job;
    },
    async completeMany(inputs) {
      const outcomes = await store.completeMany(inputs);
      finishedMany(inputs, outcomes, () => 'success');
      return outcomes;
    },
    async fail(input) {
      const job = await store.fail(input);
      finished(input.result, input.insights);
      return job;
    },
    async failMany(inputs) {
      const outcomes = await store.failMany(inputs);
      finishedMany<FailInput>(inputs, outcomes, (input) => input.result);
      return outcomes;
    },
    async reapExpired(now) {
      const reaped = await store.reapExpired(now);
      if (reaped.length > 0) metrics.leaseExpiries.inc(reaped.length);
      return reaped;
    },
    async appendEvents(ref, events, options) {
      const seqs = await store.appendEvents(ref, events, options);
      const stored = events.length - (seqs.duplicates ?? 0);
      if (stored > 0) metrics.eventsIngested.inc(stored);
      return seqs;
    },
  };

  const proxy = new Proxy(store, {
    get(target, key) {
      if (typeof key === 'string' && Object.hasOwn(overrides, key))
        return overrides[key as keyof Instrumented];
      const value: unknown = Reflect.get(target, key, target);
      // Bound to the store itself, so its own calls between methods stay uninstrumented.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  wrapped.set(proxy, metrics);
  return proxy;
}
