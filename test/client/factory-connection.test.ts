import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocketServer } from 'ws';
import {
  type ConnectionState,
  ConnectionStateMachine,
  FactoryConnection,
  type FactoryConnectionOptions,
  FactoryProtocolError,
  FleetApiError,
  FleetConnectionError,
  FleetResponseError,
  type HeartbeatResult,
  type StaleRef,
  canMove,
  factorySocketUrl,
  parseBaseUrl,
  reconnectDelayMs,
} from '../../src/client/index.js';
import type { FencedRef } from '../../src/store/index.js';
import { describeStores } from '../helpers/stores.js';
import type { OpenServerOptions } from '../server/helpers.js';
import { closedPort, listen } from './helpers.js';

async function rejection(call: Promise<unknown>): Promise<Error> {
  try {
    await call;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

/** Polls `check` until it is true (or fails after `ms`). */
async function until(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('connection state machine', () => {
  it('moves disconnected → connecting → reconciling → connected, and back through a drop', () => {
    const seen: [ConnectionState, ConnectionState][] = [];
    const m = new ConnectionStateMachine((to, from) => seen.push([from, to]));
    expect(m.state).toBe('disconnected');
    for (const s of [
      'connecting',
      'reconciling',
      'connected',
      'disconnected',
      'reconnecting',
      'disconnected',
      'reconnecting',
      'reconciling',
      'connected',
      'closed',
    ] as const)
      m.move(s);
    expect(seen.map(([f, t]) => `${f}>${t}`)).toEqual([
      'disconnected>connecting',
      'connecting>reconciling',
      'reconciling>connected',
      'connected>disconnected',
      'disconnected>reconnecting',
      'reconnecting>disconnected',
      'disconnected>reconnecting',
      'reconnecting>reconciling',
      'reconciling>connected',
      'connected>closed',
    ]);
  });

  it('refuses moves it does not have; closed is final', () => {
    expect(canMove('disconnected', 'connected')).toBe(false);
    expect(canMove('connected', 'reconnecting')).toBe(false);
    expect(canMove('connecting', 'connected')).toBe(false);
    expect(canMove('reconnecting', 'closed')).toBe(true);
    const m = new ConnectionStateMachine();
    expect(() => m.move('reconciling')).toThrow(/from disconnected to reconciling/);
    m.move('closed');
    for (const s of ['disconnected', 'connecting', 'connected', 'closed'] as const)
      expect(canMove('closed', s)).toBe(false);
  });
});

describe('reconnect backoff', () => {
  it('doubles from the minimum up to the cap, jittered into [½, 1] of itself', () => {
    const policy = { minDelayMs: 100, maxDelayMs: 1_000 };
    const at = (n: number, r: number) => reconnectDelayMs(n, policy, () => r);
    expect([0, 1, 2, 3, 4, 10, 100].map((n) => at(n, 1))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000,
    ]);
    expect([0, 1, 2, 3, 4].map((n) => at(n, 0))).toEqual([50, 100, 200, 400, 500]);
    for (let i = 0; i < 100; i++) {
      const d = reconnectDelayMs(3, policy);
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(800);
    }
    expect(reconnectDelayMs(0)).toBeLessThanOrEqual(250);
  });
});

describe('factory socket URL', () => {
  it('turns http into ws and https into wss, keeping a path prefix', () => {
    expect(factorySocketUrl(parseBaseUrl('http://127.0.0.1:7070/'))).toBe(
      'ws://127.0.0.1:7070/v1/factory',
    );
    expect(factorySocketUrl(parseBaseUrl('https://fleet.example/proxy'))).toBe(
      'wss://fleet.example/proxy/v1/factory',
    );
  });
});

describe('FactoryConnection without a server', () => {
  it('fails the first connect with a connection error and goes back to disconnected', async () => {
    const port = await closedPort();
    const states: ConnectionState[] = [];
    const conn = new FactoryConnection({
      baseUrl: `http://127.0.0.1:${port}`,
      token: 'fleet_fac_secret-token',
      factory: { name: 'host-a' },
      heldRuns: () => [],
      onState: (s) => states.push(s),
    });
    const err = await rejection(conn.connect());
    expect(err).toBeInstanceOf(FleetConnectionError);
    expect(err).toMatchObject({ reason: 'refused' });
    expect(err.message).toBe(
      `no server at http://127.0.0.1:${port} — start one with fleet up (or fleet serve)`,
    );
    expect(err.message).not.toContain('secret-token');
    expect(states).toEqual(['connecting', 'disconnected']);
    expect(await rejection(conn.claim(1))).toBeInstanceOf(FleetConnectionError);
    await conn.close();
    expect(conn.state).toBe('closed');
  });
});

describe('FactoryConnection against a scripted server', () => {
  /** A WebSocket server that answers hello and reconcile, and `claim` as `onClaim` says. */
  async function scripted(onClaim: (limit: number) => unknown) {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    onTestFinished(
      () =>
        new Promise<void>((resolve) => {
          wss.clients.forEach((c) => c.terminate());
          wss.close(() => resolve());
        }),
    );
    let connections = 0;
    wss.on('connection', (socket) => {
      connections += 1;
      socket.on('message', (data) => {
        const m = JSON.parse(data.toString()) as { type: string; id: number; [k: string]: unknown };
        const reply = (result: unknown) =>
          socket.send(JSON.stringify({ type: 'reply', id: m.id, result }));
        if (m.type === 'hello') reply({ factoryId: 'f-1', leaseTtlMs: 3_000, heartbeatMs: 1_000 });
        else if (m.type === 'reconcile') reply({ valid: m.runs, stale: [] });
        else if (m.type === 'claim') {
          const answer = onClaim(m.limit as number);
          if (answer !== undefined) reply(answer);
        }
      });
    });
    const { port } = wss.address() as AddressInfo;
    const warnings: string[] = [];
    const conn = new FactoryConnection({
      baseUrl: `http://127.0.0.1:${port}`,
      token: 'fleet_fac_secret',
      factory: { name: 'host-a' },
      heldRuns: () => [],
      requestTimeoutMs: 200,
      reconnect: { minDelayMs: 10, maxDelayMs: 20 },
      logger: { info: () => undefined, warn: (_o, msg) => warnings.push(msg) },
    });
    onTestFinished(() => conn.close());
    return { wss, conn, connections: () => connections, warnings };
  }

  it('fails a request the server never answers with a timeout, and reconnects', async () => {
    const { conn, connections } = await scripted(() => undefined);
    await conn.connect();
    expect(connections()).toBe(2);
    const err = await rejection(conn.claim(1));
    expect(err).toBeInstanceOf(FleetConnectionError);
    expect(err).toMatchObject({ reason: 'timeout', route: 'WS /v1/factory claim' });
    expect(err.message).toMatch(/no answer to claim .* within 200 ms/);
    await until(() => connections() === 4 && conn.state === 'connected');
  });

  it('refuses a result that does not match the protocol, naming the field', async () => {
    const { conn } = await scripted(() => ({ assignments: 'none' }));
    await conn.connect();
    const err = await rejection(conn.claim(1));
    expect(err).toBeInstanceOf(FleetResponseError);
    expect(err).toMatchObject({ issues: [{ path: 'assignments' }] });
    expect(err.message).toMatch(/different versions/);
    expect(conn.state).toBe('connected');
  });
});

describeStores('FactoryConnection', (kind) => {
  /** A server listening on loopback, and a connection to it closed before the server is. */
  async function setup(
    options: Partial<FactoryConnectionOptions> = {},
    serverOptions: OpenServerOptions = {},
  ) {
    const server = await listen(kind, serverOptions);
    const factoryToken = await server.token('factory', ['acme']);
    const operator = server.client(await server.token('operator', ['acme']));
    const held: FencedRef[] = [];
    const states: ConnectionState[] = [];
    const wakes: number[] = [];
    const cancels: { jobId: string; epoch: number; reason: string }[] = [];
    const stale: { refs: StaleRef[]; via: string }[] = [];
    const conn = new FactoryConnection({
      baseUrl: server.baseUrl,
      token: factoryToken,
      factory: { name: 'host-a', capabilities: ['linux'], seats: 2, version: '0.1.0' },
      heldRuns: () => [...held],
      onWake: () => wakes.push(Date.now()),
      onCancel: (jobId, epoch, reason) => cancels.push({ jobId, epoch, reason }),
      onStale: (refs, via) => stale.push({ refs, via }),
      onState: (s) => states.push(s),
      reconnect: { minDelayMs: 50, maxDelayMs: 500 },
      ...options,
    });
    // Registered after the server's own teardown, so it runs first: no reconnect to nothing.
    onTestFinished(() => conn.close());
    return { ...server, factoryToken, operator, conn, held, states, wakes, cancels, stale };
  }

  const dropAll = (app: Awaited<ReturnType<typeof setup>>['app']) =>
    app.websocketServer.clients.forEach((c) => c.terminate());

  it('connects, is woken by a submit, claims, starts, sends events and completes', async () => {
    const { conn, operator, store, states, wakes } = await setup();
    const hello = await conn.connect();
    expect(hello).toEqual({
      factoryId: expect.any(String),
      leaseTtlMs: 30_000,
      heartbeatMs: 10_000,
      draining: false,
    });
    expect(conn.state).toBe('connected');
    expect(states).toEqual(['connecting', 'reconciling', 'connected']);
    expect(conn.reconciled).toEqual({ valid: [], stale: [] });
    expect(await store.getFactory('acme', hello.factoryId)).toMatchObject({
      name: 'host-a',
      seats: 2,
      capabilities: ['linux'],
      status: 'online',
    });

    await operator.submitJobs([{ bodyMd: 'do it', capabilities: ['linux'] }]);
    await until(() => wakes.length > 0);

    const { assignments } = await conn.claim(5);
    expect(assignments).toHaveLength(1);
    const [a] = assignments;
    // Parsed records: numbers are numbers, stages are the enum's.
    expect(a!.job.stage).toBe('claimed');
    expect(a!.lease.holderFactoryId).toBe(hello.factoryId);
    expect(typeof a!.lease.expiresAt).toBe('number');
    expect(a!.run.jobId).toBe(a!.job.id);
    const ref = { jobId: a!.job.id, epoch: a!.lease.leaseEpoch };

    expect((await conn.start(ref)).job.stage).toBe('running');
    const sent = await conn.sendEvents([
      {
        ...ref,
        events: [
          { type: 'message', data: { text: 'hi' } },
          { type: 'tool_call', data: { name: 'bash' } },
        ],
      },
    ]);
    expect(sent).toEqual({ results: [{ jobId: ref.jobId, ok: true, firstSeq: 4, lastSeq: 5 }] });

    const beat = await conn.heartbeat([ref, { jobId: ref.jobId, epoch: 99 }]);
    expect(beat.renewed).toMatchObject([{ jobId: ref.jobId, renewals: 1 }]);
    expect(beat.stale).toEqual([{ jobId: ref.jobId, epoch: 99, code: 'stale_lease' }]);

    const done = await conn.complete(
      { ...a!.lease, jobId: ref.jobId, epoch: ref.epoch },
      { exit: { code: 0, signal: null }, insights: { tokensIn: 10 } },
    );
    expect(done.job.stage).toBe('succeeded');

    // A refused request is a typed error; the connection stays up.
    const again = await rejection(conn.complete(ref));
    expect(again).toBeInstanceOf(FactoryProtocolError);
    expect(again).toMatchObject({ code: 'stale_lease', route: 'WS /v1/factory complete' });
    const bad = await rejection(conn.claim(0));
    expect(bad).toMatchObject({ code: 'invalid_input', issues: [{ path: 'limit' }] });
    const late = await conn.sendEvents([{ ...ref, events: [{ type: 'late' }] }]);
    expect(late.results).toMatchObject([{ ok: false, error: { code: 'stale_lease' } }]);
    expect(conn.state).toBe('connected');

    expect((await store.readEvents('acme', ref.jobId)).map((e) => e.type)).toEqual([
      'stage',
      'stage',
      'stage',
      'message',
      'tool_call',
      'stage',
    ]);
    await conn.close();
    expect(states.at(-1)).toBe('closed');
    await until(
      async () => (await store.getFactory('acme', hello.factoryId))!.status === 'offline',
    );
  });

  it('refuses a token that is not a factory’s with the server’s error', async () => {
    const { baseUrl, token } = await setup();
    const conn = new FactoryConnection({
      baseUrl,
      token: await token('operator', ['acme']),
      factory: { name: 'host-a' },
      heldRuns: () => [],
    });
    const err = await rejection(conn.connect());
    expect(err).toBeInstanceOf(FleetApiError);
    expect(err).toMatchObject({ status: 403, code: 'forbidden' });
    expect(conn.state).toBe('disconnected');
    await conn.close();
  });

  it('reconnects after a drop: hello and reconcile again, stale runs reported', async () => {
    const stale: { refs: StaleRef[]; via: string }[] = [];
    const { app, conn, served, held, states, wakes, operator } = await setup({
      onStale: (refs, via) => {
        stale.push({ refs, via });
        throw new Error('a bug in the factory: must not break the connection');
      },
    });
    await conn.connect();
    await served.enqueue([
      { tenant: 'acme', bodyMd: 'one' },
      { tenant: 'acme', bodyMd: 'two' },
    ]);
    const { assignments } = await conn.claim(2);
    const [one, two] = assignments.map((x) => ({ jobId: x.job.id, epoch: x.lease.leaseEpoch }));
    held.push(one!, two!);
    await conn.start(one!);
    states.length = 0;

    // A request on the dropped socket fails with a connection error.
    const inFlight = conn.claim(1);
    const cancelled = new Promise<void>((resolve, reject) => {
      // Meanwhile (while the factory is away), job two is cancelled.
      void until(() => conn.state === 'disconnected')
        .then(() => operator.cancelJob(two!.jobId, 'changed my mind'))
        .then(() => resolve(), reject);
    });
    dropAll(app);
    const err = await rejection(inFlight);
    expect(err).toBeInstanceOf(FleetConnectionError);
    expect(err).toMatchObject({ reason: 'reset', route: 'WS /v1/factory claim' });
    expect(err.message).toMatch(/closed before claim was answered/);
    await cancelled;
    await conn.whenConnected();
    expect(states).toEqual(['disconnected', 'reconnecting', 'reconciling', 'connected']);
    expect(conn.reconciled).toEqual({ valid: [one], stale: [two] });
    expect(stale).toEqual([{ refs: [two], via: 'reconcile' }]);
    expect(conn.state).toBe('connected');
    expect(wakes.length).toBeGreaterThan(0);

    // The lease held across the drop still works.
    const sent = await conn.sendEvents([{ ...one!, events: [{ type: 'after_reconnect' }] }]);
    expect(sent.results).toMatchObject([{ ok: true }]);
    expect((await conn.complete(one!)).job.stage).toBe('succeeded');
  });

  it('keeps reconnecting with backoff while the server refuses, and close() stops it', async () => {
    const { app, conn, states } = await setup({ reconnect: { minDelayMs: 20, maxDelayMs: 40 } });
    await conn.connect();
    // Refuse every new socket for a while: each attempt fails, and the next one waits.
    let refusing = true;
    const refuse = (socket: { terminate(): void }) => {
      if (refusing) socket.terminate();
    };
    app.websocketServer.on('connection', refuse);
    states.length = 0;
    dropAll(app);
    await until(() => states.filter((s) => s === 'reconnecting').length >= 3);
    expect(conn.state).not.toBe('connected');
    refusing = false;
    await conn.whenConnected();
    app.websocketServer.off('connection', refuse);
    expect(states.slice(0, 2)).toEqual(['disconnected', 'reconnecting']);
    expect(states.at(-1)).toBe('connected');

    // close() while waiting out a backoff: nothing more happens.
    states.length = 0;
    dropAll(app);
    await until(() => conn.state === 'disconnected');
    await conn.close();
    await new Promise((r) => setTimeout(r, 150));
    expect(states).toEqual(['disconnected', 'closed']);
    expect(app.websocketServer.clients.size).toBe(0);
    await expect(conn.whenConnected()).rejects.toBeInstanceOf(FleetConnectionError);
  });

  it('passes a cancel push to onCancel; heartbeats then report the lease stale', async () => {
    const { conn, served, operator, cancels, stale } = await setup(
      {},
      { server: { leaseTtlMs: 1_000 } },
    );
    const hello = await conn.connect();
    expect(hello.heartbeatMs).toBe(333);
    await served.enqueue([{ tenant: 'acme', bodyMd: 'one' }]);
    const [a] = (await conn.claim(1)).assignments;
    const ref = { jobId: a!.job.id, epoch: a!.lease.leaseEpoch };
    const beats: HeartbeatResult[] = [];
    const stop = conn.startHeartbeats(() => [ref], { onBeat: (r) => beats.push(r) });
    await until(() => beats.length >= 1);
    expect(beats[0]!.renewed).toMatchObject([{ jobId: ref.jobId, leaseEpoch: ref.epoch }]);

    await operator.cancelJob(ref.jobId, 'wrong repo');
    await until(() => cancels.length > 0);
    expect(cancels).toEqual([{ ...ref, reason: 'wrong repo' }]);
    await until(() => stale.length > 0);
    expect(stale[0]).toEqual({ refs: [{ ...ref, code: 'stale_lease' }], via: 'heartbeat' });
    stop();
  });

  it('never starves lease traffic: a flood of events on a short lease TTL', async () => {
    const LEASE_TTL = 1_500;
    const FLOOD_MS = 5_000;
    const BATCH = 500;
    const IN_FLIGHT = 16;
    const { conn, served } = await setup(
      {},
      // Real time: leases expire by the wall clock, as in production.
      { server: { leaseTtlMs: LEASE_TTL }, store: { clock: () => Date.now() } },
    );
    const hello = await conn.connect();
    expect(hello.heartbeatMs).toBe(500);
    await served.enqueue([
      { tenant: 'acme', bodyMd: 'chatty' },
      { tenant: 'acme', bodyMd: 'the control: claimed, never heartbeated' },
    ]);
    const { assignments } = await conn.claim(2, LEASE_TTL);
    const a = assignments.find((x) => x.job.bodyMd === 'chatty');
    const b = assignments.find((x) => x.job.bodyMd !== 'chatty');
    const ref = { jobId: a!.job.id, epoch: a!.lease.leaseEpoch };
    await conn.start(ref);

    const beats: { at: number; result: HeartbeatResult }[] = [];
    const beatErrors: Error[] = [];
    const stop = conn.startHeartbeats(() => [ref], {
      onBeat: (result) => beats.push({ at: Date.now(), result }),
      onError: (err) => beatErrors.push(err),
    });

    const began = Date.now();
    const deadline = began + FLOOD_MS;
    let reapedOurs = 0;
    let reapedControl: number | null = null;
    let reaps = 0;
    let minHeadroom = Infinity;
    const reaper = (async () => {
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        const reaped = await served.reapExpired();
        reaps += 1;
        if (reaped.some((r) => r.jobId === ref.jobId)) reapedOurs += 1;
        if (reaped.some((r) => r.jobId === b!.job.id)) reapedControl = Date.now() - began;
        const lease = (await served.getJob('acme', ref.jobId))?.lease;
        if (lease) minHeadroom = Math.min(minHeadroom, lease.expiresAt - Date.now());
      }
    })();

    let ingested = 0;
    let batches = 0;
    let n = 0;
    const flooder = async () => {
      while (Date.now() < deadline) {
        const events = Array.from({ length: BATCH }, () => ({
          type: 'message',
          data: { text: `line ${n++} of a very chatty agent` },
        }));
        const { results } = await conn.sendEvents([{ ...ref, events }]);
        for (const r of results) {
          if (!r.ok) throw new Error(`events refused: ${r.error.code}`);
          ingested += r.lastSeq - r.firstSeq + 1;
        }
        batches += 1;
      }
    };
    await Promise.all([...Array.from({ length: IN_FLIGHT }, flooder), reaper]);
    const elapsed = (Date.now() - began) / 1_000;
    stop();

    const gaps = beats.map((b, i) => b.at - (i === 0 ? began : beats[i - 1]!.at));
    const report = {
      store: kind.name,
      ingested,
      batches,
      eventsPerSecond: Math.round(ingested / elapsed),
      heartbeats: beats.length,
      maxHeartbeatGapMs: Math.max(...gaps),
      minLeaseHeadroomMs: minHeadroom,
      reaps,
      controlReapedAfterMs: reapedControl,
    };
    console.log(`starvation test: ${JSON.stringify(report)}`);

    // The reaper works in this test: the lease nobody renewed expired and was reaped.
    expect(reapedControl).not.toBeNull();
    expect(reapedOurs).toBe(0);
    expect(beatErrors).toEqual([]);
    // About one a heartbeatMs; fewer only if the flood delayed them (the headroom check says how much).
    expect(beats.length).toBeGreaterThanOrEqual(Math.floor(FLOOD_MS / hello.heartbeatMs / 2));
    for (const { result } of beats) {
      expect(result.stale).toEqual([]);
      expect(result.renewed).toMatchObject([{ jobId: ref.jobId, leaseEpoch: ref.epoch }]);
    }
    expect(minHeadroom).toBeGreaterThan(0);
    const job = await served.getJob('acme', ref.jobId);
    expect(job).toMatchObject({ stage: 'running', lease: { leaseEpoch: ref.epoch } });
    const runs = await served.listRuns('acme', ref.jobId);
    expect(runs.filter((r) => r.result === 'lease_lost')).toEqual([]);
    expect(ingested).toBeGreaterThan(10_000);
    const last = await served.readEvents('acme', ref.jobId, { afterSeq: ingested, limit: 10 });
    // Seqs 1..3 are the claim's stage events; the flood's events follow, none missing.
    expect(last.map((e) => e.seq)).toEqual([ingested + 1, ingested + 2, ingested + 3]);
    expect((await conn.complete(ref)).job.stage).toBe('succeeded');
  }, 60_000);
});
