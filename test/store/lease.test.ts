import { expect, it } from 'vitest';
import { IllegalTransitionError, StaleLeaseError } from '../../src/core/index.js';
import type { Claimed, Store } from '../../src/store/index.js';
import { describeStores } from '../helpers/stores.js';

async function claimed(
  store: Store,
  spec: { maxAttempts?: number; lock?: string } = {},
): Promise<Claimed> {
  await store.enqueue([{ tenant: 'acme', bodyMd: 'work', ...spec }]);
  const [c] = await store.claim({
    factoryId: 'f1',
    tenants: ['acme'],
    capabilities: [],
    limit: 1,
    leaseTtlMs: 10_000,
  });
  return c!;
}

describeStores('leases and fencing', (kind) => {
  it('renews a live lease, alone or in a batch', async () => {
    const { store, clock } = await kind.open();
    const a = await claimed(store);
    const b = await claimed(store);
    clock.advance(4_000);
    const lease = await store.renew({ jobId: a.job.id, epoch: 1 }, 10_000);
    expect(lease).toMatchObject({ expiresAt: clock.now() + 10_000, renewals: 1, leaseEpoch: 1 });
    const outcomes = await store.renewMany(
      [
        { jobId: a.job.id, epoch: 1 },
        { jobId: b.job.id, epoch: 7 },
        { jobId: b.job.id, epoch: 1 },
      ],
      10_000,
    );
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    expect(outcomes[1]).toMatchObject({
      ok: false,
      error: { code: 'stale_lease', heldEpoch: 7, currentEpoch: 1 },
    });
    expect((await store.getJob('acme', a.job.id))!.lease!.renewals).toBe(2);
  });

  it('renews a lease named twice in one batch once', async () => {
    const { store } = await kind.open();
    const a = await claimed(store);
    const ref = { jobId: a.job.id, epoch: 1 };
    const outcomes = await store.renewMany([ref, ref]);
    expect(outcomes.map((o) => o.ok && o.value.renewals)).toEqual([1, 1]);
    expect((await store.getJob('acme', a.job.id))!.lease!.renewals).toBe(1);
  });

  it('walks claimed → running → verifying and refuses skipped steps', async () => {
    const { store } = await kind.open();
    const c = await claimed(store);
    const ref = { jobId: c.job.id, epoch: 1 };
    await expect(store.markVerifying(ref)).rejects.toBeInstanceOf(IllegalTransitionError);
    expect((await store.markRunning(ref)).stage).toBe('running');
    await expect(store.markRunning(ref)).rejects.toMatchObject({
      code: 'illegal_transition',
      from: 'running',
    });
    expect((await store.markVerifying(ref)).stage).toBe('verifying');
    const done = await store.complete({ ...ref, verifyResult: { passed: true, commands: [] } });
    expect(done.stage).toBe('succeeded');
    const stages = (await store.readEvents('acme', c.job.id))
      .filter((e) => e.type === 'stage')
      .map((e) => e.data.to);
    expect(stages).toEqual(['queued', 'claimed', 'running', 'verifying', 'succeeded']);
  });

  it('reaps an expired lease: run lease_lost, job queued with backoff, old epoch fenced off', async () => {
    const { store, clock } = await kind.open();
    const c = await claimed(store, { lock: 'repo' });
    const ref = { jobId: c.job.id, epoch: 1 };
    await store.saveCheckpoint(ref, { wipBranch: 'fleet/wip', wipBase: 'abc', wipCommit: 'def' });
    clock.advance(9_999);
    expect(await store.reapExpired()).toEqual([]);
    clock.advance(2);
    const reaped = await store.reapExpired();
    expect(reaped).toEqual([{ jobId: c.job.id, tenant: 'acme', epoch: 1, stage: 'queued' }]);
    const job = (await store.getJob('acme', c.job.id))!;
    // First retry: exponential 1 s with random 0.5 → 750 ms.
    expect(job).toMatchObject({
      stage: 'queued',
      lease: null,
      leaseEpoch: 1,
      stageReason: 'lease_lost',
      runAt: clock.now() + 750,
      checkpoint: { wipBranch: 'fleet/wip', wipBase: 'abc', wipCommit: 'def' },
    });
    const [run] = await store.listRuns('acme', c.job.id);
    expect(run).toMatchObject({ result: 'lease_lost', endedAt: clock.now() });

    for (const write of [
      () => store.complete(ref),
      () => store.fail({ ...ref, result: 'agent_failed', error: 'x' }),
      () => store.renew(ref),
      () => store.markRunning(ref),
      () => store.appendEvents(ref, [{ type: 'log' }]),
      () => store.saveCheckpoint(ref, { wipBranch: 'b', wipBase: 'c', wipCommit: 'd' }),
      () => store.putArtifact(ref, { kind: 'log', name: 'out.txt' }, Buffer.from('late')),
    ]) {
      await expect(write()).rejects.toBeInstanceOf(StaleLeaseError);
    }
    expect(await store.listArtifacts('acme', c.job.id)).toEqual([]);

    clock.advance(750);
    const [again] = await store.claim({
      factoryId: 'f2',
      tenants: ['acme'],
      capabilities: [],
      limit: 1,
    });
    expect(again!.lease).toMatchObject({ leaseEpoch: 2, holderFactoryId: 'f2' });
    expect(again!.run.attempt).toBe(2);
    await expect(store.complete(ref)).rejects.toMatchObject({ heldEpoch: 1, currentEpoch: 2 });
    expect((await store.complete({ jobId: c.job.id, epoch: 2 })).stage).toBe('succeeded');
  });

  it('fails a job whose last attempt lost its lease', async () => {
    const { store, clock } = await kind.open();
    const c = await claimed(store, { maxAttempts: 1 });
    clock.advance(10_001);
    expect(await store.reapExpired()).toEqual([
      { jobId: c.job.id, tenant: 'acme', epoch: 1, stage: 'failed' },
    ]);
    expect(await store.getJob('acme', c.job.id)).toMatchObject({
      stage: 'failed',
      stageReason: 'lease_lost',
      finishedAt: clock.now(),
    });
  });

  it('reports a stale write on an unknown job as not found', async () => {
    const { store } = await kind.open();
    await expect(store.renew({ jobId: 'nope', epoch: 1 })).rejects.toMatchObject({
      code: 'not_found',
    });
    await expect(store.complete({ jobId: 'nope', epoch: 1 })).rejects.toMatchObject({
      code: 'not_found',
    });
  });
});
