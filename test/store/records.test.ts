import { expect, it } from 'vitest';
import { ConflictError, IllegalTransitionError, NotFoundError } from '../../src/core/index.js';
import { describeStores } from '../helpers/stores.js';

describeStores('factories', (kind) => {
  it('registers, re-registers by name, updates by rev and deletes', async () => {
    const { store, clock } = await kind.open();
    const f = await store.registerFactory({
      tenant: 'acme',
      name: 'host-a',
      capabilities: ['linux'],
      seats: 4,
    });
    expect(f).toMatchObject({
      name: 'host-a',
      kind: 'factory',
      seats: 4,
      status: 'online',
      rev: 1,
      lastSeenAt: clock.now(),
    });
    clock.advance(100);
    const again = await store.registerFactory({
      tenant: 'acme',
      name: 'host-a',
      seats: 8,
      version: '1.2.0',
    });
    expect(again).toMatchObject({
      id: f.id,
      seats: 8,
      version: '1.2.0',
      rev: 2,
      lastSeenAt: clock.now(),
    });
    const drained = await store.updateFactory('acme', f.id, 2, { status: 'draining' });
    expect(drained).toMatchObject({ status: 'draining', rev: 3 });
    await expect(store.updateFactory('acme', f.id, 2, { seats: 1 })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await expect(store.updateFactory('acme', f.id, 3, { seats: -1 })).rejects.toMatchObject({
      code: 'invalid_input',
      issues: [{ path: 'seats' }],
    });
    expect(await store.getFactory('beta', f.id)).toBeNull();
    expect((await store.listFactories('acme')).map((x) => x.id)).toEqual([f.id]);
    await store.registerFactory({ tenant: 'beta', name: 'host-b', seats: 3 });
    await store.registerFactory({ tenant: 'beta', name: 'host-c', seats: 5, status: 'offline' });
    // Across tenants; draining and offline factories take no new work.
    expect(await store.onlineFactorySeats()).toEqual({ online: 1, seats: 3 });
    await store.deleteFactory('acme', f.id);
    await expect(store.deleteFactory('acme', f.id)).rejects.toBeInstanceOf(NotFoundError);
  });
});

describeStores('profiles', (kind) => {
  it('makes immutable numbered versions', async () => {
    const { store } = await kind.open();
    const v1 = await store.createProfile({ tenant: 'acme', name: 'backend', persona: 'careful' });
    const v2 = await store.createProfile({
      tenant: 'acme',
      name: 'backend',
      persona: 'bold',
      defaults: { engine: 'codex', costMode: 'economy' },
      promptParts: ['Use TypeScript.'],
    });
    expect([v1.version, v2.version]).toEqual([1, 2]);
    expect(await store.getProfile('acme', 'backend')).toEqual(v2);
    expect(await store.getProfile('acme', 'backend', 1)).toEqual(v1);
    expect(await store.getProfile('beta', 'backend')).toBeNull();
    expect((await store.listProfiles('acme')).map((p) => p.version)).toEqual([1, 2]);
    await expect(store.createProfile({ tenant: 'acme', name: 'Bad Name' })).rejects.toMatchObject({
      code: 'invalid_input',
      issues: [{ path: 'name' }],
    });
    const raced = await Promise.all(
      Array.from({ length: 5 }, () => store.createProfile({ tenant: 'acme', name: 'race' })),
    );
    expect(raced.map((p) => p.version).sort()).toEqual([1, 2, 3, 4, 5]);
  });
});

describeStores('signals', (kind) => {
  it('sends idempotently by key and moves status forward only', async () => {
    const { store } = await kind.open();
    const [r] = await store.enqueue([{ tenant: 'acme', bodyMd: 'a' }]);
    const jobId = r!.job.id;
    const first = await store.sendSignal({
      tenant: 'acme',
      jobId,
      key: 'k1',
      body: 'also add tests',
    });
    expect(first).toMatchObject({
      created: true,
      signal: { status: 'pending', body: 'also add tests', rev: 1 },
    });
    const dup = await store.sendSignal({ tenant: 'acme', jobId, key: 'k1', body: 'different' });
    expect(dup).toEqual({ created: false, signal: first.signal });
    const delivered = await store.setSignalStatus('acme', first.signal.id, 1, 'delivered');
    expect(delivered).toMatchObject({ status: 'delivered', rev: 2 });
    expect(delivered.deliveredAt).not.toBeNull();
    await expect(
      store.setSignalStatus('acme', first.signal.id, 2, 'pending'),
    ).rejects.toBeInstanceOf(IllegalTransitionError);
    await expect(
      store.setSignalStatus('acme', first.signal.id, 1, 'drained'),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(
      (await store.setSignalStatus('acme', first.signal.id, 2, 'drained')).drainedAt,
    ).not.toBeNull();
    expect((await store.listSignals('acme', jobId)).map((s) => s.key)).toEqual(['k1']);
    expect(await store.getSignal('beta', first.signal.id)).toBeNull();
  });

  it('refuses a finished or unknown target with a structured error', async () => {
    const { store } = await kind.open();
    const [r] = await store.enqueue([{ tenant: 'acme', bodyMd: 'a' }]);
    await store.cancel('acme', r!.job.id);
    await expect(
      store.sendSignal({ tenant: 'acme', jobId: r!.job.id, key: 'k', body: 'hi' }),
    ).rejects.toMatchObject({ code: 'illegal_transition', from: 'cancelled' });
    await expect(
      store.sendSignal({ tenant: 'beta', jobId: r!.job.id, key: 'k', body: 'hi' }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.listSignals('acme', r!.job.id)).toEqual([]);
  });
});

describeStores('schedules', (kind) => {
  it('creates, updates by rev, lists and deletes', async () => {
    const { store } = await kind.open();
    const s = await store.createSchedule({
      tenant: 'acme',
      name: 'nightly',
      rule: { kind: 'cron', expr: '0 3 * * *', tz: 'Europe/Paris' },
      template: { bodyMd: 'run the audit', engine: 'shell' },
    });
    expect(s).toMatchObject({ paused: false, allowOverlap: false, nextRunAt: null, rev: 1 });
    const paused = await store.updateSchedule('acme', s.id, 1, { paused: true, nextRunAt: 99 });
    expect(paused).toMatchObject({ paused: true, nextRunAt: 99, rev: 2 });
    await expect(store.updateSchedule('acme', s.id, 1, { paused: false })).rejects.toBeInstanceOf(
      ConflictError,
    );
    await expect(
      store.createSchedule({
        tenant: 'acme',
        name: 'bad',
        rule: { kind: 'every', everyMs: 0 },
        template: {},
      }),
    ).rejects.toMatchObject({ code: 'invalid_input', issues: [{ path: 'rule.everyMs' }] });
    expect((await store.listSchedules('acme')).map((x) => x.name)).toEqual(['nightly']);
    await store.deleteSchedule('acme', s.id);
    expect(await store.getSchedule('acme', s.id)).toBeNull();
  });

  it('lists due schedules across tenants: not paused, nextRunAt <= now, earliest first', async () => {
    const { store } = await kind.open();
    const rule = { kind: 'every', everyMs: 1000 } as const;
    const make = (tenant: string, name: string, nextRunAt: number | null, paused = false) =>
      store.createSchedule({ tenant, name, rule, template: { bodyMd: name }, nextRunAt, paused });
    await make('acme', 'late', 300);
    await make('globex', 'early', 100);
    await make('acme', 'exact', 500);
    await make('acme', 'future', 501);
    await make('acme', 'paused', 50, true);
    await make('globex', 'finished', null);
    const due = await store.listDueSchedules(500);
    expect(due.map((s) => [s.tenant, s.name])).toEqual([
      ['globex', 'early'],
      ['acme', 'late'],
      ['acme', 'exact'],
    ]);
    expect((await store.listDueSchedules(500, 1)).map((s) => s.name)).toEqual(['early']);
  });
});
