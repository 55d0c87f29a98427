import { expect, it } from 'vitest';
import { IllegalTransitionError, NotFoundError } from '../../src/core/index.js';
import { describeStores } from '../helpers/stores.js';

const plan = (key = 'release') => ({
  tenant: 'acme',
  key,
  kind: 'composite' as const,
  bodyMd: 'the release plan',
});

describeStores('composite jobs (plans)', (kind) => {
  it('enqueues a plan and its jobs in one batch, children naming the parent by key', async () => {
    const { store } = await kind.open();
    // The children come first in the batch: the parent is still inserted before them.
    const results = await store.enqueue([
      { tenant: 'acme', key: 'release/a', bodyMd: 'a', parentId: 'release' },
      { tenant: 'acme', key: 'release/b', bodyMd: 'b', parentId: 'release', deps: ['release/a'] },
      plan(),
    ]);
    const [a, b, p] = results.map((r) => r.job);
    expect(p).toMatchObject({ kind: 'composite', stage: 'queued', parentId: null });
    expect(a).toMatchObject({ parentId: p!.id, stage: 'queued' });
    expect(b).toMatchObject({ parentId: p!.id, stage: 'blocked', deps: [a!.id] });

    const children = await store.listJobs('acme', { parentId: p!.id });
    expect(children.items.map((j) => j.key).sort()).toEqual(['release/a', 'release/b']);
    const plans = await store.listJobs('acme', { kind: 'composite' });
    expect(plans.items.map((j) => j.id)).toEqual([p!.id]);

    // A plan is never claimed.
    const claimed = await store.claim({
      factoryId: 'f1',
      tenants: ['acme'],
      capabilities: [],
      limit: 10,
    });
    expect(claimed.map((c) => c.job.key)).toEqual(['release/a']);
  });

  it('lists unfinished plans across tenants, and not finished ones', async () => {
    const { store } = await kind.open();
    const [one] = await store.enqueue([plan('one')]);
    const [two] = await store.enqueue([{ ...plan('two'), tenant: 'other' }]);
    const [done] = await store.enqueue([plan('done')]);
    await store.settle('acme', done!.job.id, { stage: 'succeeded' });
    const open = await store.openComposites();
    expect(open).toEqual(
      [
        { tenant: 'acme', id: one!.job.id },
        { tenant: 'other', id: two!.job.id },
      ].sort((x, y) => x.id.localeCompare(y.id)),
    );
  });

  it('settles a plan: success promotes its dependents, failure fails them', async () => {
    const { store } = await kind.open();
    const [p, after] = await store.enqueue([
      plan('p1'),
      { tenant: 'acme', key: 'after-p1', bodyMd: 'x', deps: ['p1'] },
    ]);
    expect(after!.job.stage).toBe('blocked');
    const settled = await store.settle('acme', p!.job.id, { stage: 'succeeded' });
    expect(settled).toMatchObject({ stage: 'succeeded', stageReason: null });
    expect(settled.finishedAt).not.toBeNull();
    expect((await store.getJob('acme', after!.job.id))!.stage).toBe('queued');

    const [q, later] = await store.enqueue([
      plan('p2'),
      { tenant: 'acme', key: 'after-p2', bodyMd: 'x', deps: ['p2'] },
    ]);
    const failed = await store.settle('acme', q!.job.id, {
      stage: 'failed',
      reason: 'gate_failed',
      error: 'phase build: gate failed (npm test exited 1)',
    });
    expect(failed).toMatchObject({
      stage: 'failed',
      stageReason: 'gate_failed',
      lastError: 'phase build: gate failed (npm test exited 1)',
    });
    expect(await store.getJob('acme', later!.job.id)).toMatchObject({
      stage: 'failed',
      stageReason: 'dep_failed',
    });
    const events = await store.readEvents('acme', q!.job.id);
    expect(events.at(-1)).toMatchObject({
      type: 'stage',
      data: { from: 'queued', to: 'failed', reason: 'gate_failed' },
    });
  });

  it('refuses to settle a leaf job, a finished plan, or another tenant’s plan', async () => {
    const { store } = await kind.open();
    const [leaf, p] = await store.enqueue([{ tenant: 'acme', bodyMd: 'x' }, plan()]);
    await expect(store.settle('acme', leaf!.job.id, { stage: 'succeeded' })).rejects.toBeInstanceOf(
      IllegalTransitionError,
    );
    expect((await store.getJob('acme', leaf!.job.id))!.stage).toBe('queued');
    await expect(store.settle('other', p!.job.id, { stage: 'succeeded' })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await store.settle('acme', p!.job.id, { stage: 'failed', reason: 'gate_failed' });
    await expect(store.settle('acme', p!.job.id, { stage: 'succeeded' })).rejects.toBeInstanceOf(
      IllegalTransitionError,
    );
    expect((await store.getJob('acme', p!.job.id))!.stage).toBe('failed');
  });

  it('attaches artifacts to a plan without a lease, and only to a plan', async () => {
    const { store } = await kind.open();
    const [leaf, p] = await store.enqueue([{ tenant: 'acme', bodyMd: 'x' }, plan()]);
    const report = new TextEncoder().encode('# Phase build\n\nPASS\n');
    const a = await store.attachArtifact(
      'acme',
      p!.job.id,
      { kind: 'report', name: 'phase-1-build.md', mediaType: 'text/markdown' },
      report,
    );
    expect(a).toMatchObject({ jobId: p!.job.id, kind: 'report', size: report.length });
    expect(new TextDecoder().decode(await store.readArtifact('acme', a.id))).toBe(
      '# Phase build\n\nPASS\n',
    );
    await expect(
      store.attachArtifact('acme', leaf!.job.id, { kind: 'report', name: 'x' }, report),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      store.attachArtifact('other', p!.job.id, { kind: 'report', name: 'x' }, report),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.listArtifacts('acme', leaf!.job.id)).toEqual([]);
  });
});
