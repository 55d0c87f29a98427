import { expect, it } from 'vitest';
import { describeStores } from '../helpers/stores.js';
import { bearer, openServer } from './helpers.js';

describeStores('factories API', (kind) => {
  it('lists the caller tenant factories and drains one', async () => {
    const { app, store, token } = await openServer(kind);
    const mine = await store.registerFactory({ tenant: 'acme', name: 'host-a', seats: 2 });
    await store.registerFactory({ tenant: 'beta', name: 'host-b' });
    const op = await token('operator', ['acme']);

    const list = await app.inject({ url: '/v1/factories', headers: bearer(op) });
    expect(list.statusCode).toBe(200);
    expect(list.json().items.map((f: { name: string }) => f.name)).toEqual(['host-a']);

    const drain = await app.inject({
      method: 'POST',
      url: `/v1/factories/${mine.id}/drain`,
      headers: bearer(op),
    });
    expect(drain.statusCode).toBe(200);
    expect(drain.json().factory).toMatchObject({ id: mine.id, status: 'draining', rev: 2 });
    expect((await store.getFactory('acme', mine.id))?.status).toBe('draining');

    // Draining again is a no-op, not a conflict.
    const again = await app.inject({
      method: 'POST',
      url: `/v1/factories/${mine.id}/drain`,
      headers: bearer(op),
    });
    expect(again.statusCode).toBe(200);
    expect(again.json().factory).toMatchObject({ status: 'draining', rev: 2 });
  });

  it("answers 404 for another tenant's factory and for a missing one", async () => {
    const { app, store, token, admin } = await openServer(kind);
    const theirs = await store.registerFactory({ tenant: 'beta', name: 'host-b' });
    const op = await token('operator', ['acme']);
    for (const id of [theirs.id, 'nope']) {
      const res = await app.inject({
        method: 'POST',
        url: `/v1/factories/${id}/drain`,
        headers: bearer(op),
      });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    expect((await store.getFactory('beta', theirs.id))?.status).toBe('online');
    // An admin names the tenant.
    const byAdmin = await app.inject({
      method: 'POST',
      url: `/v1/factories/${theirs.id}/drain?tenant=beta`,
      headers: bearer(admin),
    });
    expect(byAdmin.json().factory.status).toBe('draining');
  });

  it('refuses factory and agent tokens, and no token', async () => {
    const { app, token } = await openServer(kind);
    const fac = await token('factory', ['acme']);
    expect((await app.inject({ url: '/v1/factories', headers: bearer(fac) })).statusCode).toBe(403);
    const job = 'job-1';
    const agent = await token('agent', ['acme'], job);
    expect((await app.inject({ url: '/v1/factories', headers: bearer(agent) })).statusCode).toBe(
      403,
    );
    expect((await app.inject({ url: '/v1/factories' })).statusCode).toBe(401);
  });
});

describeStores('tokens API', (kind) => {
  it('mints a token whose secret works once shown, and stops working when revoked', async () => {
    const { app, admin } = await openServer(kind);
    const mint = await app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: bearer(admin),
      payload: { name: 'ci', role: 'operator', tenants: ['acme'] },
    });
    expect(mint.statusCode).toBe(201);
    const { token, secret } = mint.json();
    expect(secret).toMatch(/^fleet_op_/);
    expect(token).toMatchObject({
      tenant: 'acme',
      name: 'ci',
      role: 'operator',
      tenants: ['acme'],
      jobId: null,
      prefix: secret.slice(0, 14),
      revokedAt: null,
    });
    expect(token).not.toHaveProperty('hash');

    const use = await app.inject({ url: '/v1/jobs', headers: bearer(secret) });
    expect(use.statusCode).toBe(200);

    const revoke = await app.inject({
      method: 'POST',
      url: `/v1/tokens/${token.id}/revoke`,
      headers: bearer(admin),
    });
    expect(revoke.statusCode).toBe(200);
    expect(revoke.json().token.revokedAt).toEqual(expect.any(Number));

    const after = await app.inject({ url: '/v1/jobs', headers: bearer(secret) });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('unauthorized');
  });

  it('lists tokens without their secrets, filtered by tenant on request', async () => {
    const { app, admin } = await openServer(kind);
    const secrets: string[] = [];
    for (const payload of [
      { name: 'ops', role: 'operator', tenants: ['acme'] },
      { name: 'fac', role: 'factory', tenants: ['beta', 'acme'] },
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/tokens',
        headers: bearer(admin),
        payload,
      });
      secrets.push(res.json().secret);
    }
    const list = await app.inject({ url: '/v1/tokens', headers: bearer(admin) });
    expect(list.statusCode).toBe(200);
    const items = list.json().items as { name: string; tenant: string }[];
    expect(items.map((t) => t.name).sort()).toEqual(['admin', 'fac', 'ops']);
    for (const s of [...secrets, admin]) expect(list.body).not.toContain(s);
    expect(list.body).not.toMatch(/"(secret|hash)"/);

    const acme = await app.inject({ url: '/v1/tokens?tenant=acme', headers: bearer(admin) });
    expect(acme.json().items.map((t: { name: string }) => t.name)).toEqual(['ops']);
  });

  it('is for admins only', async () => {
    const { app, token } = await openServer(kind);
    const op = await token('operator', ['acme']);
    const mint = await app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: bearer(op),
      payload: { name: 'x', role: 'operator', tenants: ['acme'] },
    });
    expect(mint.statusCode).toBe(403);
    expect(mint.json().error.code).toBe('forbidden');
    expect((await app.inject({ url: '/v1/tokens', headers: bearer(op) })).statusCode).toBe(403);
    const revoke = await app.inject({
      method: 'POST',
      url: '/v1/tokens/whatever/revoke',
      headers: bearer(op),
    });
    expect(revoke.statusCode).toBe(403);
    expect((await app.inject({ url: '/v1/tokens' })).statusCode).toBe(401);
  });

  it('rejects invalid token specs naming the field', async () => {
    const { app, admin } = await openServer(kind);
    const mint = (payload: object) =>
      app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(admin), payload });
    const cases: [object, string][] = [
      [{ name: 'x', role: 'operator', tenants: [] }, 'body.tenants'],
      [{ name: 'x', role: 'admin', tenants: ['acme'] }, 'body.tenants'],
      [{ name: 'x', role: 'factory' }, 'body.tenants'],
      [{ name: 'x', role: 'agent', tenants: ['acme'] }, 'body.jobId'],
      [{ name: 'x', role: 'operator', tenants: ['acme'], jobId: 'j' }, 'body.jobId'],
      [{ name: 'x', role: 'root' }, 'body.role'],
      [{ name: '', role: 'admin' }, 'body.name'],
      [{ name: 'x', role: 'operator', tenants: ['Not A Tenant'] }, 'body.tenants.0'],
      [{ name: 'x', role: 'admin', expiresAt: 'tomorrow' }, 'body.expiresAt'],
      [{ name: 'x', role: 'admin', scope: 'all' }, 'body.scope'],
    ];
    for (const [payload, path] of cases) {
      const res = await mint(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.code).toBe('invalid_input');
      expect(
        res.json().error.issues.map((i: { path: string }) => i.path),
        JSON.stringify(payload),
      ).toContain(path);
    }
  });

  it('mints an agent token scoped to its job, in that tenant', async () => {
    const { app, admin, store } = await openServer(kind);
    const job = (await store.enqueue([{ tenant: 'acme', bodyMd: 'x' }]))[0]!.job;
    const mint = await app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: bearer(admin),
      payload: { name: 'agent', role: 'agent', tenants: ['acme'], jobId: job.id },
    });
    expect(mint.statusCode).toBe(201);
    const { secret } = mint.json();
    const own = await app.inject({ url: `/v1/jobs/${job.id}`, headers: bearer(secret) });
    expect(own.statusCode).toBe(200);
  });

  it('answers 404 when revoking an unknown token, and revoking twice is harmless', async () => {
    const { app, admin, store, token } = await openServer(kind);
    const revoke = (id: string) =>
      app.inject({ method: 'POST', url: `/v1/tokens/${id}/revoke`, headers: bearer(admin) });
    const missing = await revoke('nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');

    await token('operator', ['acme']);
    const op = (await store.listTokens('acme'))[0]!;
    const first = await revoke(op.id);
    const second = await revoke(op.id);
    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
    expect(second.json().token.revokedAt).toBe(first.json().token.revokedAt);
  });
});
