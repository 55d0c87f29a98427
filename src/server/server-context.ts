import type { Store } from '../store/index.js';
import type { EventHub } from './event-hub.js';
import type { FactoryRegistry } from './factory/factory-registry.js';
import type { FleetMetrics } from './metrics.js';

/** What every route plugin receives. */
export interface ServerContext {
  /** The store, instrumented: the queue verbs routes call feed the metrics. */
  store: Store;
  hub: EventHub;
  version: string;
  metrics: FleetMetrics;
  /** Lease time to live handed to factories. */
  leaseTtlMs: number;
  /** Milliseconds since the epoch (a test clock in tests). */
  clock: () => number;
  /** Factories connected to this replica. */
  factories?: FactoryRegistry;
}
