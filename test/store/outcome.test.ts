import { expect, it } from 'vitest';
import { IllegalTransitionError, StaleLeaseError } from '../../src/core/index.js';
import type { Claimed, Store } from '../../src/store/index.js';
import { describeStores } from '../helpers/stores.js';

async function claimAll(store: Store, tenant = 'acme'): Promise<Claimed[]> {
  return store.claim({ factoryId: 'f1', tenants: [tenant], capabilities: [], limit: 100 });
}

const ref = (c: Claimed) => ({ jobId: c.job.id, epoch: c.lease.leaseEpoch });

describeStores('completion, failure, retries and dependencies', (kind) => {
  it('records the run of a completed attempt', async () => {
    const { store, clock } = await kind.open();
    await store.enqueue([{ tenant: 'acme', bodyMd: 'a' }]);
    const [c] = await claimAll(store);
    clock.advance(1234);
    const insights = {
      model: 'claude',
      tokensIn: 10,
      tokensOut: 5,
      costUsd: 0.01,
      estimated: true,
    };
    const verifyResult = {
      passed: true,
      commands: [{ command: 'npm test', exit: 0, outputTail: 'ok', durationMs: 12 }],
    };
    const job = await store.complete({
      ...ref(c!),
      exit: { code: 0, signal: null },
      verifyResult,
      insights,
      output: { commit: 'abc123' },
    });
    expect(job).toMatchObject({ stage: 'succeeded', lease: null, finishedAt: clock.now() });
    expect((await store.getRun('acme', c!.run.id))!).toMatchObject({
      result: 'success',
      endedAt: clock.now(),
      exit: { code: 0, signal: null },
      verifyResult,
      insights,
      output: { commit: 'abc123' },
    });
    expect(await store.getRun('beta', c!.run.id)).toBeNull();
  });

  it('writes a terminal stage exactly once', async () => {
    const { store } = await kind.open();
    await store.enqueue([{ tenant: 'acme', bodyMd: 'a' }]);
    const [c] = await claimAll(store);
    await store.complete(ref(c!));
    await expect(store.complete(ref(c!))).rejects.toBeInstanceOf(StaleLeaseError);
    await expect(
      store.fail({ ...ref(c!), result: 'agent_failed', error: 'x' }),
    ).rejects.toBeInstanceOf(StaleLeaseError);
    await expect(store.cancel('acme', c!.job.id)).rejects.toBeInstanceOf(IllegalTransitionError);
    const job = (await store.getJob('acme', c!.job.id))!;
    expect(job.stage).toBe('succeeded');
    const terminal = (await store.readEvents('acme', job.id)).filter(
      (e) => e.data.to === 'succeeded',
    );
    expect(terminal).toHaveLength(1);
  });

  it('requeues a failed attempt with growing backoff, then fails when attempts are spent', async () => {
    const { store, clock } = await kind.open();
    await store.enqueue([{ tenant: 'acme', bodyMd: 'a', maxAttempts: 3 }]);
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [c] = await claimAll(store);
      expect(c!.run.attempt).toBe(attempt);
      const job = await store.fail({
        ...ref(c!),
        result: 'agent_failed',
        error: `boom ${attempt}`,
      });
      expect(job.lastError).toBe(`boom ${attempt}`);
      if (attempt < 3) {
        expect(job).toMatchObject({ stage: 'queued', stageReason: 'agent_failed' });
        delays.push(job.runAt - clock.now());
        expect(await claimAll(store)).toEqual([]);
        clock.advance(job.runAt - clock.now());
      } else {
        expect(job).toMatchObject({
          stage: 'failed',
          stageReason: 'agent_failed',
          finishedAt: clock.now(),
        });
      }
    }
    expect(delays).toEqual([750, 1500]);
    const runs = await store.listRuns('acme', (await store.listJobs('acme')).items[0]!.id);
    expect(runs.map((r) => [r.attempt, r.result, r.output])).toEqual([
      [1, 'agent_failed', { error: 'boom 1' }],
      [2, 'agent_failed', { error: 'boom 2' }],
      [3, 'agent_failed', { error: 'boom 3' }],
    ]);
  });

  it('fails at once when the failure is not retryable', async () => {
    const { store } = await kind.open();
    await store.enqueue([{ tenant: 'acme', bodyMd: 'a', maxAttempts: 5 }]);
    const [c] = await claimAll(store);
    const job = await store.fail({
      ...ref(c!),
      result: 'crashed',
      error: 'no engine',
      retryable: false,
    });
    expect(job).toMatchObject({ stage: 'failed', stageReason: 'crashed', attempts: 1 });
  });

  it('reports each item of a batch on its own', async () => {
    const { store } = await kind.open();
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'a' },
      { tenant: 'acme', bodyMd: 'b' },
      { tenant: 'acme', bodyMd: 'c' },
    ]);
    const [a, b, c] = await claimAll(store);
    const outcomes = await store.completeMany([
      ref(a!),
      { jobId: b!.job.id, epoch: 9 },
      ref(c!),
      ref(a!),
      { jobId: 'missing', epoch: 1 },
    ]);
    expect(outcomes.map((o) => (o.ok ? o.value.stage : o.error.code))).toEqual([
      'succeeded',
      'stale_lease',
      'succeeded',
      'stale_lease',
      'not_found',
    ]);
    expect((await store.getJob('acme', b!.job.id))!.stage).toBe('claimed');
    const failed = await store.failMany([
      {
        ...ref(b!),
        result: 'timeout',
        error: 'took too long',
        checkpoint: { wipBranch: 'w', wipBase: 'b', wipCommit: 'c' },
      },
    ]);
    expect(failed[0]).toMatchObject({
      ok: true,
      value: {
        stage: 'queued',
        stageReason: 'timeout',
        checkpoint: { wipBranch: 'w', wipBase: 'b', wipCommit: 'c' },
      },
    });
  });

  it('queues a dependent when its last dependency succeeds', async () => {
    const { store } = await kind.open();
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'a', key: 'a' },
      { tenant: 'acme', bodyMd: 'b', key: 'b' },
      { tenant: 'acme', bodyMd: 'c', key: 'c', deps: ['a', 'b'] },
    ]);
    const [a, b] = await claimAll(store);
    expect([a!.job.key, b!.job.key].sort()).toEqual(['a', 'b']);
    await store.complete(ref(a!));
    expect((await store.listJobs('acme', { key: 'c' })).items[0]!.stage).toBe('blocked');
    await store.complete(ref(b!));
    const [c] = await claimAll(store);
    expect(c!.job.key).toBe('c');
  });

  it('fails dependents transitively when a dependency fails or is cancelled', async () => {
    const { store } = await kind.open();
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'a', key: 'a', maxAttempts: 1 },
      { tenant: 'acme', bodyMd: 'b', key: 'b', deps: ['a'] },
      { tenant: 'acme', bodyMd: 'c', key: 'c', deps: ['b'] },
      { tenant: 'acme', bodyMd: 'x', key: 'x' },
      { tenant: 'acme', bodyMd: 'y', key: 'y', deps: ['x'] },
    ]);
    const claimed = await claimAll(store);
    const a = claimed.find((c) => c.job.key === 'a')!;
    await store.fail({ ...ref(a), result: 'agent_failed', error: 'bad' });
    await store.cancel('acme', claimed.find((c) => c.job.key === 'x')!.job.id, 'cancelled_by_user');
    const byKey = async (key: string) => (await store.listJobs('acme', { key })).items[0]!;
    expect(await byKey('b')).toMatchObject({
      stage: 'failed',
      stageReason: 'dep_failed',
      lastError: 'dependency a failed',
    });
    expect(await byKey('c')).toMatchObject({
      stage: 'failed',
      stageReason: 'dep_failed',
      lastError: 'dependency b failed',
    });
    expect(await byKey('x')).toMatchObject({
      stage: 'cancelled',
      stageReason: 'cancelled_by_user',
    });
    expect(await byKey('y')).toMatchObject({ stage: 'failed', stageReason: 'dep_failed' });
  });

  it('cancels an active job: run cancelled, lease and lock freed, holder fenced off', async () => {
    const { store } = await kind.open();
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'a', lock: 'repo' },
      { tenant: 'acme', bodyMd: 'b', lock: 'repo' },
    ]);
    const [a] = await claimAll(store);
    await store.markRunning(ref(a!));
    const job = await store.cancel('acme', a!.job.id);
    expect(job).toMatchObject({ stage: 'cancelled', lease: null, stageReason: 'cancelled' });
    expect((await store.getRun('acme', a!.run.id))!.result).toBe('cancelled');
    await expect(store.appendEvents(ref(a!), [{ type: 'log' }])).rejects.toBeInstanceOf(
      StaleLeaseError,
    );
    const [b] = await claimAll(store);
    expect(b!.job.bodyMd).toBe('b');
  });

  it('retries a failed job and re-opens the dependents it failed', async () => {
    const { store, clock } = await kind.open();
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'a', key: 'a', maxAttempts: 1 },
      { tenant: 'acme', bodyMd: 'b', key: 'b', deps: ['a'] },
    ]);
    const [a] = await claimAll(store);
    await store.fail({ ...ref(a!), result: 'agent_failed', error: 'bad' });
    const [bJob] = (await store.listJobs('acme', { key: 'b' })).items;
    await expect(store.retry('acme', bJob!.id)).rejects.toMatchObject({
      code: 'illegal_transition',
      message: expect.stringMatching(/dependency a is failed; retry it first/),
    });
    clock.advance(5);
    const retried = await store.retry('acme', a!.job.id);
    expect(retried).toMatchObject({
      stage: 'queued',
      attempts: 0,
      finishedAt: null,
      lastError: null,
      runAt: clock.now(),
    });
    expect((await store.getJob('acme', bJob!.id))!.stage).toBe('blocked');
    const [again] = await claimAll(store);
    expect(again!.lease.leaseEpoch).toBe(2);
    await store.complete(ref(again!));
    const [b] = await claimAll(store);
    expect(b!.job.id).toBe(bJob!.id);
    await expect(store.retry('acme', a!.job.id)).rejects.toBeInstanceOf(IllegalTransitionError);
  });

  it('holds a job that needs approval until approved, after its deps', async () => {
    const { store } = await kind.open();
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'a', key: 'a' },
      { tenant: 'acme', bodyMd: 'gate', key: 'gate', deps: ['a'], requiresApproval: true },
      { tenant: 'acme', bodyMd: 'solo', key: 'solo', requiresApproval: true },
    ]);
    const [a] = await claimAll(store);
    expect(a!.job.key).toBe('a');
    await store.complete(ref(a!));
    const gate = (await store.listJobs('acme', { key: 'gate' })).items[0]!;
    expect(gate.stage).toBe('blocked');
    expect(await store.approve('acme', gate.id)).toMatchObject({ stage: 'queued' });
    await expect(store.approve('acme', gate.id)).rejects.toBeInstanceOf(IllegalTransitionError);
    const solo = (await store.listJobs('acme', { key: 'solo' })).items[0]!;
    expect(solo.stage).toBe('blocked');
    expect((await store.approve('acme', solo.id)).approvedAt).not.toBeNull();
    expect((await claimAll(store)).map((c) => c.job.key).sort()).toEqual(['gate', 'solo']);
  });
});
