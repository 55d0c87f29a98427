import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { FleetApiError, FleetClient, FleetConnectionError } from '../../src/client/index.js';
import type { JobEvent } from '../../src/core/index.js';
import { describeStores } from '../helpers/stores.js';
import { claimedJob, cuttingProxy, listen, tcpServer } from './helpers.js';

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fetch that records the Last-Event-ID of every stream request it passes on. */
function recordingFetch(): { fetch: typeof globalThis.fetch; resumes: (string | null)[] } {
  const resumes: (string | null)[] = [];
  const fetch: typeof globalThis.fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    if (headers.get('accept') === 'text/event-stream') resumes.push(headers.get('last-event-id'));
    return globalThis.fetch(input, init);
  };
  return { fetch, resumes };
}

async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describeStores('FleetClient: events', (kind) => {
  it('appends events under the lease and reads them a page at a time', async () => {
    const { client, admin, token, store } = await listen(kind);
    const factory = client(await token('factory', ['acme']));
    const { job, lease } = await claimedJob(store);
    const appended = await factory.appendEvents(
      job.id,
      lease.leaseEpoch,
      range(1, 5).map((i) => ({ type: 'log', data: { i } })),
    );
    // seq 1 and 2 are the stage events of enqueue and claim.
    expect(appended).toEqual({ firstSeq: 3, lastSeq: 7 });

    const reader = client(admin, { tenant: 'acme' });
    const first = await reader.listEvents(job.id, { limit: 4 });
    expect(first.items.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(first.next).toBe(4);
    const rest = await reader.listEvents(job.id, { after: first.next!, limit: 4 });
    expect(rest.items.map((e) => e.seq)).toEqual([5, 6, 7]);
    expect(rest.next).toBeNull();
    expect(rest.items[2]).toMatchObject({ type: 'log', data: { i: 5 }, epoch: lease.leaseEpoch });

    const stale = factory.appendEvents(job.id, lease.leaseEpoch + 1, [{ type: 'late' }]);
    await expect(stale).rejects.toMatchObject({ status: 409, code: 'stale_lease' });
    const reserved = factory.appendEvents(job.id, lease.leaseEpoch, [{ type: 'end' }]);
    await expect(reserved).rejects.toMatchObject({ status: 400, code: 'invalid_input' });
  });

  it('follows a job live until it ends, each event once and in order', async () => {
    const { client, admin, store } = await listen(kind);
    const fleet = client(admin, { tenant: 'acme' });
    const { job, lease } = await claimedJob(store);
    const ref = { jobId: job.id, epoch: lease.leaseEpoch };

    const seen: JobEvent[] = [];
    const following = (async () => {
      for await (const e of fleet.followEvents(job.id)) seen.push(e);
    })();
    await fleet.appendEvents(job.id, ref.epoch, [{ type: 'log', data: { n: 1 } }]);
    await fleet.appendEvents(job.id, ref.epoch, [{ type: 'log', data: { n: 2 } }]);
    await store.markRunning(ref);
    await store.complete(ref);
    await following;

    const all = await store.readEvents('acme', job.id);
    expect(seen).toEqual(all);
    expect(seen.map((e) => e.seq)).toEqual(range(1, all.length));
    expect(seen.filter((e) => e.type === 'log').map((e) => e.data.n)).toEqual([1, 2]);
  });

  it('starts after a given seq', async () => {
    const { client, admin, store } = await listen(kind);
    const { job, lease } = await claimedJob(store);
    const ref = { jobId: job.id, epoch: lease.leaseEpoch };
    await store.appendEvents(ref, [{ type: 'a' }, { type: 'b' }, { type: 'c' }]);
    await store.complete(ref);
    const fleet = client(admin, { tenant: 'acme' });
    const seen = await collect(fleet.followEvents(job.id, { after: 3 }));
    expect(seen.map((e) => e.type)).toEqual(['b', 'c', 'stage']);
    expect(seen.map((e) => e.seq)).toEqual([4, 5, 6]);
  });

  it('stops when the signal aborts or the loop is left, closing the stream', async () => {
    const { client, admin, store, app } = await listen(kind);
    const { job } = await claimedJob(store);
    const fleet = client(admin, { tenant: 'acme' });
    let openStreams = 0;
    app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!req.url?.includes('follow=1')) return;
      openStreams += 1;
      res.on('close', () => (openStreams -= 1));
    });
    const streamsClosed = async () => {
      for (let i = 0; i < 100 && openStreams > 0; i++) await sleep(20);
      return openStreams;
    };

    const controller = new AbortController();
    const seen: number[] = [];
    const started = Date.now();
    setTimeout(() => controller.abort(), 300);
    for await (const e of fleet.followEvents(job.id, { signal: controller.signal }))
      seen.push(e.seq);
    expect(seen).toEqual([1, 2]);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await streamsClosed()).toBe(0);

    // An already aborted signal yields nothing.
    expect(await collect(fleet.followEvents(job.id, { signal: AbortSignal.abort() }))).toEqual([]);

    const first: number[] = [];
    for await (const e of fleet.followEvents(job.id)) {
      first.push(e.seq);
      break;
    }
    expect(first).toEqual([1]);
    expect(await streamsClosed()).toBe(0);
  });

  it('throws FleetApiError for a job the caller cannot see', async () => {
    const { client, admin, store } = await listen(kind);
    const { job } = await claimedJob(store);
    const beta = client(admin, { tenant: 'beta' });
    const err = await collect(beta.followEvents(job.id)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetApiError);
    expect(err).toMatchObject({ status: 404, route: 'GET /v1/jobs/:id/events' });
  });

  it('resumes after the server drops every connection, without gaps or duplicates', async () => {
    const { client, admin, store, app } = await listen(kind);
    const { job, lease } = await claimedJob(store);
    const ref = { jobId: job.id, epoch: lease.leaseEpoch };
    await store.appendEvents(ref, [{ type: 'log' }, { type: 'log' }, { type: 'log' }]);
    const { fetch, resumes } = recordingFetch();
    const follower = client(admin, {
      tenant: 'acme',
      fetch,
    });
    const writer = client(admin, { tenant: 'acme' });

    const seen: JobEvent[] = [];
    for await (const e of follower.followEvents(job.id, { reconnect: { minDelayMs: 20 } })) {
      seen.push(e);
      if (e.seq === 5) {
        // Mid-stream: the server closes every socket it has, this stream's included.
        app.server.closeAllConnections();
        await sleep(50);
        await writer.appendEvents(job.id, ref.epoch, [{ type: 'after' }, { type: 'after' }]);
        await store.complete(ref);
      }
    }
    const all = await store.readEvents('acme', job.id);
    expect(seen.map((e) => e.seq)).toEqual(range(1, all.length));
    expect(seen).toEqual(all);
    expect(seen.filter((e) => e.type === 'after')).toHaveLength(2);
    expect(resumes.length).toBeGreaterThanOrEqual(2);
    expect(resumes.slice(0, 2)).toEqual(['0', '5']);
  });

  it('drops an event cut off mid-frame and gets it again on the reconnect', async () => {
    const { admin, store, port } = await listen(kind);
    const { job, lease } = await claimedJob(store);
    const ref = { jobId: job.id, epoch: lease.leaseEpoch };
    await store.appendEvents(
      ref,
      range(1, 6).map((i) => ({ type: 'log', data: { i, text: 'x'.repeat(100) } })),
    );
    await store.complete(ref);
    // The first connection ends 20 bytes into the third event's frame.
    const proxy = await cuttingProxy(port, (n, received) => {
      if (n > 0) return null;
      const text = received.toString('latin1');
      let at = -1;
      for (let k = 0; k < 3; k++) {
        at = text.indexOf('id: ', at + 1);
        if (at === -1) return null;
      }
      return at + 20;
    });
    const fleet = new FleetClient({
      baseUrl: `http://127.0.0.1:${proxy.port}`,
      token: admin,
      tenant: 'acme',
    });
    const seen = await collect(fleet.followEvents(job.id, { reconnect: { minDelayMs: 10 } }));
    const all = await store.readEvents('acme', job.id);
    expect(seen).toEqual(all);
    expect(proxy.connections()).toBe(2);
  });

  it('gives up with FleetConnectionError when reconnects keep failing', async () => {
    const { admin, store, port } = await listen(kind);
    const { job } = await claimedJob(store);
    // The first connection delivers one event; every later one ends right after its headers.
    const proxy = await cuttingProxy(port, (n, received) => {
      const text = received.toString('latin1');
      const headersEnd = text.indexOf('\r\n\r\n');
      if (headersEnd === -1) return null;
      if (n > 0) return headersEnd + 4;
      const id = text.indexOf('id: ');
      const frameEnd = id === -1 ? -1 : text.indexOf('\n\n', id);
      return frameEnd === -1 ? null : frameEnd + 2;
    });
    const fleet = new FleetClient({
      baseUrl: `http://127.0.0.1:${proxy.port}`,
      token: admin,
      tenant: 'acme',
    });
    const seen: number[] = [];
    const err = await (async () => {
      for await (const e of fleet.followEvents(job.id, {
        reconnect: { minDelayMs: 5, maxAttempts: 2 },
      }))
        seen.push(e.seq);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FleetConnectionError);
    expect(err).toMatchObject({ reason: 'reset', route: 'GET /v1/jobs/:id/events' });
    expect(seen).toEqual([1]);
    expect(proxy.connections()).toBe(3);
  });
});

describe('FleetClient.followEvents against a bare stream', () => {
  const frame = (seq: number) =>
    `id: ${seq}\nevent: log\ndata: ${JSON.stringify({
      tenant: 'acme',
      jobId: 'j',
      seq,
      type: 'log',
      at: 1,
      epoch: null,
      data: {},
    })}\n\n`;
  const head = 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n';

  it('reconnects a silent stream, and skips events it already has', async () => {
    const resumes: string[] = [];
    let n = 0;
    const { port } = await tcpServer((socket) => {
      const k = n++;
      socket.once('data', (request: Buffer) => {
        resumes.push(/last-event-id: (\d+)/i.exec(request.toString())?.[1] ?? '');
        // First: one event, then silence. Then: a server that ignores Last-Event-ID.
        if (k === 0) socket.write(head + ': hello\n\n' + frame(1));
        else socket.end(head + frame(1) + frame(2) + 'event: end\ndata: {"stage":"failed"}\n\n');
      });
    });
    const fleet = new FleetClient({ baseUrl: `http://127.0.0.1:${port}` });
    const seen = await collect(
      fleet.followEvents('j', { idleTimeoutMs: 150, reconnect: { minDelayMs: 5 } }),
    );
    expect(seen.map((e) => e.seq)).toEqual([1, 2]);
    expect(resumes).toEqual(['0', '1']);
  });
});
