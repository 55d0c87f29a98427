import { describe, expect, it } from 'vitest';
import {
  FleetApiError,
  FleetClient,
  FleetConnectionError,
  FleetResponseError,
} from '../../src/client/index.js';
import { closedPort, tcpServer } from './helpers.js';

const TOKEN = 'fleet_adm_do-not-print-me';

/** A fetch that records requests and answers each with `respond()`. */
function fakeFetch(respond: (url: string, init: RequestInit) => Response | Promise<Response>) {
  const calls: { url: string; method: string; headers: Headers; body: unknown }[] = [];
  const fetch: typeof globalThis.fetch = async (input, init = {}) => {
    const url = String(input);
    calls.push({
      url,
      method: init.method ?? 'GET',
      headers: new Headers(init.headers),
      body: init.body,
    });
    return respond(url, init);
  };
  return { fetch, calls };
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });

async function rejection(call: Promise<unknown>): Promise<Error> {
  try {
    await call;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

describe('FleetClient: connection failures', () => {
  it('says there is no server, and how to start one, when nothing listens', async () => {
    const port = await closedPort();
    const fleet = new FleetClient({ baseUrl: `http://127.0.0.1:${port}/`, token: TOKEN });
    const err = await rejection(fleet.health());
    expect(err).toBeInstanceOf(FleetConnectionError);
    expect(err.message).toBe(
      `no server at http://127.0.0.1:${port} — start one with fleet up (or fleet serve)`,
    );
    expect(err).toMatchObject({
      reason: 'refused',
      route: 'GET /healthz',
      baseUrl: `http://127.0.0.1:${port}`,
    });
    expect(`${err.message} ${err.stack}`).not.toContain(TOKEN);

    // A stream fails the same way on its first connection (no retrying against nothing).
    const stream = await rejection(
      (async () => {
        for await (const _ of fleet.followEvents('j')) void _;
      })(),
    );
    expect(stream).toBeInstanceOf(FleetConnectionError);
    expect(stream.message).toMatch(
      /^no server at .* — start one with fleet up \(or fleet serve\)$/,
    );
  });

  it('times out a server that accepts but never answers', async () => {
    const { port } = await tcpServer(() => undefined);
    const fleet = new FleetClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 150 });
    const started = Date.now();
    const err = await rejection(fleet.listJobs());
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(FleetConnectionError);
    expect(err).toMatchObject({ reason: 'timeout', route: 'GET /v1/jobs' });
    expect(err.message).toMatch(/^no answer from http:\/\/127\.0\.0\.1:\d+ within 150 ms/);
  });

  it('reports a connection closed before the answer as a reset', async () => {
    const { port } = await tcpServer((socket) => socket.once('data', () => socket.destroy()));
    const fleet = new FleetClient({ baseUrl: `http://127.0.0.1:${port}` });
    const err = await rejection(fleet.health());
    expect(err).toMatchObject({ name: 'FleetConnectionError', reason: 'reset' });
    expect(err.message).toMatch(/closed before GET \/healthz was answered/);
  });

  it('maps a host that does not resolve', async () => {
    const { fetch } = fakeFetch(() => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('getaddrinfo ENOTFOUND fleet.invalid'), {
          code: 'ENOTFOUND',
        }),
      });
    });
    const fleet = new FleetClient({ baseUrl: 'http://fleet.invalid:7070', fetch });
    const err = await rejection(fleet.health());
    expect(err).toMatchObject({ reason: 'unresolved' });
    expect(err.message).toBe(
      'cannot resolve the host of http://fleet.invalid:7070 — check the server URL',
    );
  });
});

describe('FleetClient: requests and odd answers', () => {
  it('sends the token, tenant, accept and content type each route needs', async () => {
    const job = { job: { id: 'x' } };
    const { fetch, calls } = fakeFetch(() => json(job, 409));
    const fleet = new FleetClient({
      baseUrl: 'http://h:1/prefix',
      token: TOKEN,
      tenant: 'acme',
      fetch,
    });
    await rejection(fleet.retryJob('j/1'));
    await rejection(fleet.cancelJob('j', 'why'));
    await rejection(fleet.uploadArtifact('j', 2, { kind: 'log', name: 'a b' }, 'hi'));
    const [retry, cancel, upload] = calls;
    expect(retry).toMatchObject({ url: 'http://h:1/prefix/v1/jobs/j%2F1/retry', method: 'POST' });
    expect(retry!.headers.get('authorization')).toBe(`Bearer ${TOKEN}`);
    expect(retry!.headers.get('x-fleet-tenant')).toBe('acme');
    expect(retry!.headers.get('accept')).toBe('application/json');
    // A bodiless POST has no content type (the server would want a JSON body).
    expect(retry!.headers.get('content-type')).toBeNull();
    expect(retry!.body).toBeUndefined();
    expect(cancel!.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(cancel!.body as string)).toEqual({ reason: 'why' });
    expect(upload).toMatchObject({
      url: 'http://h:1/prefix/v1/jobs/j/artifacts?epoch=2&kind=log&name=a%20b',
      method: 'PUT',
    });
    expect(upload!.headers.get('content-type')).toBe('application/octet-stream');
    expect(new TextDecoder().decode(upload!.body as Uint8Array)).toBe('hi');
  });

  it('turns a non-Fleet error page into FleetApiError with an http_ code', async () => {
    const { fetch } = fakeFetch(
      () =>
        new Response('<html><body>Bad gateway</body></html>', {
          status: 502,
          statusText: 'Bad Gateway',
          headers: { 'x-request-id': 'req-1' },
        }),
    );
    const err = await rejection(new FleetClient({ baseUrl: 'http://h:1', fetch }).getJob('j'));
    expect(err).toBeInstanceOf(FleetApiError);
    expect(err).toMatchObject({ status: 502, code: 'http_502', requestId: 'req-1' });
    expect(err.message).toBe(
      'GET /v1/jobs/:id failed with HTTP 502 Bad Gateway: <html><body>Bad gateway</body></html> (is http://h:1 a Fleet server?)',
    );
  });

  it('never repeats the token, even when an answer echoes it', async () => {
    const { fetch } = fakeFetch(() =>
      json({ error: { code: 'unauthorized', message: `bad token ${TOKEN}` } }, 401),
    );
    const err = await rejection(
      new FleetClient({ baseUrl: 'http://h:1', token: TOKEN, fetch }).listTokens(),
    );
    expect(err).toMatchObject({ status: 401, message: 'bad token [token]', requestId: null });
    const { fetch: echo } = fakeFetch(() => new Response(`you sent ${TOKEN}`));
    const odd = await rejection(
      new FleetClient({ baseUrl: 'http://h:1', token: TOKEN, fetch: echo }).health(),
    );
    expect(odd).toBeInstanceOf(FleetResponseError);
    expect(odd.message).not.toContain(TOKEN);
  });

  it('names the route and field of an answer that does not match the schema', async () => {
    const { fetch } = fakeFetch(() => json({ ok: true, version: 7, store: 'sqlite' }));
    const fleet = new FleetClient({ baseUrl: 'http://h:1', fetch });
    const err = await rejection(fleet.health());
    expect(err).toBeInstanceOf(FleetResponseError);
    expect(err).toMatchObject({ route: 'GET /healthz', status: 200 });
    expect((err as FleetResponseError).issues.map((i) => i.path)).toEqual(['version']);
    expect(err.message).toMatch(/^GET \/healthz answered with an unexpected body: version: /);

    const { fetch: jobs } = fakeFetch(() =>
      json({ items: [{ id: 'j', stage: 'exploded' }], next: null }),
    );
    const page = await rejection(
      new FleetClient({ baseUrl: 'http://h:1', fetch: jobs }).listJobs(),
    );
    expect((page as FleetResponseError).issues.map((i) => i.path)).toContain('items.0.stage');
    expect(page.message).toMatch(/^GET \/v1\/jobs answered with an unexpected body: items\.0\./);
  });

  it('refuses a body that is not JSON, and a stream that is not an event stream', async () => {
    const { fetch } = fakeFetch(() => new Response('hello', { status: 200 }));
    const fleet = new FleetClient({ baseUrl: 'http://h:1', fetch });
    expect((await rejection(fleet.openapi())).message).toBe(
      'GET /openapi.json answered with a body that is not JSON: hello',
    );
    const stream = await rejection(
      (async () => {
        for await (const _ of fleet.followEvents('j')) void _;
      })(),
    );
    expect(stream).toBeInstanceOf(FleetResponseError);
    expect(stream.message).toMatch(/instead of an event stream/);
  });

  it('keeps the token out of inspection and JSON', async () => {
    const { inspect } = await import('node:util');
    const fleet = new FleetClient({ baseUrl: 'http://h:1', token: TOKEN, tenant: 'acme' });
    expect(inspect(fleet, { depth: 5 })).not.toContain(TOKEN);
    expect(JSON.stringify(fleet)).not.toContain(TOKEN);
    expect(inspect(fleet.withTenant('beta'))).not.toContain(TOKEN);
  });

  it('checks its options', () => {
    expect(() => new FleetClient({ baseUrl: 'ftp://h' })).toThrow(TypeError);
    expect(() => new FleetClient({ baseUrl: 'http://h', timeoutMs: 0 })).toThrow(RangeError);
  });
});
