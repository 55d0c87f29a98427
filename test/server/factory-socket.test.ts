import { expect, it } from 'vitest';
import { describeStores, type StoreKind } from '../helpers/stores.js';
import { hashSecret } from '../../src/server/token-secret.js';
import { bearer } from './helpers.js';
import { RawFactory, hello, openFactorySocket } from './raw-factory.js';

async function setup(kind: StoreKind) {
  const server = await openFactorySocket(kind);
  const { url, factoryToken } = server;
  const connect = async (
    lane: 'control' | 'events',
    token: string | null = factoryToken,
    name = 'host-a',
  ) => {
    const f = new RawFactory(url, token);
    await f.open();
    const reply = await f.request(hello(lane, name));
    return { f, reply };
  };
  return { ...server, connect };
}

describeStores('factory protocol', (kind) => {
  it('registers, is woken by a submit, claims, heartbeats, streams events and completes', async () => {
    const { app, store, connect, token } = await setup(kind);
    const { f: control, reply } = await connect('control');
    const result = reply.result as { factoryId: string; leaseTtlMs: number; heartbeatMs: number };
    expect(result).toMatchObject({ leaseTtlMs: 30_000, heartbeatMs: 10_000 });
    const factory = await store.getFactory('acme', result.factoryId);
    expect(factory).toMatchObject({
      name: 'host-a',
      seats: 2,
      capabilities: ['linux'],
      status: 'online',
    });
    const { f: events } = await connect('events');

    const woken = control.nextPush();
    const op = await token('operator', ['acme']);
    await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: bearer(op),
      payload: { jobs: [{ bodyMd: 'do it', capabilities: ['linux'] }] },
    });
    expect(await woken).toEqual({ type: 'wake' });

    const claimed = await control.request({ type: 'claim', limit: 5 });
    const [a] = (
      claimed.result as {
        assignments: { job: { id: string }; lease: { leaseEpoch: number }; agentToken?: string }[];
      }
    ).assignments;
    expect(a).toBeDefined();
    const ref = { jobId: a!.job.id, epoch: a!.lease.leaseEpoch };
    // The run's agent gets a token of its own: an agent token scoped to this job.
    expect(a!.agentToken).toMatch(/^fleet_agt_/);
    const agentToken = await store.findTokenByHash(hashSecret(a!.agentToken!));
    expect(agentToken).toMatchObject({ role: 'agent', tenants: ['acme'], jobId: ref.jobId });
    expect(agentToken!.expiresAt).toBeGreaterThan(Date.now());

    const beat = await control.request({
      type: 'heartbeat',
      leases: [ref, { jobId: ref.jobId, epoch: 99 }],
    });
    expect(beat.result).toMatchObject({
      renewed: [{ jobId: ref.jobId, renewals: 1 }],
      stale: [{ epoch: 99, code: 'stale_lease' }],
    });

    expect((await control.request({ type: 'start', ...ref })).result).toMatchObject({
      job: { stage: 'running' },
    });
    const appended = await events.request({
      type: 'events',
      batches: [
        {
          ...ref,
          events: [
            { type: 'message', data: { text: 'hi' } },
            { type: 'tool_call', data: { name: 'bash' } },
          ],
        },
      ],
    });
    expect(appended.result).toEqual({
      results: [{ jobId: ref.jobId, ok: true, firstSeq: 4, lastSeq: 5 }],
    });

    const done = await control.request({
      type: 'complete',
      ...ref,
      exit: { code: 0, signal: null },
      insights: { tokensIn: 10 },
    });
    expect(done.result).toMatchObject({ job: { stage: 'succeeded' } });
    // The run ended: its agent's token is revoked.
    expect(await store.findTokenByHash(hashSecret(a!.agentToken!))).toBeNull();
    const late = await events.request({
      type: 'events',
      batches: [{ ...ref, events: [{ type: 'late' }] }],
    });
    expect(late.result).toMatchObject({ results: [{ ok: false, error: { code: 'stale_lease' } }] });
    expect((await store.readEvents('acme', ref.jobId)).map((e) => e.type)).toEqual([
      'stage',
      'stage',
      'stage',
      'message',
      'tool_call',
      'stage',
    ]);
    control.close();
    events.close();
  });

  it('answers bad messages with precise errors and keeps the socket open', async () => {
    const { connect } = await setup(kind);
    const { f } = await connect('control');
    const errored = f.nextPush();
    f.sendRaw('{not json');
    expect(await errored).toMatchObject({
      type: 'error',
      error: { code: 'invalid_input', message: expect.stringMatching(/not JSON/) },
    });
    const bad = await f.request({ type: 'claim', limit: 0 });
    expect(bad.error).toMatchObject({ code: 'invalid_input', issues: [{ path: 'limit' }] });
    const unknown = await f.request({ type: 'dance' });
    expect(unknown.error).toMatchObject({ code: 'invalid_input', issues: [{ path: 'type' }] });
    const extra = await f.request({ type: 'claim', limit: 1, colour: 'red' });
    expect(extra.error?.issues).toEqual([{ path: 'colour', message: 'unknown field' }]);
    const lane = await f.request({
      type: 'events',
      batches: [{ jobId: 'x', epoch: 1, events: [{ type: 'a' }] }],
    });
    expect(lane.error).toMatchObject({ code: 'wrong_lane' });
    const twice = await f.request(hello('control'));
    expect(twice.error).toMatchObject({ code: 'already_registered' });
    expect((await f.request({ type: 'claim', limit: 1 })).result).toEqual({ assignments: [] });
    f.close();
  });

  it('needs hello first, and a factory or admin token', async () => {
    const { url, token } = await setup(kind);
    const f = new RawFactory(url, await token('factory', ['acme']));
    await f.open();
    expect((await f.request({ type: 'claim', limit: 1 })).error).toMatchObject({
      code: 'not_registered',
    });
    f.close();
    const anonymous = new RawFactory(url, null);
    await expect(anonymous.open()).rejects.toThrow(/401/);
    const operator = new RawFactory(url, await token('operator', ['acme']));
    await expect(operator.open()).rejects.toThrow(/403/);
  });

  it('reconciles held runs, pushes cancel, and fences off another factory', async () => {
    const { app, store, connect, token, admin } = await setup(kind);
    const { f: a } = await connect('control', undefined, 'host-a');
    const { f: b } = await connect('control', undefined, 'host-b');
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'one' },
      { tenant: 'acme', bodyMd: 'two' },
    ]);
    const claimed = (await a.request({ type: 'claim', limit: 2 })).result as {
      assignments: { job: { id: string }; lease: { leaseEpoch: number }; agentToken: string }[];
    };
    const [one, two] = claimed.assignments.map((x) => ({
      jobId: x.job.id,
      epoch: x.lease.leaseEpoch,
    }));

    // Another factory cannot write about a job it does not hold, even with the right epoch.
    const { f: bEvents } = await connect('events', undefined, 'host-b');
    const foreign = await bEvents.request({
      type: 'events',
      batches: [{ ...one!, events: [{ type: 'x' }] }],
    });
    expect(foreign.result).toMatchObject({
      results: [{ ok: false, error: { code: 'stale_lease' } }],
    });
    expect((await b.request({ type: 'complete', ...one! })).error).toMatchObject({
      code: 'stale_lease',
    });

    const cancelled = a.nextPush();
    const op = await token('operator', ['acme']);
    await app.inject({
      method: 'POST',
      url: `/v1/jobs/${two!.jobId}/cancel`,
      headers: bearer(op),
      payload: { reason: 'wrong repo' },
    });
    expect(await cancelled).toEqual({
      type: 'cancel',
      jobId: two!.jobId,
      epoch: two!.epoch,
      reason: 'wrong repo',
    });
    // A cancelled run's agent loses its token; the other run's keeps working.
    const [tokenOne, tokenTwo] = claimed.assignments.map((x) => hashSecret(x.agentToken));
    await expect.poll(() => store.findTokenByHash(tokenTwo!)).toBeNull();
    expect(await store.findTokenByHash(tokenOne!)).toMatchObject({ jobId: one!.jobId });

    const rec = await a.request({
      type: 'reconcile',
      runs: [one, two, { jobId: one!.jobId, epoch: 7 }],
    });
    expect(rec.result).toEqual({ valid: [one], stale: [two, { jobId: one!.jobId, epoch: 7 }] });
    expect((await store.getJob('acme', one!.jobId))!.lease!.renewals).toBe(1);
    expect(admin).toBeTruthy();
    a.close();
    b.close();
    bEvents.close();
  });

  it('marks a factory offline when its last control socket closes', async () => {
    const { store, connect } = await setup(kind);
    const { f, reply } = await connect('control');
    const { factoryId } = reply.result as { factoryId: string };
    f.close();
    for (
      let i = 0;
      i < 50 && (await store.getFactory('acme', factoryId))!.status !== 'offline';
      i++
    )
      await new Promise((r) => setTimeout(r, 20));
    expect((await store.getFactory('acme', factoryId))!.status).toBe('offline');
  });
});
