import { expect, it } from 'vitest';
import { describeStores } from '../helpers/stores.js';
import { bearer, openServer } from './helpers.js';

describeStores('jobs API', (kind) => {
  it('submits, lists and reads jobs in the caller tenant', async () => {
    const { app, token } = await openServer(kind);
    const op = await token('operator', ['acme']);
    const submit = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: bearer(op),
      payload: {
        jobs: [
          { bodyMd: 'a', key: 'a' },
          { bodyMd: 'b', key: 'b', deps: ['a'] },
        ],
      },
    });
    expect(submit.statusCode).toBe(201);
    const [a, b] = submit.json().jobs;
    expect(a).toMatchObject({ created: true, job: { tenant: 'acme', stage: 'queued', key: 'a' } });
    expect(b.job).toMatchObject({ stage: 'blocked', deps: [a.job.id] });

    const list = await app.inject({
      url: '/v1/jobs?stage=queued,blocked&limit=1',
      headers: bearer(op),
    });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toMatchObject({ items: [{ key: 'b' }], next: b.job.id });
    const page2 = await app.inject({ url: `/v1/jobs?after=${b.job.id}`, headers: bearer(op) });
    expect(page2.json().items.map((j: { key: string }) => j.key)).toEqual(['a']);

    const detail = await app.inject({ url: `/v1/jobs/${a.job.id}`, headers: bearer(op) });
    expect(detail.statusCode).toBe(200);
    expect(detail.json()).toMatchObject({
      job: { id: a.job.id, lease: null, checkpoint: null },
      runs: [],
      insights: { tokensIn: 0, costUsd: 0 },
    });
    expect(detail.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers a repeated idempotency key with 200 and the first job', async () => {
    const { app, admin } = await openServer(kind);
    const send = () =>
      app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: bearer(admin),
        payload: { jobs: [{ bodyMd: 'x', idempotencyKey: 'deploy-1' }] },
      });
    const first = await send();
    const again = await send();
    expect([first.statusCode, again.statusCode]).toEqual([201, 200]);
    expect(again.json().jobs[0]).toMatchObject({
      created: false,
      job: { id: first.json().jobs[0].job.id, tenant: 'default' },
    });
  });

  it('rejects invalid bodies with the field path and what was expected', async () => {
    const { app, admin } = await openServer(kind);
    const post = (payload: unknown) =>
      app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: bearer(admin),
        payload: payload as object,
      });
    const bad = await post({ jobs: [{ bodyMd: 'ok' }, { bodyMd: 3, priority: 'high' }] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('invalid_input');
    expect(
      bad
        .json()
        .error.issues.map((i: { path: string }) => i.path)
        .sort(),
    ).toEqual(['body.jobs.1.bodyMd', 'body.jobs.1.priority']);
    expect((await post({ jobs: [{ bodyMd: 'x', timout: 5 }] })).json().error.issues).toEqual([
      { path: 'body.jobs.0.timout', message: 'unknown field' },
    ]);
    expect((await post({ jobs: [] })).json().error.issues[0].path).toBe('body.jobs');
    const unknownDep = await post({ jobs: [{ bodyMd: 'x', key: 'x', deps: ['ghost'] }] });
    expect(unknownDep.statusCode).toBe(400);
    expect(unknownDep.json().error).toMatchObject({
      code: 'unknown_dependency',
      message: expect.stringMatching(/ghost/),
    });
    const malformed = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { ...bearer(admin), 'content-type': 'application/json' },
      payload: '{"jobs": [',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('bad_request');
    const badQuery = await app.inject({
      url: '/v1/jobs?stage=done&limit=0',
      headers: bearer(admin),
    });
    expect(badQuery.statusCode).toBe(400);
    expect(
      badQuery
        .json()
        .error.issues.map((i: { path: string }) => i.path)
        .sort(),
    ).toEqual(['querystring.limit', 'querystring.stage.0']);
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(admin) })).json().items).toEqual(
      [],
    );
  });

  it('needs a valid token, and the right role', async () => {
    const { app, token, store } = await openServer(kind);
    expect((await app.inject({ url: '/v1/jobs' })).json()).toMatchObject({
      error: { code: 'unauthorized' },
    });
    expect((await app.inject({ url: '/v1/jobs' })).statusCode).toBe(401);
    const wrong = await app.inject({ url: '/v1/jobs', headers: bearer('fleet_op_nope') });
    expect(wrong.statusCode).toBe(401);
    expect(
      (await app.inject({ url: '/v1/jobs', headers: { authorization: 'Basic abc' } })).statusCode,
    ).toBe(401);
    const fac = await token('factory', ['acme']);
    const denied = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: bearer(fac),
      payload: { jobs: [{ bodyMd: 'x' }] },
    });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe('forbidden');
    const op = await token('operator', ['acme']);
    const [t] = await store.listTokens('acme');
    await store.revokeToken(t!.id);
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(fac) })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(op) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({
      ok: true,
      version: 'test',
      store: kind.name,
    });
    expect((await app.inject({ url: '/v1/nope', headers: bearer(op) })).json().error.code).toBe(
      'not_found',
    );
  });

  it('hides other tenants: their jobs are 404, naming their tenant is 403', async () => {
    const { app, token, store } = await openServer(kind);
    const [r] = await store.enqueue([{ tenant: 'beta', bodyMd: 'secret' }]);
    const op = await token('operator', ['acme']);
    for (const [method, url] of [
      ['GET', `/v1/jobs/${r!.job.id}`],
      ['POST', `/v1/jobs/${r!.job.id}/cancel`],
      ['POST', `/v1/jobs/${r!.job.id}/retry`],
      ['POST', `/v1/jobs/${r!.job.id}/approve`],
    ] as const) {
      const res = await app.inject({ method, url, headers: bearer(op) });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    expect(
      (await app.inject({ url: '/v1/jobs?tenant=beta', headers: bearer(op) })).statusCode,
    ).toBe(403);
    expect(
      (await app.inject({ url: '/v1/jobs', headers: { ...bearer(op), 'x-fleet-tenant': 'beta' } }))
        .statusCode,
    ).toBe(403);
    const fac = await token('factory', ['acme', 'beta']);
    expect((await app.inject({ url: '/v1/jobs', headers: bearer(fac) })).json().error.code).toBe(
      'tenant_required',
    );
    expect(
      (await app.inject({ url: '/v1/jobs?tenant=beta', headers: bearer(fac) })).json().items,
    ).toHaveLength(1);
    expect((await store.getJob('beta', r!.job.id))!.stage).toBe('queued');
  });

  it('cancels, retries and approves, mapping domain errors to 409', async () => {
    const { app, token } = await openServer(kind);
    const op = await token('operator', ['acme']);
    const submit = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: bearer(op),
      payload: { jobs: [{ bodyMd: 'a' }, { bodyMd: 'gate', requiresApproval: true }] },
    });
    const [a, gate] = submit.json().jobs.map((x: { job: { id: string } }) => x.job.id);
    const cancelled = await app.inject({
      method: 'POST',
      url: `/v1/jobs/${a}/cancel`,
      headers: bearer(op),
      payload: { reason: 'not needed' },
    });
    expect(cancelled.json().job).toMatchObject({ stage: 'cancelled', stageReason: 'not needed' });
    const twice = await app.inject({
      method: 'POST',
      url: `/v1/jobs/${a}/cancel`,
      headers: bearer(op),
    });
    expect(twice.statusCode).toBe(409);
    expect(twice.json().error.code).toBe('illegal_transition');
    expect(
      (await app.inject({ method: 'POST', url: `/v1/jobs/${a}/retry`, headers: bearer(op) })).json()
        .job.stage,
    ).toBe('queued');
    expect(
      (
        await app.inject({ method: 'POST', url: `/v1/jobs/${gate}/approve`, headers: bearer(op) })
      ).json().job.stage,
    ).toBe('queued');
    const agent = await token('agent', ['acme'], a);
    expect(
      (await app.inject({ method: 'POST', url: `/v1/jobs/${a}/cancel`, headers: bearer(agent) }))
        .statusCode,
    ).toBe(403);
  });

  it('scopes an agent token to its job and the children it submits', async () => {
    const { app, token, store } = await openServer(kind);
    const [parent, other] = await store.enqueue([
      { tenant: 'acme', bodyMd: 'parent' },
      { tenant: 'acme', bodyMd: 'other' },
    ]);
    const agent = await token('agent', ['acme'], parent!.job.id);
    const child = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: bearer(agent),
      payload: { jobs: [{ bodyMd: 'child' }] },
    });
    expect(child.statusCode).toBe(201);
    const childJob = child.json().jobs[0].job;
    expect(childJob.parentId).toBe(parent!.job.id);
    expect(
      (await app.inject({ url: `/v1/jobs/${parent!.job.id}`, headers: bearer(agent) })).statusCode,
    ).toBe(200);
    expect(
      (await app.inject({ url: `/v1/jobs/${childJob.id}`, headers: bearer(agent) })).statusCode,
    ).toBe(200);
    expect(
      (await app.inject({ url: `/v1/jobs/${other!.job.id}`, headers: bearer(agent) })).statusCode,
    ).toBe(404);
    expect(
      (await app.inject({ url: '/v1/jobs', headers: bearer(agent) }))
        .json()
        .items.map((j: { id: string }) => j.id),
    ).toEqual([childJob.id]);
    const stray = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: bearer(agent),
      payload: { jobs: [{ bodyMd: 'x', parentId: other!.job.id }] },
    });
    expect(stray.statusCode).toBe(403);
  });
});
