import type { EnqueueResult } from '../store/index.js';
import type { EventHub } from './event-hub.js';

/**
 * The wake-ups after an enqueue: followers of each job read it again, and when a new job is
 * claimable, the tenant's connected factories are woken to claim it (on every replica).
 */
export function notifyEnqueued(hub: EventHub, tenant: string, results: EnqueueResult[]): void {
  for (const res of results) hub.publish(res.job.id);
  if (results.some((x) => x.created && x.job.stage === 'queued')) hub.publishWork(tenant);
}
