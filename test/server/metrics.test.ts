import { expect, it } from 'vitest';
import { buildServer } from '../../src/server/index.js';
import { instrumentStore } from '../../src/server/instrument-store.js';
import { createMetrics } from '../../src/server/metrics.js';
import { describeStores } from '../helpers/stores.js';
import { bearer, openServer, type OpenedServer } from './helpers.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the subset prom-client writes). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparsed metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of one series, or undefined when it is absent. */
function value(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = Object.entries(labels);
  const found = samples.filter(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === want.length &&
      want.every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`several series match ${name}`);
  return found[0]?.value;
}

async function scrape(server: Pick<OpenedServer, 'app' | 'admin'>): Promise<Sample[]> {
  const res = await server.app.inject({ url: '/metrics', headers: bearer(server.admin) });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parse(res.body);
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** Submits, claims, completes, fails, appends events and reaps through the server's store. */
async function activity(server: OpenedServer): Promise<void> {
  const { app, served, store, clock, token, admin } = server;
  const acme = await token('operator', ['acme']);
  await token('operator', ['gamma']);
  const submit = await app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: bearer(acme),
    payload: { jobs: ['a', 'b', 'c', 'd'].map((key) => ({ bodyMd: key, key })) },
  });
  expect(submit.statusCode).toBe(201);
  const beta = await app.inject({
    method: 'POST',
    url: '/v1/jobs',
    headers: { ...bearer(admin), 'x-fleet-tenant': 'beta' },
    payload: { jobs: [{ bodyMd: 'e' }] },
  });
  expect(beta.statusCode).toBe(201);

  const claim = (tenant: string, limit: number, leaseTtlMs = 60_000) =>
    served.claim({ factoryId: 'f1', tenants: [tenant], capabilities: [], limit, leaseTtlMs });
  const [a, b, c] = await claim('acme', 3);
  const [e] = await claim('beta', 1, 1_000);
  expect([a, b, c, e].every((x) => x !== undefined)).toBe(true);

  await served.appendEvents({ jobId: a!.job.id, epoch: 1 }, [
    { type: 'log', data: { line: 'hello' } },
    { type: 'log' },
    { type: 'tool' },
  ]);
  await served.complete({
    jobId: a!.job.id,
    epoch: 1,
    insights: { costUsd: 0.25, tokensIn: 100, tokensOut: 20, tokensCached: 5 },
  });
  const many = await served.completeMany([
    { jobId: b!.job.id, epoch: 1, insights: { costUsd: 0.5, tokensIn: 50 } },
    // Stale: counts nothing.
    { jobId: a!.job.id, epoch: 9, insights: { costUsd: 100, tokensIn: 1_000_000 } },
  ]);
  expect(many.map((o) => o.ok)).toEqual([true, false]);
  await served.failMany([
    {
      jobId: c!.job.id,
      epoch: 1,
      result: 'agent_failed',
      error: 'boom',
      retryable: false,
      insights: { tokensOut: 7 },
    },
  ]);
  await expect(
    served.fail({ jobId: c!.job.id, epoch: 1, result: 'timeout', error: 'late' }),
  ).rejects.toMatchObject({ code: 'stale_lease' });

  clock.advance(2_000);
  expect(await served.reapExpired()).toHaveLength(1);
  const [d] = await claim('acme', 1);
  expect(d?.job.key).toBe('d');

  await store.registerFactory({ tenant: 'acme', name: 'f1', seats: 4 });
  await store.registerFactory({ tenant: 'acme', name: 'f2', seats: 2, status: 'draining' });
  await store.registerFactory({ tenant: 'beta', name: 'f3', seats: 3 });
  // A tenant with no jobs, known from its token.
  await store.registerFactory({ tenant: 'gamma', name: 'f4', seats: 1 });
}

describeStores('metrics', (kind) => {
  it('needs an admin token', async () => {
    const { app, token } = await openServer(kind);
    const none = await app.inject({ url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ error: { code: 'unauthorized' } });
    const op = await app.inject({
      url: '/metrics',
      headers: bearer(await token('operator', ['acme'])),
    });
    expect(op.statusCode).toBe(403);
  });

  it('reports jobs, claims, finished runs, cost, tokens, expiries, events and seats', async () => {
    const server = await openServer(kind);
    const before = await scrape(server);
    expect(value(before, 'fleet_claim_duration_seconds_count')).toBe(0);
    expect(value(before, 'fleet_run_tokens_total', { kind: 'in' })).toBe(0);
    expect(before.filter((s) => s.name === 'fleet_jobs')).toEqual([]);

    await activity(server);
    const m = await scrape(server);

    expect(value(m, 'fleet_jobs', { tenant: 'acme', stage: 'succeeded' })).toBe(2);
    expect(value(m, 'fleet_jobs', { tenant: 'acme', stage: 'failed' })).toBe(1);
    expect(value(m, 'fleet_jobs', { tenant: 'acme', stage: 'claimed' })).toBe(1);
    expect(value(m, 'fleet_jobs', { tenant: 'acme', stage: 'queued' })).toBe(0);
    expect(value(m, 'fleet_jobs', { tenant: 'beta', stage: 'queued' })).toBe(1);
    expect(value(m, 'fleet_jobs', { tenant: 'gamma', stage: 'queued' })).toBeUndefined();

    expect(value(m, 'fleet_claims_total', { tenant: 'acme' })).toBe(4);
    expect(value(m, 'fleet_claims_total', { tenant: 'beta' })).toBe(1);
    expect(value(m, 'fleet_claim_duration_seconds_count')).toBe(3);
    expect(value(m, 'fleet_claim_duration_seconds_bucket', { le: '+Inf' })).toBe(3);

    expect(value(m, 'fleet_runs_finished_total', { result: 'success' })).toBe(2);
    expect(value(m, 'fleet_runs_finished_total', { result: 'agent_failed' })).toBe(1);
    expect(value(m, 'fleet_runs_finished_total', { result: 'timeout' })).toBeUndefined();
    expect(value(m, 'fleet_run_cost_usd_total')).toBeCloseTo(0.75, 10);
    expect(value(m, 'fleet_run_tokens_total', { kind: 'in' })).toBe(150);
    expect(value(m, 'fleet_run_tokens_total', { kind: 'out' })).toBe(27);
    expect(value(m, 'fleet_run_tokens_total', { kind: 'cached' })).toBe(5);

    expect(value(m, 'fleet_lease_expiries_total')).toBe(1);
    expect(value(m, 'fleet_events_ingested_total')).toBe(3);

    expect(value(m, 'fleet_factories_connected')).toBe(3);
    expect(value(m, 'fleet_seats', { state: 'total' })).toBe(8);
    expect(value(m, 'fleet_seats', { state: 'busy' })).toBe(1);
  });

  it('uses bounded labels only: no ids', async () => {
    const server = await openServer(kind);
    await activity(server);
    const res = await server.app.inject({ url: '/metrics', headers: bearer(server.admin) });
    const samples = parse(res.body);
    expect(samples.length).toBeGreaterThan(20);
    const values = samples.flatMap((s) => Object.values(s.labels));
    expect(values.filter((v) => UUID.test(v))).toEqual([]);
    const names = new Set(samples.flatMap((s) => Object.keys(s.labels)));
    expect([...names].sort()).toEqual(['kind', 'le', 'result', 'stage', 'state', 'tenant']);
  });

  it('keeps one registry per server: two servers in a process do not collide', async () => {
    const one = await openServer(kind);
    const other = await openServer(kind);
    await one.store.enqueue([{ tenant: 'acme', bodyMd: 'x' }]);
    await one.served.claim({ factoryId: 'f', tenants: ['acme'], capabilities: [], limit: 1 });
    expect(value(await scrape(one), 'fleet_claims_total', { tenant: 'acme' })).toBe(1);
    expect(value(await scrape(other), 'fleet_claims_total', { tenant: 'acme' })).toBeUndefined();

    // A third app on the same store, metrics made by buildServer itself.
    const app = await buildServer({ store: one.store, version: 'x' });
    try {
      const res = await app.inject({ url: '/metrics', headers: bearer(one.admin) });
      expect(value(parse(res.body), 'fleet_claims_total', { tenant: 'acme' })).toBeUndefined();
      expect(value(parse(res.body), 'fleet_jobs', { tenant: 'acme', stage: 'claimed' })).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('wraps only the metered verbs, and wrapping twice counts once', async () => {
    const { store } = await openServer(kind);
    const metrics = createMetrics(store);
    const wrapped = instrumentStore(store, metrics);
    expect(instrumentStore(wrapped, metrics)).toBe(wrapped);
    expect(wrapped.dialect).toBe(store.dialect);
    const [r] = await wrapped.enqueue([{ tenant: 'acme', bodyMd: 'x' }]);
    expect(await wrapped.getJob('acme', r!.job.id)).toEqual(r!.job);
    await instrumentStore(wrapped, metrics).claim({
      factoryId: 'f',
      tenants: ['acme'],
      capabilities: [],
      limit: 1,
    });
    const samples = parse((await metrics.scrape()).body);
    expect(value(samples, 'fleet_claims_total', { tenant: 'acme' })).toBe(1);
  });

  it('leaves factories and seats to the setters when told to', async () => {
    const { store } = await openServer(kind);
    await store.registerFactory({ tenant: 'acme', name: 'f1', seats: 4 });
    const metrics = createMetrics(store, { seatsFromStore: false });
    metrics.setFactoriesConnected(5);
    metrics.setSeats({ busy: 2, total: 9 });
    const samples = parse((await metrics.scrape()).body);
    expect(value(samples, 'fleet_factories_connected')).toBe(5);
    expect(value(samples, 'fleet_seats', { state: 'busy' })).toBe(2);
    expect(value(samples, 'fleet_seats', { state: 'total' })).toBe(9);
    metrics.setSeats({ busy: 3 });
    const again = parse((await metrics.scrape()).body);
    expect(value(again, 'fleet_seats', { state: 'busy' })).toBe(3);
    expect(value(again, 'fleet_seats', { state: 'total' })).toBe(9);
  });
});
