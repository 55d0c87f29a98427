import { expect, it } from 'vitest';
import { describeStores } from '../helpers/stores.js';

describeStores('countJobsByTenant', (kind) => {
  it('is empty on an empty store', async () => {
    const { store } = await kind.open();
    expect(await store.countJobsByTenant()).toEqual([]);
  });

  it('counts jobs per tenant and stage across every tenant, ordered', async () => {
    const { store } = await kind.open();
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'a', key: 'a' },
      { tenant: 'acme', bodyMd: 'b', key: 'b' },
      { tenant: 'acme', bodyMd: 'c', key: 'c', deps: ['a'] },
    ]);
    await store.enqueue([{ tenant: 'beta', bodyMd: 'x' }]);
    await store.enqueue([{ tenant: 'zeta', bodyMd: 'y', priority: 9 }]);
    await store.claim({ factoryId: 'f1', tenants: ['zeta'], capabilities: [], limit: 1 });
    const [cancelled] = await store.enqueue([{ tenant: 'beta', bodyMd: 'z' }]);
    await store.cancel('beta', cancelled!.job.id);

    expect(await store.countJobsByTenant()).toEqual([
      { tenant: 'acme', stage: 'blocked', count: 1 },
      { tenant: 'acme', stage: 'queued', count: 2 },
      { tenant: 'beta', stage: 'cancelled', count: 1 },
      { tenant: 'beta', stage: 'queued', count: 1 },
      { tenant: 'zeta', stage: 'claimed', count: 1 },
    ]);
  });

  it('agrees with countJobs for each tenant', async () => {
    const { store } = await kind.open();
    await store.enqueue([
      { tenant: 't1', bodyMd: 'a' },
      { tenant: 't1', bodyMd: 'b' },
    ]);
    await store.enqueue([{ tenant: 't2', bodyMd: 'c' }]);
    await store.claim({ factoryId: 'f', tenants: ['t1'], capabilities: [], limit: 1 });
    const rows = await store.countJobsByTenant();
    for (const tenant of ['t1', 't2']) {
      const counts = await store.countJobs(tenant);
      for (const [stage, n] of Object.entries(counts)) {
        const row = rows.find((r) => r.tenant === tenant && r.stage === stage);
        expect(row?.count ?? 0).toBe(n);
      }
    }
    expect(rows.every((r) => typeof r.count === 'number' && r.count > 0)).toBe(true);
  });
});
