import { expect, it } from 'vitest';
import { FleetApiError, type FleetClient, FleetClientError } from '../../src/client/index.js';
import { describeStores } from '../helpers/stores.js';
import { claimedJob, listen } from './helpers.js';

/** The error a call rejects with (fails the test when it resolves). */
async function failure(call: Promise<unknown>): Promise<FleetApiError> {
  try {
    await call;
  } catch (err) {
    expect(err).toBeInstanceOf(FleetApiError);
    return err as FleetApiError;
  }
  throw new Error('expected the call to fail');
}

const requestId = /^[0-9a-f-]{36}$/;

describeStores('FleetClient: health, jobs and errors', (kind) => {
  it('reads health and the OpenAPI document without a token', async () => {
    const { client } = await listen(kind);
    const anonymous = client();
    expect(await anonymous.health()).toEqual({ ok: true, version: 'test', store: kind.name });
    const doc = await anonymous.openapi();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/jobs', '/v1/jobs/{id}/events', '/v1/tokens']),
    );
  });

  it('submits, lists, pages and reads jobs in the token tenant', async () => {
    const { client, token } = await listen(kind);
    const op = client(await token('operator', ['acme']));
    const submitted = await op.submitJobs([
      { bodyMd: 'a', key: 'a' },
      { bodyMd: 'b', key: 'b', deps: ['a'] },
    ]);
    const [a, b] = submitted.jobs;
    expect(a).toMatchObject({ created: true, job: { tenant: 'acme', stage: 'queued', key: 'a' } });
    expect(b!.job).toMatchObject({ stage: 'blocked', deps: [a!.job.id] });

    const page = await op.listJobs({ stage: ['queued', 'blocked'], limit: 1 });
    expect(page.items.map((j) => j.key)).toEqual(['b']);
    expect(page.next).toBe(b!.job.id);
    const rest = await op.listJobs({ after: page.next! });
    expect(rest).toEqual({ items: [expect.objectContaining({ key: 'a' })], next: null });
    expect((await op.listJobs({ stage: 'blocked' })).items.map((j) => j.key)).toEqual(['b']);
    expect((await op.listJobs({ key: 'a' })).items).toHaveLength(1);

    const detail = await op.getJob(a!.job.id);
    expect(detail).toMatchObject({
      job: { id: a!.job.id, lease: null },
      runs: [],
      insights: { tokensIn: 0, costUsd: 0 },
    });

    const again = await op.submitJobs([{ bodyMd: 'x', idempotencyKey: 'deploy-1' }]);
    const repeat = await op.submitJobs([{ bodyMd: 'x', idempotencyKey: 'deploy-1' }]);
    expect(repeat.jobs[0]).toEqual({ created: false, job: again.jobs[0]!.job });
  });

  it('lists the children of a plan', async () => {
    const { client, admin } = await listen(kind);
    const fleet = client(admin);
    const [plan] = (await fleet.submitJobs([{ bodyMd: 'plan', kind: 'composite' }])).jobs;
    await fleet.submitJobs([{ bodyMd: 'child', parentId: plan!.job.id }, { bodyMd: 'other' }]);
    const children = await fleet.listJobs({ plan: plan!.job.id });
    expect(children.items.map((j) => j.bodyMd)).toEqual(['child']);
  });

  it('cancels with and without a reason, retries and approves', async () => {
    const { client, admin } = await listen(kind);
    const fleet = client(admin);
    const { jobs } = await fleet.submitJobs([
      { bodyMd: 'one' },
      { bodyMd: 'two' },
      { bodyMd: 'gated', requiresApproval: true },
    ]);
    const [one, two, gated] = jobs.map((j) => j.job);

    const cancelled = await fleet.cancelJob(one!.id, 'superseded');
    expect(cancelled).toMatchObject({ stage: 'cancelled', stageReason: 'superseded' });
    expect(await fleet.cancelJob(two!.id)).toMatchObject({
      stage: 'cancelled',
      stageReason: 'cancelled_by_user',
    });
    const retried = await fleet.retryJob(one!.id);
    expect(retried).toMatchObject({ id: one!.id, stage: 'queued' });

    expect(gated!.approvedAt).toBeNull();
    const approved = await fleet.approveJob(gated!.id);
    expect(approved.approvedAt).toEqual(expect.any(Number));

    const illegal = await failure(fleet.approveJob(one!.id));
    expect(illegal).toMatchObject({ status: 409 });
  });

  it('acts in the tenant it names (x-fleet-tenant), and withTenant switches', async () => {
    const { client, admin, token } = await listen(kind);
    const acme = client(admin, { tenant: 'acme' });
    expect(acme.tenant).toBe('acme');
    const [job] = (await acme.submitJobs([{ bodyMd: 'x' }])).jobs;
    expect(job!.job.tenant).toBe('acme');
    expect((await acme.getJob(job!.job.id)).job.id).toBe(job!.job.id);

    // Another tenant's job is a 404, not a 403.
    const beta = acme.withTenant('beta');
    expect(beta.tenant).toBe('beta');
    expect((await failure(beta.getJob(job!.job.id))).status).toBe(404);

    // An operator naming a tenant it does not cover is refused.
    const op = client(await token('operator', ['beta']), { tenant: 'acme' });
    expect(await failure(op.listJobs())).toMatchObject({ status: 403, code: 'forbidden' });
  });

  it('maps 404 to FleetApiError with the code, route and request id', async () => {
    const { client, admin } = await listen(kind);
    const err = await failure(client(admin).getJob('no-such-job'));
    expect(err).toBeInstanceOf(FleetClientError);
    expect(err).toMatchObject({
      name: 'FleetApiError',
      status: 404,
      code: 'not_found',
      message: 'job no-such-job not found',
      route: 'GET /v1/jobs/:id',
      issues: undefined,
    });
    expect(err.requestId).toMatch(requestId);
  });

  it('encodes ids: a slash or space stays inside the one path segment', async () => {
    const { client, admin } = await listen(kind);
    const err = await failure(client(admin).cancelJob('a/b c'));
    // The route matched (a missing job), not "no route POST /v1/jobs/a/b…".
    expect(err).toMatchObject({ status: 404, message: 'job a/b c not found' });
  });

  it('maps 400 to FleetApiError with the offending fields', async () => {
    const { client, admin } = await listen(kind);
    const fleet = client(admin);
    const bad = [{ bodyMd: 'ok' }, { bodyMd: 3, priority: 'high' }] as unknown as Parameters<
      FleetClient['submitJobs']
    >[0];
    const err = await failure(fleet.submitJobs(bad));
    expect(err).toMatchObject({ status: 400, code: 'invalid_input', route: 'POST /v1/jobs' });
    expect(err.issues?.map((i) => i.path).sort()).toEqual([
      'body.jobs.1.bodyMd',
      'body.jobs.1.priority',
    ]);
    const limit = await failure(fleet.listJobs({ limit: 0 }));
    expect(limit.issues?.map((i) => i.path)).toEqual(['querystring.limit']);
  });

  it('maps 401 without a token, and never repeats a token in a message', async () => {
    const { client } = await listen(kind);
    const none = await failure(client().listJobs());
    expect(none).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(none.requestId).toMatch(requestId);

    const secret = 'fleet_op_not-a-real-token-but-secret';
    const wrong = await failure(client(secret).getJob('x'));
    expect(wrong).toMatchObject({ status: 401, code: 'unauthorized' });
    expect(`${wrong.message} ${wrong.stack} ${JSON.stringify(wrong)}`).not.toContain(secret);
  });
});

describeStores('FleetClient: artifacts', (kind) => {
  it('uploads, lists, reads back bytes and metadata', async () => {
    const { client, admin, store } = await listen(kind);
    const fleet = client(admin, { tenant: 'acme' });
    const { job, run, lease } = await claimedJob(store);
    const binary = new Uint8Array([0, 1, 2, 0xfe, 0xff, 10, 13]);

    const a = await fleet.uploadArtifact(
      job.id,
      lease.leaseEpoch,
      { kind: 'diff', name: 'change.bin', runId: run.id },
      binary,
    );
    expect(a).toMatchObject({
      jobId: job.id,
      runId: run.id,
      kind: 'diff',
      size: binary.length,
      mediaType: 'application/octet-stream',
    });
    const b = await fleet.uploadArtifact(
      job.id,
      lease.leaseEpoch,
      { kind: 'log', name: 'run log/ü.txt', mediaType: 'text/plain; charset=utf-8' },
      'héllo\n',
    );
    expect(b).toMatchObject({ runId: null, mediaType: 'text/plain; charset=utf-8', size: 7 });

    expect((await fleet.listArtifacts(job.id)).map((x) => x.id)).toEqual([a.id, b.id]);
    expect(await fleet.getArtifact(b.id)).toEqual(b);
    expect(await fleet.readArtifact(a.id)).toEqual(binary);
    expect(new TextDecoder().decode(await fleet.readArtifact(b.id))).toBe('héllo\n');
  });

  it('refuses a stale epoch, and hides another tenant’s artifact', async () => {
    const { client, admin, store } = await listen(kind);
    const fleet = client(admin, { tenant: 'acme' });
    const { job, lease } = await claimedJob(store);
    const stale = await failure(
      fleet.uploadArtifact(job.id, lease.leaseEpoch + 1, { kind: 'log', name: 'x' }, 'x'),
    );
    expect(stale).toMatchObject({ status: 409, code: 'stale_lease' });
    const art = await fleet.uploadArtifact(
      job.id,
      lease.leaseEpoch,
      { kind: 'log', name: 'x' },
      'x',
    );
    const beta = fleet.withTenant('beta');
    expect((await failure(beta.getArtifact(art.id))).status).toBe(404);
    expect((await failure(beta.readArtifact(art.id))).status).toBe(404);
    expect((await failure(beta.listArtifacts(job.id))).status).toBe(404);
  });
});

describeStores('FleetClient: factories, tokens, metrics', (kind) => {
  it('lists factories and drains one', async () => {
    const { client, store, token } = await listen(kind);
    const mine = await store.registerFactory({ tenant: 'acme', name: 'host-a', seats: 2 });
    await store.registerFactory({ tenant: 'beta', name: 'host-b' });
    const op = client(await token('operator', ['acme']));
    expect((await op.listFactories()).map((f) => f.name)).toEqual(['host-a']);
    expect(await op.drainFactory(mine.id)).toMatchObject({ id: mine.id, status: 'draining' });
    expect((await failure(op.drainFactory('nope'))).status).toBe(404);
  });

  it('creates a token whose secret works, lists it, and revokes it', async () => {
    const { client, admin } = await listen(kind);
    const fleet = client(admin);
    const created = await fleet.createToken({ name: 'ci', role: 'operator', tenants: ['acme'] });
    expect(created.token).toMatchObject({ name: 'ci', role: 'operator', tenants: ['acme'] });
    expect(created.secret.startsWith(created.token.prefix)).toBe(true);

    const ci = client(created.secret);
    expect((await ci.listJobs()).items).toEqual([]);
    expect((await fleet.listTokens()).map((t) => t.id)).toContain(created.token.id);
    expect((await fleet.listTokens({ tenant: 'acme' })).map((t) => t.id)).toEqual([
      created.token.id,
    ]);
    // Listings never carry secrets.
    expect(JSON.stringify(await fleet.listTokens())).not.toContain(created.secret);

    const revoked = await fleet.revokeToken(created.token.id);
    expect(revoked.revokedAt).toEqual(expect.any(Number));
    expect(await failure(ci.listJobs())).toMatchObject({ status: 401 });

    const invalid = await failure(fleet.createToken({ name: 'x', role: 'operator', tenants: [] }));
    expect(invalid).toMatchObject({ status: 400, code: 'invalid_input' });
    expect(invalid.issues?.[0]?.path).toBe('body.tenants');
    expect(await failure(ci.createToken({ name: 'y', role: 'admin' }))).toMatchObject({
      status: 401,
    });
  });

  it('reads Prometheus metrics with an admin token only', async () => {
    const { client, admin, token } = await listen(kind);
    const fleet = client(admin);
    await fleet.submitJobs([{ bodyMd: 'x' }]);
    const text = await fleet.metrics();
    expect(text).toMatch(/^# (HELP|TYPE) /m);
    const op = client(await token('operator', ['acme']));
    expect(await failure(op.metrics())).toMatchObject({ status: 403, code: 'forbidden' });
  });
});
