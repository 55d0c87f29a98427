import { expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { describeStores } from '../helpers/stores.js';

const claimOne = (store: Store, factoryId = 'f1', capabilities: string[] = []) =>
  store.claim({ factoryId, tenants: ['acme'], capabilities, limit: 1 });

describeStores('claim', (kind) => {
  it('takes the highest priority first, then the oldest', async () => {
    const { store, clock } = await kind.open();
    const [low] = await store.enqueue([{ tenant: 'acme', bodyMd: 'low', priority: 1 }]);
    clock.advance(1);
    const [high1] = await store.enqueue([{ tenant: 'acme', bodyMd: 'high1', priority: 5 }]);
    clock.advance(1);
    const [high2] = await store.enqueue([{ tenant: 'acme', bodyMd: 'high2', priority: 5 }]);
    const claimed = await store.claim({
      factoryId: 'f',
      tenants: ['acme'],
      capabilities: [],
      limit: 10,
    });
    expect(claimed.map((c) => c.job.id)).toEqual([high1!.job.id, high2!.job.id, low!.job.id]);
  });

  it('creates the lease and the run atomically, raising the epoch', async () => {
    const { store, clock } = await kind.open();
    const [r] = await store.enqueue([{ tenant: 'acme', bodyMd: 'a', engine: 'codex' }]);
    const [c] = await store.claim({
      factoryId: 'f1',
      tenants: ['acme'],
      capabilities: [],
      limit: 1,
      leaseTtlMs: 5_000,
    });
    expect(c!.job).toMatchObject({ id: r!.job.id, stage: 'claimed', attempts: 1, leaseEpoch: 1 });
    expect(c!.lease).toEqual({
      jobId: r!.job.id,
      tenant: 'acme',
      holderFactoryId: 'f1',
      expiresAt: clock.now() + 5_000,
      leaseEpoch: 1,
      renewals: 0,
    });
    expect(c!.run).toMatchObject({
      jobId: r!.job.id,
      attempt: 1,
      factoryId: 'f1',
      engine: 'codex',
      leaseEpoch: 1,
      startedAt: clock.now(),
      endedAt: null,
      result: null,
    });
    expect(await store.listRuns('acme', r!.job.id)).toEqual([c!.run]);
    expect(await store.getJob('acme', r!.job.id)).toEqual(c!.job);
    expect(await claimOne(store)).toEqual([]);
  });

  it('waits for runAt', async () => {
    const { store, clock } = await kind.open();
    await store.enqueue([{ tenant: 'acme', bodyMd: 'later', runAt: clock.now() + 60_000 }]);
    expect(await claimOne(store)).toEqual([]);
    clock.advance(60_000);
    expect(await claimOne(store)).toHaveLength(1);
  });

  it('needs the factory to have every capability the job asks for', async () => {
    const { store } = await kind.open();
    await store.enqueue([{ tenant: 'acme', bodyMd: 'gpu', capabilities: ['gpu', 'linux'] }]);
    expect(await claimOne(store, 'f', ['linux'])).toEqual([]);
    expect(await claimOne(store, 'f', ['gpu', 'linux', 'node'])).toHaveLength(1);
  });

  it('serves only the factory tenants, and several at once', async () => {
    const { store } = await kind.open();
    await store.enqueue([{ tenant: 'acme', bodyMd: 'a' }]);
    await store.enqueue([{ tenant: 'beta', bodyMd: 'b' }]);
    expect(
      await store.claim({ factoryId: 'f', tenants: ['gamma'], capabilities: [], limit: 5 }),
    ).toEqual([]);
    const both = await store.claim({
      factoryId: 'f',
      tenants: ['acme', 'beta'],
      capabilities: [],
      limit: 5,
    });
    expect(both.map((c) => c.job.tenant).sort()).toEqual(['acme', 'beta']);
  });

  it('never claims blocked or composite jobs, and respects the limit', async () => {
    const { store } = await kind.open();
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'dep', key: 'dep', runAt: Date.UTC(2100, 0) },
      { tenant: 'acme', bodyMd: 'waits', deps: ['dep'] },
      { tenant: 'acme', bodyMd: 'plan', kind: 'composite' },
      { tenant: 'acme', bodyMd: 'gate', requiresApproval: true },
      ...Array.from({ length: 5 }, (_, i) => ({ tenant: 'acme', bodyMd: `leaf${i}` })),
    ]);
    const claimed = await store.claim({
      factoryId: 'f',
      tenants: ['acme'],
      capabilities: [],
      limit: 3,
    });
    expect(claimed).toHaveLength(3);
    const rest = await store.claim({
      factoryId: 'f',
      tenants: ['acme'],
      capabilities: [],
      limit: 100,
    });
    expect(rest.map((c) => c.job.bodyMd).sort()).toEqual(['leaf3', 'leaf4']);
  });

  it('gives a lock to one job at a time, within a batch and across claims', async () => {
    const { store } = await kind.open();
    const res = await store.enqueue([
      { tenant: 'acme', bodyMd: 'l1', lock: 'repo' },
      { tenant: 'acme', bodyMd: 'l2', lock: 'repo' },
      { tenant: 'acme', bodyMd: 'free' },
    ]);
    const first = await store.claim({
      factoryId: 'f',
      tenants: ['acme'],
      capabilities: [],
      limit: 10,
    });
    expect(first.map((c) => c.job.bodyMd).sort()).toEqual(['free', 'l1']);
    expect(await claimOne(store)).toEqual([]);
    // Another tenant's lock of the same name is another lock.
    await store.enqueue([{ tenant: 'beta', bodyMd: 'b', lock: 'repo' }]);
    expect(
      await store.claim({ factoryId: 'f', tenants: ['beta'], capabilities: [], limit: 1 }),
    ).toHaveLength(1);
    const l1 = first.find((c) => c.job.bodyMd === 'l1')!;
    await store.complete({ jobId: l1.job.id, epoch: l1.lease.leaseEpoch });
    const next = await claimOne(store);
    expect(next.map((c) => c.job.id)).toEqual([res[1]!.job.id]);
  });

  it('freezes the profile into the run', async () => {
    const { store } = await kind.open();
    await store.createProfile({ tenant: 'acme', name: 'backend', persona: 'v1' });
    await store.createProfile({
      tenant: 'acme',
      name: 'backend',
      persona: 'v2',
      defaults: { model: 'm' },
    });
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'pinned', profile: 'backend@1', priority: 2 },
      { tenant: 'acme', bodyMd: 'latest', profile: 'backend', priority: 1 },
      { tenant: 'acme', bodyMd: 'missing', profile: 'ghost@3' },
    ]);
    const claimed = await store.claim({
      factoryId: 'f',
      tenants: ['acme'],
      capabilities: [],
      limit: 3,
    });
    expect(claimed.map((c) => c.run.profileSnapshot)).toEqual([
      { name: 'backend', version: 1, persona: 'v1', defaults: {}, promptParts: [] },
      { name: 'backend', version: 2, persona: 'v2', defaults: { model: 'm' }, promptParts: [] },
      null,
    ]);
  });
});
