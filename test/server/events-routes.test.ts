import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, it, onTestFinished } from 'vitest';
import type { JobEvent, JobStage } from '../../src/core/index.js';
import { EventHub, buildServer } from '../../src/server/index.js';
import { followEvents } from '../../src/server/sse-stream.js';
import type { Store } from '../../src/store/index.js';
import { type StoreKind, describeStores } from '../helpers/stores.js';
import { bearer, openServer } from './helpers.js';

/** A job of `tenant` under a live lease. Its stream starts with two stage events (seq 1, 2). */
async function leasedJob(store: Store, tenant = 'acme') {
  await store.enqueue([{ tenant, bodyMd: 'work' }]);
  const [c] = await store.claim({ factoryId: 'f1', tenants: [tenant], capabilities: [], limit: 1 });
  return { job: c!.job, epoch: c!.lease.leaseEpoch, run: c!.run };
}

/** The app on a real port, with a hub the test can watch. */
async function liveServer(kind: StoreKind) {
  const opened = await openServer(kind);
  const hub = new EventHub();
  const app = await buildServer({ store: opened.store, hub, version: 'test' });
  onTestFinished(async () => {
    const closing = app.close();
    // fetch may keep a spare connection that never sends a request; do not wait for it.
    app.server.closeAllConnections();
    await closing;
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { ...opened, app, hub, base: `http://127.0.0.1:${port}` };
}

interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/** Reads a text/event-stream response as it arrives; messages and comments kept apart. */
class SseReader {
  readonly comments: string[] = [];
  private buffer = '';
  private ended = false;
  private readonly queue: SseMessage[] = [];
  private readonly decoder = new TextDecoder();
  private wake: (() => void) | undefined;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>) {
    void this.pump(reader);
  }

  /** The next message, or null when the stream is over. */
  async next(timeoutMs = 5_000): Promise<SseMessage | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.ended) return null;
      if (Date.now() >= deadline) throw new Error('no SSE message in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.queue.shift()!;
  }

  async take(n: number): Promise<SseMessage[]> {
    const out: SseMessage[] = [];
    for (let i = 0; i < n; i++) {
      const m = await this.next();
      if (m === null) throw new Error(`stream ended after ${i} of ${n} messages`);
      out.push(m);
    }
    return out;
  }

  private async pump(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        this.buffer += this.decoder.decode(chunk.value, { stream: true });
        this.parse();
        this.wake?.();
      }
    } catch {
      // Aborted by the test.
    } finally {
      this.ended = true;
      this.wake?.();
    }
  }

  private parse(): void {
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) !== -1) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const msg: SseMessage = { id: undefined, event: 'message', data: '' };
      let fields = 0;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments.push(line);
          continue;
        }
        const colon = line.indexOf(':');
        const field = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        fields++;
        if (field === 'id') msg.id = value;
        else if (field === 'event') msg.event = value;
        else if (field === 'data') msg.data = value;
      }
      if (fields > 0) this.queue.push(msg);
    }
  }
}

async function follow(
  base: string,
  jobId: string,
  secret: string,
  options: { query?: string; lastEventId?: number } = {},
) {
  const ac = new AbortController();
  const res = await fetch(`${base}/v1/jobs/${jobId}/events?follow=1${options.query ?? ''}`, {
    headers: {
      ...bearer(secret),
      ...(options.lastEventId === undefined ? {} : { 'last-event-id': `${options.lastEventId}` }),
    },
    signal: ac.signal,
  });
  return { res, sse: new SseReader(res.body!.getReader()), abort: () => ac.abort() };
}

async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const seqs = (ms: SseMessage[]) => ms.map((m) => Number(m.id));
const paths = (body: { error: { issues: { path: string }[] } }) =>
  body.error.issues.map((i) => i.path).sort();

describeStores('events API', (kind) => {
  it('pages through a job’s events', async () => {
    const { app, store, token } = await openServer(kind);
    const { job, epoch } = await leasedJob(store);
    await store.appendEvents({ jobId: job.id, epoch }, [
      { type: 'log', data: { i: 1 } },
      { type: 'log', data: { i: 2 } },
      { type: 'tool', data: { name: 'bash' } },
      { type: 'log', data: { i: 3 } },
      { type: 'log', data: { i: 4 } },
    ]);
    const op = await token('operator', ['acme']);
    const page = (query: string) =>
      app.inject({ url: `/v1/jobs/${job.id}/events${query}`, headers: bearer(op) });

    const first = await page('?limit=3');
    expect(first.statusCode).toBe(200);
    expect(first.json().items.map((e: JobEvent) => e.seq)).toEqual([1, 2, 3]);
    expect(first.json().next).toBe(3);
    expect(first.json().items[2]).toMatchObject({
      tenant: 'acme',
      jobId: job.id,
      type: 'log',
      epoch,
      data: { i: 1 },
    });
    const second = (await page('?after=3&limit=3')).json();
    expect([second.items.map((e: JobEvent) => e.seq), second.next]).toEqual([[4, 5, 6], 6]);
    const last = (await page('?after=6&limit=3')).json();
    expect([last.items.map((e: JobEvent) => e.seq), last.next]).toEqual([[7], null]);
    const all = (await page('')).json();
    expect([all.items.length, all.next]).toEqual([7, null]);
    expect((await page('?after=7')).json()).toEqual({ items: [], next: null });
  });

  it('hides other tenants’ streams and scopes an agent token to its own job', async () => {
    const { app, store, token } = await openServer(kind);
    const mine = await leasedJob(store, 'acme');
    const theirs = await leasedJob(store, 'beta');
    const [child] = await store.enqueue([
      { tenant: 'acme', bodyMd: 'child', parentId: mine.job.id },
    ]);
    const [other] = await store.enqueue([{ tenant: 'acme', bodyMd: 'other' }]);
    const op = await token('operator', ['acme']);
    const agent = await token('agent', ['acme'], mine.job.id);
    const get = (id: string, secret: string, query = '') =>
      app.inject({ url: `/v1/jobs/${id}/events${query}`, headers: bearer(secret) });

    for (const query of ['', '?follow=1']) {
      const res = await get(theirs.job.id, op, query);
      expect(res.statusCode, query).toBe(404);
      expect(res.json().error.code).toBe('not_found');
      expect((await get(other!.job.id, agent, query)).statusCode).toBe(404);
    }
    expect((await get(mine.job.id, agent)).statusCode).toBe(200);
    expect((await get(child!.job.id, agent)).json().items).toHaveLength(1);
    expect((await app.inject({ url: `/v1/jobs/${mine.job.id}/events` })).statusCode).toBe(401);
    expect((await get(theirs.job.id, op, '?tenant=beta')).statusCode).toBe(403);
    // The header schema (Last-Event-ID) keeps the other headers: the tenant header still counts.
    const named = await app.inject({
      url: `/v1/jobs/${theirs.job.id}/events`,
      headers: { ...bearer(op), 'x-fleet-tenant': 'beta' },
    });
    expect(named.statusCode).toBe(403);
    const admin = await app.inject({
      url: `/v1/jobs/${theirs.job.id}/events?follow=0`,
      headers: { ...bearer(await token('admin')), 'x-fleet-tenant': 'beta' },
    });
    expect(admin.json().items).toHaveLength(2);
  });

  it('appends events fenced by the lease epoch', async () => {
    const { app, store, token } = await openServer(kind);
    const { job, epoch } = await leasedJob(store);
    const factory = await token('factory', ['acme']);
    const post = (secret: string, payload: object, id = job.id) =>
      app.inject({
        method: 'POST',
        url: `/v1/jobs/${id}/events`,
        headers: bearer(secret),
        payload,
      });

    const ok = await post(factory, {
      epoch,
      events: [
        { type: 'log', data: { line: 'hello' } },
        { type: 'tool', at: 42 },
      ],
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ firstSeq: 3, lastSeq: 4 });
    const written = await store.readEvents('acme', job.id);
    expect(written.slice(2)).toMatchObject([
      { seq: 3, type: 'log', epoch, data: { line: 'hello' } },
      { seq: 4, type: 'tool', epoch, at: 42, data: {} },
    ]);

    const stale = await post(factory, { epoch: epoch + 1, events: [{ type: 'log' }] });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error.code).toBe('stale_lease');
    expect(await store.readEvents('acme', job.id)).toHaveLength(4);

    for (const role of ['operator', 'agent'] as const) {
      const secret = await token(role, ['acme'], role === 'agent' ? job.id : null);
      const denied = await post(secret, { epoch, events: [{ type: 'log' }] });
      expect(denied.statusCode, role).toBe(403);
    }
    const beta = await token('factory', ['beta']);
    const hidden = await post(beta, { epoch, events: [{ type: 'log' }] });
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json().error.code).toBe('not_found');

    await store.complete({ jobId: job.id, epoch });
    const after = await post(factory, { epoch, events: [{ type: 'late' }] });
    expect(after.statusCode).toBe(409);
    expect(after.json().error.code).toBe('stale_lease');
    expect((await store.readEvents('acme', job.id)).map((e) => e.type)).toEqual([
      'stage',
      'stage',
      'log',
      'tool',
      'stage',
    ]);
  });

  it('rejects invalid queries, headers and bodies with precise paths', async () => {
    const { app, store, admin } = await openServer(kind);
    const { job, epoch } = await leasedJob(store);
    const get = (query: string, headers: Record<string, string> = {}) =>
      app.inject({
        url: `/v1/jobs/${job.id}/events${query}`,
        headers: { ...bearer(admin), ...headers },
      });

    const badPage = await get('?limit=0&after=-1');
    expect(badPage.statusCode).toBe(400);
    expect(badPage.json().error.code).toBe('invalid_input');
    expect(paths(badPage.json())).toEqual(['querystring.after', 'querystring.limit']);
    expect(paths((await get('?limit=1001&after=x')).json())).toEqual([
      'querystring.after',
      'querystring.limit',
    ]);
    expect(paths((await get('?follow=yes')).json())).toEqual(['querystring.follow']);
    expect((await get('?afterr=1')).json().error.issues).toEqual([
      { path: 'querystring.afterr', message: 'unknown field' },
    ]);
    const badId = await get('?follow=1', { 'last-event-id': 'abc' });
    expect(badId.statusCode).toBe(400);
    expect(paths(badId.json())).toEqual(['headers.last-event-id']);

    const post = (payload: unknown) =>
      app.inject({
        method: 'POST',
        url: `/v1/jobs/${job.id}/events`,
        headers: bearer(admin),
        payload: payload as object,
      });
    const bad = await post({
      epoch: 0,
      events: [{ type: '' }, { type: 'a', extra: 1 }, { type: 'end' }, { type: 'a\nb' }],
    });
    expect(bad.statusCode).toBe(400);
    expect(paths(bad.json())).toEqual([
      'body.epoch',
      'body.events.0.type',
      'body.events.1.extra',
      'body.events.2.type',
      'body.events.3.type',
    ]);
    expect(paths((await post({ epoch, events: [] })).json())).toEqual(['body.events']);
    expect(paths((await post({ epoch, events: [{ type: 'a', data: [1] }] })).json())).toEqual([
      'body.events.0.data',
    ]);
    expect(paths((await post({ events: [{ type: 'a' }], epock: 1 })).json())).toEqual([
      'body.epoch',
      'body.epock',
    ]);
    // The raw-bytes parser of the artifact upload is not this route's.
    const text = await app.inject({
      method: 'POST',
      url: `/v1/jobs/${job.id}/events`,
      headers: { ...bearer(admin), 'content-type': 'application/octet-stream' },
      payload: Buffer.from('hello'),
    });
    expect(text.statusCode).toBe(415);
    expect(await store.readEvents('acme', job.id)).toHaveLength(2);
  });

  it('follows a job live over SSE: backlog, hub-woken appends, then end', async () => {
    const { base, store, hub, token } = await liveServer(kind);
    const { job, epoch } = await leasedJob(store);
    await store.appendEvents({ jobId: job.id, epoch }, [{ type: 'log', data: { i: 1 } }]);
    const op = await token('operator', ['acme']);
    const factory = await token('factory', ['acme']);

    const { res, sse } = await follow(base, job.id, op);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const backlog = await sse.take(3);
    expect(seqs(backlog)).toEqual([1, 2, 3]);
    expect(backlog.map((m) => m.event)).toEqual(['stage', 'stage', 'log']);
    expect(JSON.parse(backlog[2]!.data)).toMatchObject({
      jobId: job.id,
      seq: 3,
      type: 'log',
      epoch,
      data: { i: 1 },
    });
    await until(() => hub.listenerCount(job.id) === 1);

    // Live: the POST publishes to the hub, so the event comes well before the 1 s poll.
    for (const i of [2, 3]) {
      const started = Date.now();
      const posted = await fetch(`${base}/v1/jobs/${job.id}/events`, {
        method: 'POST',
        headers: { ...bearer(factory), 'content-type': 'application/json' },
        body: JSON.stringify({ epoch, events: [{ type: 'log', data: { i } }] }),
      });
      expect(posted.status).toBe(200);
      const live = await sse.next();
      expect(Date.now() - started).toBeLessThan(500);
      expect(live).toMatchObject({ id: `${i + 2}`, event: 'log' });
      expect(JSON.parse(live!.data).data).toEqual({ i });
    }

    await store.complete({ jobId: job.id, epoch });
    hub.publish(job.id);
    const final = await sse.next();
    expect(final).toMatchObject({ id: '6', event: 'stage' });
    expect(JSON.parse(final!.data).data).toMatchObject({ to: 'succeeded' });
    expect(await sse.next()).toEqual({
      id: undefined,
      event: 'end',
      data: '{"stage":"succeeded"}',
    });
    expect(await sse.next()).toBeNull();
    await until(() => hub.listenerCount(job.id) === 0);
  });

  it('resumes from Last-Event-ID or ?after= with no gaps and no duplicates', async () => {
    const { base, store, hub, token } = await liveServer(kind);
    const { job, epoch } = await leasedJob(store);
    const ref = { jobId: job.id, epoch };
    await store.appendEvents(ref, [{ type: 'a' }, { type: 'b' }, { type: 'c' }]);
    const op = await token('operator', ['acme']);

    const first = await follow(base, job.id, op);
    const seen = await first.sse.take(4);
    expect(seqs(seen)).toEqual([1, 2, 3, 4]);
    // Disconnecting leaves no subscriber behind.
    await until(() => hub.listenerCount(job.id) === 1);
    first.abort();
    await until(() => hub.listenerCount(job.id) === 0);

    await store.appendEvents(ref, [{ type: 'd' }, { type: 'e' }]);
    hub.publish(job.id);
    const second = await follow(base, job.id, op, { lastEventId: 4, query: '&after=1' });
    const rest = await second.sse.take(3);
    seen.push(...rest);
    expect(seqs(rest)).toEqual([5, 6, 7]);
    expect(rest.map((m) => m.event)).toEqual(['c', 'd', 'e']);
    await store.appendEvents(ref, [{ type: 'f' }]);
    hub.publish(job.id);
    seen.push(await second.sse.take(1).then((m) => m[0]!));
    expect(seqs(seen)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    second.abort();

    const third = await follow(base, job.id, op, { query: '&after=6' });
    expect(seqs(await third.sse.take(2))).toEqual([7, 8]);
    third.abort();
    await until(() => hub.listenerCount(job.id) === 0);
  });

  it('picks up events written by another process on the poll, and ends a finished job at once', async () => {
    const { base, store, hub, token, reopen } = await liveServer(kind);
    const { job, epoch } = await leasedJob(store);
    const op = await token('operator', ['acme']);
    const { sse, abort } = await follow(base, job.id, op);
    expect(seqs(await sse.take(2))).toEqual([1, 2]);

    // Another handle on the same database: nothing publishes to this server's hub.
    const elsewhere = await reopen();
    await elsewhere.appendEvents({ jobId: job.id, epoch }, [{ type: 'remote' }]);
    const started = Date.now();
    expect(await sse.next(3_000)).toMatchObject({ id: '3', event: 'remote' });
    expect(Date.now() - started).toBeLessThan(2_000);
    abort();
    await until(() => hub.listenerCount(job.id) === 0);

    await store.cancel('acme', job.id, 'stop');
    const again = await follow(base, job.id, op, { lastEventId: 3 });
    const tail = await again.sse.take(2);
    expect(tail.map((m) => [m.id, m.event])).toEqual([
      ['4', 'stage'],
      [undefined, 'end'],
    ]);
    expect(JSON.parse(tail[1]!.data)).toEqual({ stage: 'cancelled' });
    expect(await again.sse.next()).toBeNull();
  });

  it('ends open streams when the app closes', async () => {
    const { app, base, store, hub, token } = await liveServer(kind);
    const { job } = await leasedJob(store);
    const op = await token('operator', ['acme']);
    const { sse } = await follow(base, job.id, op);
    await sse.take(2);
    await until(() => hub.listenerCount(job.id) === 1);
    await app.close();
    expect(await sse.next()).toBeNull();
    expect(hub.listenerCount(job.id)).toBe(0);
  });
});

it('sends keep-alive pings and stops reading once the client goes', async () => {
  const calls = { stage: 0, subscribed: 0, unsubscribed: 0 };
  const event: JobEvent = {
    tenant: 'acme',
    jobId: 'j1',
    seq: 1,
    type: 'multi\nline',
    at: 0,
    epoch: null,
    data: {},
  };
  let done: Promise<void> | undefined;
  const server = createServer((req, res) => {
    done = followEvents(
      req,
      res,
      {
        stage: async () => {
          calls.stage++;
          return 'running' as JobStage;
        },
        read: async (after) => (after < 1 ? [event] : []),
        subscribe: () => {
          calls.subscribed++;
          return () => calls.unsubscribed++;
        },
      },
      { afterSeq: 0, pollMs: 10, pingMs: 20 },
    ).done;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(async () => {
    const closing = new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    await closing;
  });
  const { port } = server.address() as AddressInfo;
  const ac = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: ac.signal });
  const sse = new SseReader(res.body!.getReader());
  // A line break in the type cannot split the frame.
  expect(await sse.next()).toMatchObject({ id: '1', event: 'multi line' });
  await until(() => sse.comments.length >= 2 && calls.stage > 2);
  expect(sse.comments).toContain(': ping');

  ac.abort();
  await done;
  const stagesAtClose = calls.stage;
  expect([calls.subscribed, calls.unsubscribed]).toEqual([1, 1]);
  await new Promise((r) => setTimeout(r, 60));
  expect(calls.stage).toBe(stagesAtClose);
});
