import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  alwaysLeader,
  leaderLockName,
  startPgLeadership,
  type Leadership,
  type PgLeadership,
} from '../../src/server/leader.js';
import { startServer, type RunningServer } from '../../src/server/run-server.js';
import { newTokenSecret } from '../../src/server/token-secret.js';
import type { Store } from '../../src/store/index.js';
import { openPostgresStore } from '../../src/store/postgres/open.js';
import { dropSchema, pgUrl, testSchemaName } from '../helpers/stores.js';
import { RawFactory, hello } from './raw-factory.js';

interface LogLine {
  msg: string;
  component?: string;
  jobId?: string;
}

interface Replica {
  server: RunningServer;
  logs: LogLine[];
}

/** One schema, a store handle on it (real clock) and a way to start replicas on it. */
async function cluster() {
  const schema = testSchemaName();
  const dir = mkdtempSync(join(tmpdir(), 'fleet-replicas-'));
  const servers: RunningServer[] = [];
  const store = await openPostgresStore({
    connectionString: pgUrl!,
    schema,
    blobDir: join(dir, 'blobs'),
    poolSize: 2,
  });
  onTestFinished(async () => {
    for (const s of servers) await s.stop();
    await store.close();
    await dropSchema(pgUrl!, schema);
    rmSync(dir, { recursive: true, force: true });
  });
  let n = 0;
  const start = async (): Promise<Replica> => {
    const logs: LogLine[] = [];
    const server = await startServer({
      db: pgUrl!,
      schema,
      dataDir: join(dir, `replica-${n++}`),
      host: '127.0.0.1',
      port: 0,
      // The reaper ticks every second.
      leaseTtlMs: 1_500,
      logger: pino(
        { level: 'info' },
        { write: (l: string) => logs.push(JSON.parse(l) as LogLine) },
      ),
      version: 'test',
      shutdownGraceMs: 1_000,
    });
    servers.push(server);
    return { server, logs };
  };
  return { schema, store, start };
}

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pgUrl! });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Backends holding the schema's leader lock. */
async function leaderLockHolders(schema: string): Promise<number[]> {
  return withClient(async (c) => {
    const { rows } = await c.query<{ pid: number }>(
      `SELECT pid FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((classid::bigint << 32) | objid::bigint) = hashtext($1)::bigint`,
      [leaderLockName(schema)],
    );
    return rows.map((r) => r.pid);
  });
}

async function terminate(pid: number): Promise<void> {
  await withClient((c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
}

/** Polls until `check` holds; returns how long that took. */
async function until(check: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - started;
}

/** Enqueues and claims a job whose lease expires in 500 ms, then waits for a reaper. */
async function reapedJob(store: Store): Promise<string> {
  const [enqueued] = await store.enqueue([{ tenant: 'acme', bodyMd: 'x', maxAttempts: 3 }]);
  const id = enqueued!.job.id;
  const claimed = await store.claim({
    factoryId: 'f1',
    tenants: ['acme'],
    capabilities: [],
    limit: 1,
    leaseTtlMs: 500,
  });
  expect(claimed.map((c) => c.job.id)).toEqual([id]);
  await expect
    .poll(async () => (await store.getJob('acme', id))!.stage, { timeout: 5_000, interval: 50 })
    .toBe('queued');
  return id;
}

const reapedBy = (r: Replica, jobId: string) =>
  r.logs.some((l) => l.component === 'reaper' && l.jobId === jobId);

/** Reads SSE frames off a response, noting when each `id:` arrived. */
function sseIds(res: Response): { arrivals: Map<number, number>; done: Promise<void> } {
  const arrivals = new Map<number, number>();
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const done = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const id = /^id: (\d+)$/m.exec(buffer.slice(0, end));
          if (id) arrivals.set(Number(id[1]), performance.now());
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // Aborted.
    }
  })();
  return { arrivals, done };
}

describe.skipIf(pgUrl === null)('replicas on one PostgreSQL schema', () => {
  it('fans a POST on one replica out to an SSE follower on another, well before the poll', async () => {
    const { store, start } = await cluster();
    const a = await start();
    const b = await start();
    const admin = newTokenSecret('admin');
    await store.createToken(
      'system',
      { name: 'test admin', role: 'admin', tenants: [], jobId: null },
      admin,
    );
    const headers = { authorization: `Bearer ${admin.secret}`, 'x-fleet-tenant': 'acme' };
    await store.enqueue([{ tenant: 'acme', bodyMd: 'follow me' }]);
    const [claimed] = await store.claim({
      factoryId: 'f1',
      tenants: ['acme'],
      capabilities: [],
      limit: 1,
    });
    const jobId = claimed!.job.id;
    const epoch = claimed!.lease.leaseEpoch;

    const abort = new AbortController();
    onTestFinished(() => abort.abort());
    const follow = await fetch(`${b.server.url}/v1/jobs/${jobId}/events?follow=1`, {
      headers,
      signal: abort.signal,
    });
    expect(follow.status).toBe(200);
    const { arrivals } = sseIds(follow);
    let lastSeq = (await store.readEvents('acme', jobId)).at(-1)!.seq;
    // The backlog is out: the follower is subscribed and idle until its next poll.
    await until(() => arrivals.has(lastSeq), 2_000);

    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      // Somewhere in the follower's 1 s poll cycle, not in step with it.
      await new Promise((r) => setTimeout(r, 150 + 100 * i));
      const started = performance.now();
      const posted = await fetch(`${a.server.url}/v1/jobs/${jobId}/events`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ epoch, events: [{ type: 'log', data: { i } }] }),
      });
      expect(posted.status).toBe(200);
      lastSeq = ((await posted.json()) as { lastSeq: number }).lastSeq;
      await until(() => arrivals.has(lastSeq), 2_000);
      latencies.push(arrivals.get(lastSeq)! - started);
    }
    console.info(`POST on A → SSE frame on B: ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
    for (const ms of latencies) expect(ms).toBeLessThan(500);
  });

  it('has one leader; stopping it moves the lead, and the new leader reaps', async () => {
    const { schema, store, start } = await cluster();
    const a = await start();
    const b = await start();
    expect([a.server.isLeader(), b.server.isLeader()]).toEqual([true, false]);
    expect(await leaderLockHolders(schema)).toHaveLength(1);

    const stopped = a.server.stop();
    const ms = await until(() => b.server.isLeader(), 5_000);
    await stopped;
    console.info(`leadership moved ${ms} ms after the leader began stopping`);
    expect(await leaderLockHolders(schema)).toHaveLength(1);

    const id = await reapedJob(store);
    await expect.poll(() => reapedBy(b, id), { timeout: 2_000 }).toBe(true);
    expect(reapedBy(a, id)).toBe(false);
  });

  it('lets a follower take over when the leader’s connection dies', async () => {
    const { schema, store, start } = await cluster();
    const a = await start();
    const b = await start();
    expect([a.server.isLeader(), b.server.isLeader()]).toEqual([true, false]);
    const [holder] = await leaderLockHolders(schema);

    const started = Date.now();
    await terminate(holder!);
    // The old leader steps down at once; the follower wins on its next try (every second).
    await until(() => !a.server.isLeader(), 500);
    const ms = await until(() => b.server.isLeader(), 5_000);
    console.info(`leadership moved ${Date.now() - started} ms after the kill (${ms} ms polled)`);
    const holders = await leaderLockHolders(schema);
    expect(holders).toHaveLength(1);
    expect(holders[0]).not.toBe(holder);

    // The first replica, alive, stays a follower: it reaps nothing.
    const id = await reapedJob(store);
    await expect.poll(() => reapedBy(b, id), { timeout: 2_000 }).toBe(true);
    expect(reapedBy(a, id)).toBe(false);
    expect(a.server.isLeader()).toBe(false);
  });
});

describe.skipIf(pgUrl === null)('PgLeadership', () => {
  const logger = pino({ level: 'silent' });
  const open = async (schema: string, more: { stepDownHoldMs?: number } = {}) => {
    const l = await startPgLeadership({
      connectionString: pgUrl!,
      schema,
      logger,
      retryMs: 100,
      ...more,
    });
    onTestFinished(() => l.close());
    return l;
  };
  const changes = (l: Leadership) => {
    const seen: boolean[] = [];
    l.onChange((v) => seen.push(v));
    return seen;
  };

  it('elects one leader per schema and hands over on close', async () => {
    const schema = testSchemaName();
    const a = await open(schema);
    const b = await open(schema);
    const other = await open(testSchemaName());
    expect([a.isLeader, b.isLeader, other.isLeader]).toEqual([true, false, true]);
    const seenA = changes(a);
    const seenB = changes(b);
    await a.close();
    expect(seenA).toEqual([false]);
    await until(() => b.isLeader, 1_000);
    expect(seenB).toEqual([true]);
    expect(await leaderLockHolders(schema)).toHaveLength(1);
  });

  it('steps down at once when its session ends, and holds off so another takes over', async () => {
    const schema = testSchemaName();
    const a: PgLeadership = await open(schema, { stepDownHoldMs: 1_000 });
    const b = await open(schema);
    const seenA = changes(a);
    const [holder] = await leaderLockHolders(schema);
    await terminate(holder!);
    await until(() => !a.isLeader, 200);
    await until(() => b.isLeader, 1_000);
    // After its hold, the old leader tries again and loses to the live one.
    await new Promise((r) => setTimeout(r, 1_300));
    expect([a.isLeader, b.isLeader]).toEqual([false, true]);
    expect(seenA).toEqual([false]);
    // And takes the lead back when that one goes.
    await b.close();
    await until(() => a.isLeader, 1_000);
  });
});

describe('alwaysLeader', () => {
  it('leads until closed', async () => {
    const l = alwaysLeader();
    const seen: boolean[] = [];
    l.onChange((v) => seen.push(v));
    expect(l.isLeader).toBe(true);
    await l.close();
    await l.close();
    expect([l.isLeader, seen]).toEqual([false, [false]]);
  });
});

describe.skipIf(pgUrl === null)('a factory on another replica', () => {
  it('claims a job submitted to replica A from replica B without waiting for a poll', async () => {
    const { store, start } = await cluster();
    const a = await start();
    const b = await start();
    const admin = newTokenSecret('admin');
    await store.createToken('system', { name: 'admin', role: 'admin' }, admin);
    const fac = newTokenSecret('factory');
    await store.createToken('default', { name: 'f', role: 'factory', tenants: ['default'] }, fac);

    const factory = new RawFactory(`${b.server.url.replace(/^http/, 'ws')}/v1/factory`, fac.secret);
    await factory.open();
    onTestFinished(() => factory.close());
    await factory.request(hello('control'));

    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      const woken = factory.nextPush();
      const t0 = performance.now();
      const res = await fetch(`${a.server.url}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ jobs: [{ bodyMd: `job ${i}` }] }),
      });
      const submitted = ((await res.json()) as { jobs: { job: { id: string } }[] }).jobs[0]!.job.id;
      expect(await woken).toEqual({ type: 'wake' });
      const reply = await factory.request({ type: 'claim', limit: 1 });
      const claimed = (reply.result as { assignments: { job: { id: string } }[] }).assignments;
      samples.push(performance.now() - t0);
      expect(claimed.map((c) => c.job.id)).toEqual([submitted]);
      await factory.request({ type: 'complete', jobId: submitted, epoch: 1 });
    }
    // Factories poll about once a second when idle; a wake across replicas must beat that.
    expect(Math.max(...samples)).toBeLessThan(500);
  });
});
