import { expect, it } from 'vitest';
import { describeStores, type StoreKind } from '../helpers/stores.js';
import { bearer } from './helpers.js';
import { RawFactory, hello, openFactorySocket } from './raw-factory.js';

async function setup(kind: StoreKind) {
  const server = await openFactorySocket(kind);
  const { url, factoryToken } = server;
  const connect = async (lane: 'control' | 'events', extra: Record<string, unknown> = {}) => {
    const f = new RawFactory(url, factoryToken);
    await f.open();
    const reply = await f.request({ ...hello(lane), ...extra });
    const result = reply.result as { factoryId: string; draining?: boolean };
    return { f, factoryId: result.factoryId, hello: result };
  };
  const submit = async (n: number) => {
    const op = await server.token('operator', ['acme']);
    const jobs = Array.from({ length: n }, (_, i) => ({ bodyMd: `job ${i}` }));
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: bearer(op),
      payload: { jobs },
    });
    expect(res.statusCode).toBe(201);
  };
  const drain = async (factoryId: string) => {
    const op = await server.token('operator', ['acme']);
    const res = await server.app.inject({
      method: 'POST',
      url: `/v1/factories/${factoryId}/drain`,
      headers: bearer(op),
    });
    expect(res.statusCode).toBe(200);
  };
  return { ...server, connect, submit, drain };
}

type Assignments = { assignments: { job: { id: string }; lease: { leaseEpoch: number } }[] };

describeStores('factory protocol: drain', (kind) => {
  it('hands a draining factory no new claims, while its held runs go on', async () => {
    const { connect, submit, drain, store } = await setup(kind);
    const { f: control, factoryId } = await connect('control');
    await submit(2);
    const first = (await control.request({ type: 'claim', limit: 1 })).result as Assignments;
    expect(first.assignments).toHaveLength(1);
    const a = first.assignments[0]!;

    await drain(factoryId);
    const none = await control.request({ type: 'claim', limit: 5 });
    expect(none.result).toEqual({ assignments: [], draining: true });
    // The job left behind is still queued; the held run still reports.
    expect((await store.listJobs('acme', { stage: 'queued' })).items).toHaveLength(1);
    const start = await control.request({
      type: 'start',
      jobId: a.job.id,
      epoch: a.lease.leaseEpoch,
    });
    expect(start.result).toMatchObject({ job: { stage: 'running' } });
    control.close();
  });

  it('a reconnect of the same process stays drained; a fresh process comes back online', async () => {
    const { connect, submit, drain, store } = await setup(kind);
    const { f: first, factoryId } = await connect('control');
    await drain(factoryId);
    first.close();
    await submit(1);

    const { f: again, hello: rehello } = await connect('control', { reconnect: true });
    // The hello tells the reconnecting factory it is drained.
    expect(rehello.draining).toBe(true);
    expect((await store.getFactory('acme', factoryId))?.status).toBe('draining');
    expect((await again.request({ type: 'claim', limit: 1 })).result).toEqual({
      assignments: [],
      draining: true,
    });
    again.close();

    const { f: fresh, hello: freshHello } = await connect('control');
    expect(freshHello.draining).toBe(false);
    expect((await store.getFactory('acme', factoryId))?.status).toBe('online');
    const claimed = (await fresh.request({ type: 'claim', limit: 1 })).result as Assignments;
    expect(claimed.assignments).toHaveLength(1);
    fresh.close();
  });
});

describeStores('factory protocol: a factory drains itself', (kind) => {
  it('a drain request marks it draining; it is then handed no claims', async () => {
    const { connect, submit, store } = await setup(kind);
    const { f: control, factoryId } = await connect('control');
    const { f: events } = await connect('events');
    await submit(1);
    const wrong = await events.request({ type: 'drain' });
    expect(wrong.error).toMatchObject({ code: 'wrong_lane' });
    expect((await store.getFactory('acme', factoryId))?.status).toBe('online');

    expect((await control.request({ type: 'drain' })).result).toEqual({ status: 'draining' });
    expect((await store.getFactory('acme', factoryId))?.status).toBe('draining');
    // Again is fine.
    expect((await control.request({ type: 'drain' })).result).toEqual({ status: 'draining' });
    expect((await control.request({ type: 'claim', limit: 1 })).result).toEqual({
      assignments: [],
      draining: true,
    });
    control.close();
    events.close();
  });
});

describeStores('factory protocol: exactly-once events', (kind) => {
  it('skips what is already stored of a batch sent again with its local number', async () => {
    const { connect, submit, store } = await setup(kind);
    const { f: control } = await connect('control');
    const { f: events } = await connect('events');
    await submit(1);
    const claimed = (await control.request({ type: 'claim', limit: 1 })).result as Assignments;
    const a = claimed.assignments[0]!;
    const ref = { jobId: a.job.id, epoch: a.lease.leaseEpoch };
    const batch = (from: number, to: number) => ({
      ...ref,
      localSeq: from,
      events: Array.from({ length: to - from + 1 }, (_, i) => ({
        type: 'log',
        data: { n: from + i },
      })),
    });

    const one = await events.request({ type: 'events', batches: [batch(1, 3)] });
    expect(one.result).toEqual({
      results: [{ jobId: ref.jobId, ok: true, firstSeq: 3, lastSeq: 5, duplicates: 0 }],
    });
    const resent = await events.request({ type: 'events', batches: [batch(1, 3), batch(2, 4)] });
    expect(resent.result).toEqual({
      results: [
        { jobId: ref.jobId, ok: true, firstSeq: 6, lastSeq: 5, duplicates: 3 },
        { jobId: ref.jobId, ok: true, firstSeq: 6, lastSeq: 6, duplicates: 2 },
      ],
    });
    const bad = await events.request({
      type: 'events',
      batches: [{ ...batch(5, 5), localSeq: 0 }],
    });
    expect(bad.error).toMatchObject({ code: 'invalid_input' });
    expect(JSON.stringify(bad.error)).toContain('batches.0.localSeq');

    const stored = await store.readEvents('acme', ref.jobId);
    expect(stored.filter((e) => e.type === 'log').map((e) => e.data.n)).toEqual([1, 2, 3, 4]);
    control.close();
    events.close();
  });
});
