import { ConflictError, NotFoundError, type Factory } from '../../core/index.js';
import type { Store } from '../../store/index.js';

/** Tries of the read-then-write drain before a busy factory's rev churn becomes a 409. */
const DRAIN_TRIES = 3;

/**
 * Marks a factory `draining`: it finishes its running jobs and is handed no new ones. Drained
 * already is fine. A heartbeat that bumps the rev between the read and the write makes it read
 * again, a few times.
 */
export async function drainFactory(store: Store, tenant: string, id: string): Promise<Factory> {
  for (let attempt = 1; ; attempt++) {
    const factory = await store.getFactory(tenant, id);
    if (factory === null) throw new NotFoundError('factory', id);
    if (factory.status === 'draining') return factory;
    try {
      return await store.updateFactory(tenant, id, factory.rev, { status: 'draining' });
    } catch (err) {
      if (!(err instanceof ConflictError) || attempt >= DRAIN_TRIES) throw err;
    }
  }
}
