import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import type { EventHub } from './event-hub.js';

/** How often to look for expired leases: a third of the TTL, at most once a second. */
export function reaperIntervalMs(leaseTtlMs: number): number {
  return Math.max(1_000, Math.floor(leaseTtlMs / 3));
}

export interface ReaperLoopOptions {
  store: Store;
  hub: EventHub;
  logger: Logger;
  intervalMs: number;
  /** Aborting stops the loop after the pass in progress, if any. */
  signal: AbortSignal;
  /** Reap only while this holds (this replica leads); default: always. */
  isLeader?: () => boolean;
}

/**
 * Returns jobs whose lease expired (their factory died or lost the network) to the queue, or
 * fails them when their attempts are spent; runs until `signal` aborts. A failing pass is
 * logged and retried on the next tick: a database hiccup must not stop reaping for good.
 *
 * With several server replicas on one PostgreSQL store, only the leader reaps (`isLeader`);
 * the others tick idly and take over on the tick after they win the lock. Two reapers for a
 * moment would be safe anyway: reaping is one transaction and fenced by epoch.
 */
export async function runReaperLoop(options: ReaperLoopOptions): Promise<void> {
  const { store, hub, logger, intervalMs, signal } = options;
  const isLeader = options.isLeader ?? (() => true);
  while (!signal.aborted) {
    if (isLeader()) await reapOnce(store, hub, logger);
    try {
      await sleep(intervalMs, undefined, { signal });
    } catch {
      // Aborted: the loop condition ends it.
    }
  }
}

async function reapOnce(store: Store, hub: EventHub, logger: Logger): Promise<void> {
  try {
    const reaped = await store.reapExpired();
    for (const job of reaped) {
      const level = job.stage === 'failed' ? 'warn' : 'info';
      logger[level](
        { jobId: job.jobId, tenant: job.tenant, epoch: job.epoch, stage: job.stage },
        job.stage === 'failed'
          ? 'lease expired; job failed, no attempts left'
          : 'lease expired; job back in the queue',
      );
      hub.publish(job.jobId);
    }
  } catch (err) {
    logger.error({ err }, 'reaping expired leases failed; trying again next tick');
  }
}
