import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Job, JobEvent } from '../../src/core/index.js';
import { startFactory, type FactoryOptions } from '../../src/factory/daemon.js';
import { EventSpool } from '../../src/factory/daemon/spool.js';
import { git } from '../../src/factory/git.js';
import { listen, tcpServer } from '../client/helpers.js';
import { STORES } from '../helpers/stores.js';
import { cleanup, head, makeRepo, tempDir } from './fixtures.js';

const sqlite = STORES.find((k) => k.name === 'sqlite')!;
const silent = pino({ level: 'silent' });

async function until(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A proxy to `port` that can be taken down (every socket dropped, new ones refused). */
async function switchableProxy(port: number) {
  let down = false;
  const live = new Set<Socket>();
  const { port: proxyPort } = await tcpServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    live.add(client);
    live.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    upstream.on('error', drop);
    upstream.on('close', drop);
    client.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return {
    port: proxyPort,
    setDown(value: boolean) {
      down = value;
      if (value) for (const s of live) s.destroy();
    },
  };
}

async function setup(more: Partial<FactoryOptions> = {}, proxied = false, leaseTtlMs?: number) {
  const server = await listen(sqlite, {
    store: { clock: () => Date.now() },
    ...(leaseTtlMs === undefined ? {} : { server: { leaseTtlMs } }),
  });
  const token = await server.token('factory', ['acme']);
  const operator = server.client(await server.token('operator', ['acme']));
  const workDir = await tempDir('fleet-work-');
  const repo = await makeRepo();
  onTestFinished(() => cleanup(workDir, repo));
  const proxy = proxied ? await switchableProxy(server.port) : null;
  const factory = await startFactory({
    server: proxy ? `http://127.0.0.1:${proxy.port}` : server.baseUrl,
    token,
    name: 'test-factory',
    seats: 1,
    capabilities: [],
    workDir,
    logger: silent,
    pollMs: 200,
    reconnect: { minDelayMs: 50, maxDelayMs: 200 },
    graceMs: 500,
    ...more,
  });
  // Registered after the server's teardown, so it runs first.
  onTestFinished(() => factory.stop());
  const job = async (id: string): Promise<Job> => (await server.store.getJob('acme', id))!;
  const events = (id: string): Promise<JobEvent[]> =>
    server.store.readEvents('acme', id, { limit: 10_000 });
  const submit = async (spec: Record<string, unknown>): Promise<string> => {
    const { jobs } = await operator.submitJobs([
      { engine: 'shell', manifest: { cwd: repo }, ...spec } as never,
    ]);
    return jobs[0]!.job.id;
  };
  const settled = (id: string, stages = ['succeeded', 'failed', 'cancelled'], ms?: number) =>
    until(async () => stages.includes((await job(id)).stage), ms);
  return { ...server, factory, operator, repo, workDir, proxy, job, events, submit, settled };
}

const logLines = (events: JobEvent[]) =>
  events.filter((e) => e.type === 'log').map((e) => (e.data as { line: string }).line);

describe('factory daemon', () => {
  it('runs a submitted job: success, commit on fleet/k1, insights, events', async () => {
    const f = await setup();
    const id = await f.submit({ bodyMd: 'echo hi > hi.txt && echo wrote it', key: 'k1' });
    await f.settled(id);
    expect((await f.job(id)).stage).toBe('succeeded');
    const [run] = await f.store.listRuns('acme', id);
    const commit = await head(f.repo, 'fleet/k1');
    expect(run).toMatchObject({ result: 'success', output: { commit, branch: 'fleet/k1' } });
    expect(run!.insights).toMatchObject({ filesChanged: 1, linesAdded: 1 });
    expect(await git(f.repo, ['show', 'fleet/k1:hi.txt'])).toBe('hi\n');
    const events = await f.events(id);
    expect(logLines(events)).toContain('wrote it');
    expect(events.map((e) => e.type)).toContain('commit');
    expect(f.factory.status()).toMatchObject({ connection: 'connected', seats: { busy: 0 } });
  });

  it('stops a cancelled run and keeps its worktree with a checkpoint', async () => {
    const f = await setup();
    const id = await f.submit({ bodyMd: 'echo wip > wip.txt; sleep 30', key: 'c1' });
    await until(async () => (await f.job(id)).stage === 'running');
    await until(() => f.factory.snapshot().runs[0]?.state === 'starting');
    await until(async () => existsSync(path.join(f.workDir, 'worktrees')));
    await new Promise((r) => setTimeout(r, 300));
    const began = Date.now();
    await f.operator.cancelJob(id, 'not needed');
    await until(() => f.factory.status().seats.busy === 0);
    expect(Date.now() - began).toBeLessThan(5_000);
    expect((await f.job(id)).stage).toBe('cancelled');
    // The work is checkpointed on the branch, in a kept (detached) worktree.
    const wip = await git(f.repo, ['show', 'fleet/c1:wip.txt']);
    expect(wip).toBe('wip\n');
    expect(await git(f.repo, ['log', '-1', '--format=%s', 'fleet/c1'])).toMatch(/WIP c1/);
  });

  it('a drain (as from its local socket) reaches the server: no claims, status draining', async () => {
    const f = await setup();
    const factories = await f.operator.listFactories();
    expect(factories.map((x) => x.status)).toEqual(['online']);
    await f.factory.drain();
    expect(f.factory.status()).toMatchObject({ draining: true });
    expect((await f.operator.listFactories()).map((x) => x.status)).toEqual(['draining']);
    const id = await f.submit({ bodyMd: 'true', key: 'd1' });
    await new Promise((r) => setTimeout(r, 600)); // three polls' worth
    expect((await f.job(id)).stage).toBe('queued');
  });

  it('a drain asked for while the server is unreachable reaches it on reconnect', async () => {
    const f = await setup({}, true);
    const [registered] = await f.operator.listFactories();
    f.proxy!.setDown(true);
    await until(() => f.factory.status().connection !== 'connected');
    await f.factory.drain();
    expect(f.factory.status()).toMatchObject({ draining: true });
    // The server has not heard: there the factory is offline (disconnected), not draining.
    await until(
      async () => (await f.store.getFactory('acme', registered!.id))?.status === 'offline',
    );
    f.proxy!.setDown(false);
    await until(
      async () => (await f.store.getFactory('acme', registered!.id))?.status === 'draining',
    );
    expect(f.factory.status()).toMatchObject({ connection: 'connected', draining: true });
    const id = await f.submit({ bodyMd: 'true', key: 'd2' });
    await new Promise((r) => setTimeout(r, 600)); // three polls' worth
    expect((await f.job(id)).stage).toBe('queued');
  });

  it('a drain through the API is learned by the daemon: its status and snapshot say draining', async () => {
    const f = await setup();
    const [registered] = await f.operator.listFactories();
    expect(f.factory.status()).toMatchObject({ draining: false });
    await f.operator.drainFactory(registered!.id);
    // The next claim (a poll, every 200 ms here) is refused with draining: true.
    await until(() => f.factory.status().draining);
    expect(f.factory.snapshot().factory).toMatchObject({ draining: true });
    const id = await f.submit({ bodyMd: 'true', key: 'd3' });
    await new Promise((r) => setTimeout(r, 600));
    expect((await f.job(id)).stage).toBe('queued');
  });

  it("hands each agent a job-scoped token and its seat's ports, never the factory's token", async () => {
    // The factory's own credential in its environment (as `fleet up` passes it) must not leak.
    const saved = process.env.FLEET_TOKEN;
    process.env.FLEET_TOKEN = 'fleet_fac_the-factory-secret';
    onTestFinished(() => {
      if (saved === undefined) delete process.env.FLEET_TOKEN;
      else process.env.FLEET_TOKEN = saved;
    });
    const f = await setup({ seats: 2, portBase: 45_000, portsPerSeat: 5 });
    const other = await f.submit({ bodyMd: 'true', key: 'other' });
    await f.settled(other);
    const go = path.join(f.workDir, 'go');
    const script = (key: string) =>
      `echo "TOKEN=$FLEET_TOKEN PORT=$FLEET_PORT COUNT=$FLEET_PORT_COUNT JOB=$FLEET_JOB_ID"; ` +
      `while [ ! -f ${go} ]; do sleep 0.02; done; echo ${key}`;
    const a = await f.submit({ bodyMd: script('a'), key: 'tok-a' });
    const b = await f.submit({ bodyMd: script('b'), key: 'tok-b' });
    const envOf = async (id: string) => {
      let line: string | undefined;
      await until(async () => {
        line = logLines(await f.events(id)).find((l) => l.startsWith('TOKEN='));
        return line !== undefined;
      });
      const m = /^TOKEN=(\S*) PORT=(\d+) COUNT=(\d+) JOB=(\S+)$/.exec(line!);
      expect(m, line).not.toBeNull();
      return { token: m![1]!, port: Number(m![2]), count: Number(m![3]), job: m![4]! };
    };
    const [ea, eb] = await Promise.all([envOf(a), envOf(b)]);
    expect(ea.job).toBe(a);
    expect(eb.job).toBe(b);
    // Both seats are busy: seat 0 and seat 1, five ports each.
    expect([ea.port, eb.port].sort()).toEqual([45_000, 45_005]);
    expect(ea.count).toBe(5);
    for (const t of [ea.token, eb.token]) expect(t).toMatch(/^fleet_agt_/);
    expect(ea.token).not.toBe(eb.token);

    // The token reads its own job and nothing else, while the run lasts.
    const agent = f.client(ea.token);
    expect((await agent.getJob(a)).job.id).toBe(a);
    await expect(agent.getJob(b)).rejects.toMatchObject({ status: 404 });
    await expect(agent.getJob(other)).rejects.toMatchObject({ status: 404 });
    await expect(agent.listFactories()).rejects.toMatchObject({ status: 403 });

    await writeFile(go, '');
    await f.settled(a);
    await f.settled(b);
    expect((await f.job(a)).stage).toBe('succeeded');
    // Revoked when the run reported its end.
    await expect(agent.getJob(a)).rejects.toMatchObject({ status: 401 });
  });

  it('on shutdown, stops the runs past the deadline and requeues them with a checkpoint', async () => {
    const f = await setup();
    const id = await f.submit({ bodyMd: 'echo wip > wip.txt; sleep 30', key: 's1' });
    await until(async () => (await f.job(id)).stage === 'running');
    await new Promise((r) => setTimeout(r, 300));
    await f.factory.shutdown(200);
    expect(f.factory.status()).toMatchObject({ connection: 'closed', draining: true });
    const job = await f.job(id);
    expect(job.stage).toBe('queued');
    expect(job.checkpoint).toMatchObject({ wipBranch: 'fleet/s1' });
    const [run] = await f.store.listRuns('acme', id);
    expect(run).toMatchObject({ result: 'crashed' });
  });

  it('reports a failing job: requeued while attempts are left, then failed', async () => {
    const f = await setup();
    const id = await f.submit({ bodyMd: 'echo nope; exit 1', maxAttempts: 2 });
    // The first failure requeues it (with a backoff), the second fails it.
    await until(async () => (await f.store.listRuns('acme', id)).length >= 1);
    await until(async () => ['queued', 'failed'].includes((await f.job(id)).stage));
    await f.store
      .updateJob('acme', id, (await f.job(id)).rev, { runAt: Date.now() })
      .catch(() => undefined);
    await f.settled(id, ['failed'], 30_000);
    const job = await f.job(id);
    expect(job.stage).toBe('failed');
    const runs = await f.store.listRuns('acme', id);
    expect(runs).toHaveLength(2);
    for (const run of runs)
      expect(run).toMatchObject({ result: 'agent_failed', exit: { code: 1 } });
    expect(job.lastError).toMatch(/agent failed/);
  });

  it('never runs more jobs at once than it has seats', async () => {
    const f = await setup({ seats: 2 });
    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, f.factory.status().seats.busy);
    }, 10);
    onTestFinished(() => clearInterval(sampler));
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push(await f.submit({ bodyMd: `sleep 0.5; echo ${n}` }));
    for (const id of ids) await f.settled(id);
    clearInterval(sampler);
    for (const id of ids) expect((await f.job(id)).stage).toBe('succeeded');
    expect(most).toBe(2);
    const runs = await Promise.all(ids.map((id) => f.store.listRuns('acme', id)));
    const spans = runs.map((r) => [r[0]!.startedAt, r[0]!.endedAt!] as const);
    // At every run's start, at most two runs are underway.
    for (const [start] of spans) {
      const overlapping = spans.filter(([s, e]) => s <= start && e > start).length;
      expect(overlapping).toBeLessThanOrEqual(2);
    }
  });

  it('keeps running while disconnected and sends the spooled events in order after', async () => {
    const f = await setup({}, true);
    const N = 60;
    const id = await f.submit({
      bodyMd: `for i in $(seq 1 ${N}); do echo "line $i"; sleep 0.03; done`,
      key: 'd1',
    });
    await until(async () => logLines(await f.events(id)).length >= 5);
    f.proxy!.setDown(true);
    await until(() => f.factory.status().connection !== 'connected');
    await new Promise((r) => setTimeout(r, 700));
    // The run went on meanwhile: its events are in the spool.
    expect(f.factory.snapshot().runs).toHaveLength(1);
    expect(readdirSync(path.join(f.workDir, 'spool'))).toHaveLength(1);
    f.proxy!.setDown(false);
    await f.settled(id);
    expect((await f.job(id)).stage).toBe('succeeded');
    const events = await f.events(id);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(logLines(events)).toEqual(Array.from({ length: N }, (_, i) => `line ${i + 1}`));
  });

  it('stops a run whose lease expired while disconnected, and never completes it', async () => {
    const f = await setup({}, true, 1_500);
    const id = await f.submit({
      bodyMd: 'echo wip > wip.txt; for i in $(seq 1 100); do echo "tick $i"; sleep 0.05; done',
      key: 'l1',
    });
    await until(async () => (await f.job(id)).stage === 'running');
    const epoch = (await f.job(id)).leaseEpoch;
    f.proxy!.setDown(true);
    await until(() => f.factory.status().connection !== 'connected');
    await new Promise((r) => setTimeout(r, 1_800));
    // The reaper finds the lease expired: the run is lease_lost, the job requeued.
    const reaped = await f.store.reapExpired();
    expect(reaped.map((r) => r.jobId)).toContain(id);
    // Keep it queued for a while so the factory does not pick it up again at once.
    const queued = await f.job(id);
    await f.store.updateJob('acme', id, queued.rev, { runAt: Date.now() + 60_000 });
    f.proxy!.setDown(false);
    // The reconcile says stale: the run is stopped, checkpointed, and not reported.
    await until(() => f.factory.snapshot().runs.every((r) => r.epoch !== epoch));
    const job = await f.job(id);
    expect(job.stage).toBe('queued');
    const runs = await f.store.listRuns('acme', id);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ result: 'lease_lost' });
    expect(await git(f.repo, ['show', 'fleet/l1:wip.txt'])).toBe('wip\n');
    // Whatever reached the server came from the live lease only.
    for (const e of await f.events(id)) expect([epoch, null]).toContain(e.epoch);
  });

  it('fails a job whose runner throws, and goes on serving', async () => {
    const f = await setup();
    const bad = await f.submit({ bodyMd: 'echo never', engine: 'no-such-engine' });
    await f.settled(bad);
    const badJob = await f.job(bad);
    expect(badJob.stage).toBe('failed');
    expect(badJob.lastError).toMatch(/no engine is named/);
    const runs = await f.store.listRuns('acme', bad);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ result: 'crashed' });
    const good = await f.submit({ bodyMd: 'echo fine' });
    await f.settled(good);
    expect((await f.job(good)).stage).toBe('succeeded');
  });
});

describe('EventSpool', () => {
  it('keeps events in order and, past its limit, drops the oldest behind one marker', async () => {
    const dir = await tempDir('fleet-spool-');
    onTestFinished(() => cleanup(dir));
    const spool = new EventSpool(path.join(dir, 'spool', 'a.jsonl'), 5);
    const ev = (n: number) => ({ type: 'log', data: { n } });
    await spool.append([ev(1), ev(2), ev(3)]);
    expect(spool.count).toBe(3);
    await spool.append([ev(4), ev(5), ev(6)]);
    await spool.append([ev(7)]);
    const taken = await spool.take();
    expect(taken[0]).toMatchObject({ type: 'spool_overflow', data: { dropped: 3, limit: 5 } });
    expect(taken.slice(1).map((e) => e.data)).toEqual([{ n: 4 }, { n: 5 }, { n: 6 }, { n: 7 }]);
    expect(spool.count).toBe(0);
    expect(await spool.take()).toEqual([]);
  });
});
