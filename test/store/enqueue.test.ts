import { expect, it } from 'vitest';
import {
  ConflictError,
  DependencyCycleError,
  IllegalTransitionError,
  InvalidInputError,
  NotFoundError,
  UnknownDependencyError,
} from '../../src/core/index.js';
import { describeStores } from '../helpers/stores.js';

describeStores('enqueue and job records', (kind) => {
  it('applies defaults and starts a job with no deps queued', async () => {
    const { store, clock } = await kind.open();
    const [r] = await store.enqueue([{ tenant: 'acme', bodyMd: '# do it' }]);
    expect(r!.created).toBe(true);
    expect(r!.job).toMatchObject({
      tenant: 'acme',
      stage: 'queued',
      bodyMd: '# do it',
      kind: 'leaf',
      priority: 0,
      engine: 'shell',
      maxAttempts: 3,
      attempts: 0,
      leaseEpoch: 0,
      lease: null,
      runAt: clock.now(),
      rev: 1,
      deps: [],
      checkpoint: null,
    });
    expect(await store.getJob('acme', r!.job.id)).toEqual(r!.job);
    const events = await store.readEvents('acme', r!.job.id);
    expect(events).toEqual([
      expect.objectContaining({
        seq: 1,
        type: 'stage',
        data: expect.objectContaining({ to: 'queued' }),
      }),
    ]);
  });

  it('keeps every field of a full spec', async () => {
    const { store } = await kind.open();
    const spec = {
      tenant: 'acme',
      bodyMd: 'body',
      key: 'svc-risk',
      manifest: { engine: 'codex', nested: { a: [1, 2] } },
      priority: 7,
      capabilities: ['node', 'linux'],
      engine: 'codex',
      profile: 'backend@2',
      lock: 'repo',
      timeoutMs: 90_000,
      maxAttempts: 5,
      runAt: 5,
      verify: ['npm test'],
    };
    const [r] = await store.enqueue([spec]);
    const { tenant, ...rest } = spec;
    expect(r!.job).toMatchObject({ tenant, ...rest, capabilities: ['linux', 'node'] });
  });

  it('returns the existing job for a repeated idempotency key', async () => {
    const { store } = await kind.open();
    const [first] = await store.enqueue([{ tenant: 'acme', bodyMd: 'a', idempotencyKey: 'k1' }]);
    const [again] = await store.enqueue([
      { tenant: 'acme', bodyMd: 'other', idempotencyKey: 'k1' },
    ]);
    expect(again!.created).toBe(false);
    expect(again!.job.id).toBe(first!.job.id);
    expect(again!.job.bodyMd).toBe('a');
    // Another tenant's key is another job.
    const [other] = await store.enqueue([{ tenant: 'beta', bodyMd: 'a', idempotencyKey: 'k1' }]);
    expect(other!.created).toBe(true);
    expect((await store.countJobs()).queued).toBe(2);
  });

  it('resolves deps by key within a batch and blocks until they succeed', async () => {
    const { store } = await kind.open();
    const res = await store.enqueue([
      { tenant: 'acme', bodyMd: 'b', key: 'b', deps: ['a'] },
      { tenant: 'acme', bodyMd: 'a', key: 'a' },
    ]);
    const [b, a] = res.map((r) => r.job);
    expect(a!.stage).toBe('queued');
    expect(b!.stage).toBe('blocked');
    expect(b!.deps).toEqual([a!.id]);
  });

  it('resolves deps on stored jobs by key (newest wins) or id', async () => {
    const { store, clock } = await kind.open();
    const [old] = await store.enqueue([{ tenant: 'acme', bodyMd: '1', key: 'k' }]);
    clock.advance(10);
    const [newer] = await store.enqueue([{ tenant: 'acme', bodyMd: '2', key: 'k' }]);
    const [byKey, byId] = await store.enqueue([
      { tenant: 'acme', bodyMd: 'x', deps: ['k'] },
      { tenant: 'acme', bodyMd: 'y', deps: [old!.job.id] },
    ]);
    expect(byKey!.job.deps).toEqual([newer!.job.id]);
    expect(byId!.job.deps).toEqual([old!.job.id]);
  });

  it('starts a job whose stored dep already failed as failed (dep_failed)', async () => {
    const { store } = await kind.open();
    const [dep] = await store.enqueue([{ tenant: 'acme', bodyMd: 'a', key: 'a' }]);
    await store.cancel('acme', dep!.job.id);
    const [j] = await store.enqueue([{ tenant: 'acme', bodyMd: 'b', deps: ['a'] }]);
    expect(j!.job).toMatchObject({ stage: 'failed', stageReason: 'dep_failed' });
  });

  it('rejects unknown deps, cycles, mixed tenants and bad fields, writing nothing', async () => {
    const { store } = await kind.open();
    await expect(
      store.enqueue([{ tenant: 'acme', bodyMd: 'a', key: 'a', deps: ['nope'] }]),
    ).rejects.toBeInstanceOf(UnknownDependencyError);
    await expect(
      store.enqueue([{ tenant: 'acme', bodyMd: 'a', key: 'a', deps: ['nope'] }]),
    ).rejects.toMatchObject({ code: 'unknown_dependency', jobRef: 'a', dependency: 'nope' });
    await expect(
      store.enqueue([
        { tenant: 'acme', bodyMd: 'a', key: 'a', deps: ['b'] },
        { tenant: 'acme', bodyMd: 'b', key: 'b', deps: ['a'] },
      ]),
    ).rejects.toBeInstanceOf(DependencyCycleError);
    await expect(
      store.enqueue([
        { tenant: 'acme', bodyMd: 'a' },
        { tenant: 'beta', bodyMd: 'b' },
      ]),
    ).rejects.toMatchObject({ code: 'invalid_input', issues: [{ path: '1.tenant' }] });
    const bad = store.enqueue([
      { tenant: 'acme', bodyMd: 'ok' },
      { tenant: 'acme', bodyMd: 'x', priority: 'high' as unknown as number, timeoutMs: -1 },
    ]);
    await expect(bad).rejects.toBeInstanceOf(InvalidInputError);
    const err = (await bad.catch((e: unknown) => e)) as InvalidInputError;
    expect(err.issues.map((i) => i.path).sort()).toEqual(['1.priority', '1.timeoutMs']);
    expect(err.message).toMatch(/1\.priority: .*number/);
    await expect(store.enqueue([])).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(
      store.enqueue([{ tenant: 'acme', bodyMd: 'x', timout: 1 } as never]),
    ).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringMatching(/timout/) });
    const counts = await store.countJobs('acme');
    expect(Object.values(counts).reduce((a, b) => a + b)).toBe(0);
  });

  it('names positions in the batch as sent, even around idempotent hits', async () => {
    const { store } = await kind.open();
    await store.enqueue([{ tenant: 'acme', bodyMd: 'a', idempotencyKey: 'once' }]);
    await expect(
      store.enqueue([
        { tenant: 'acme', bodyMd: 'a', idempotencyKey: 'once' },
        { tenant: 'acme', bodyMd: 'b', key: 'dup' },
        { tenant: 'acme', bodyMd: 'c', key: 'dup' },
      ]),
    ).rejects.toMatchObject({
      code: 'invalid_input',
      issues: [{ path: '2.key', message: 'duplicate key "dup" (also job 1)' }],
    });
  });

  it('scopes reads by tenant', async () => {
    const { store } = await kind.open();
    const [r] = await store.enqueue([{ tenant: 'acme', bodyMd: 'a' }]);
    expect(await store.getJob('beta', r!.job.id)).toBeNull();
    expect((await store.listJobs('beta')).items).toEqual([]);
    await expect(store.cancel('beta', r!.job.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.updateJob('beta', r!.job.id, 1, { priority: 1 })).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it('lists newest first with filters and cursor paging', async () => {
    const { store } = await kind.open();
    const specs = Array.from({ length: 7 }, (_, i) => ({
      tenant: 'acme',
      bodyMd: String(i),
      key: `k${i}`,
      lock: i % 2 === 0 ? 'even' : null,
    }));
    const created = (await store.enqueue(specs)).map((r) => r.job.id);
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.listJobs('acme', { limit: 3, after });
      seen.push(...page.items.map((j) => j.id));
      if (page.next === null) break;
      after = page.next;
    }
    expect(seen).toEqual([...created].sort().reverse());
    const even = await store.listJobs('acme', { lock: 'even' });
    expect(even.items).toHaveLength(4);
    expect((await store.listJobs('acme', { key: 'k3' })).items.map((j) => j.bodyMd)).toEqual(['3']);
    expect((await store.listJobs('acme', { stage: ['succeeded', 'failed'] })).items).toEqual([]);
  });

  it('updates with optimistic concurrency', async () => {
    const { store } = await kind.open();
    const [r] = await store.enqueue([{ tenant: 'acme', bodyMd: 'a' }]);
    const updated = await store.updateJob('acme', r!.job.id, 1, {
      priority: 9,
      manifest: { x: 1 },
    });
    expect(updated).toMatchObject({ priority: 9, manifest: { x: 1 }, rev: 2 });
    const stale = store.updateJob('acme', r!.job.id, 1, { priority: 3 });
    await expect(stale).rejects.toBeInstanceOf(ConflictError);
    await expect(stale).rejects.toMatchObject({ expectedRev: 1, actualRev: 2 });
    await expect(
      store.updateJob('acme', r!.job.id, 2, { stage: 'succeeded' } as never),
    ).rejects.toMatchObject({ code: 'invalid_input' });
    expect((await store.getJob('acme', r!.job.id))!.priority).toBe(9);
  });

  it('deletes only finished jobs', async () => {
    const { store } = await kind.open();
    const [r] = await store.enqueue([{ tenant: 'acme', bodyMd: 'a' }]);
    await expect(store.deleteJob('acme', r!.job.id)).rejects.toBeInstanceOf(IllegalTransitionError);
    await store.cancel('acme', r!.job.id);
    await store.deleteJob('acme', r!.job.id);
    expect(await store.getJob('acme', r!.job.id)).toBeNull();
    expect(await store.readEvents('acme', r!.job.id)).toEqual([]);
    await expect(store.deleteJob('acme', r!.job.id)).rejects.toBeInstanceOf(NotFoundError);
  });
});
