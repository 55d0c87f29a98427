import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BOOTSTRAP_TOKEN_NAME } from '../../src/server/credentials.js';
import { createServerLogger } from '../../src/server/logger.js';
import { startServer, type RunningServer } from '../../src/server/run-server.js';
import { openSqliteStore } from '../../src/store/sqlite/open.js';

const dirs: string[] = [];
const running: RunningServer[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir: string, more: { shutdownGraceMs?: number } = {}) {
  const server = await startServer({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    leaseTtlMs: 30_000,
    logger: pino({ level: 'silent' }),
    version: 'test',
    ...more,
  });
  running.push(server);
  return server;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-run-'));
  dirs.push(dir);
  return dir;
}

describe('startServer', () => {
  it('finishes an in-flight request on stop, and accepts no new connection', async () => {
    const server = await start(tempDir());
    const token = server.credentials.credentials.token;
    const body = JSON.stringify({ jobs: [{ bodyMd: 'in flight' }] });
    const socket = connect(server.port, '127.0.0.1');
    let response = '';
    socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
    const ended = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `POST /v1/jobs HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n` +
        body.slice(0, 10),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));

    let stopped = false;
    const stopping = server.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stopped).toBe(false);
    const refused = await new Promise<string>((resolve) => {
      const late = connect(server.port, '127.0.0.1');
      late.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      late.once('connect', () => {
        late.destroy();
        resolve('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');

    socket.write(body.slice(10));
    await stopping;
    await ended;
    expect(response).toMatch(/^HTTP\/1\.1 201 /);
    expect(response).toContain('"bodyMd":"in flight"');
  });

  it('ends live event streams on stop instead of waiting out the grace period', async () => {
    const server = await start(tempDir(), { shutdownGraceMs: 10_000 });
    const auth = { authorization: `Bearer ${server.credentials.credentials.token}` };
    const submit = await fetch(`${server.url}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ jobs: [{ bodyMd: 'follow me' }] }),
    });
    const id = ((await submit.json()) as { jobs: { job: { id: string } }[] }).jobs[0]!.job.id;
    const follow = await fetch(`${server.url}/v1/jobs/${id}/events?follow=1`, { headers: auth });
    expect(follow.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reading = (async () => {
      const reader = follow.body!.getReader();
      try {
        while (!(await reader.read()).done);
      } catch {
        // Cut: also an end.
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const t0 = Date.now();
    await server.stop();
    await reading;
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it('cuts requests still open when the grace period ends', async () => {
    const server = await start(tempDir(), { shutdownGraceMs: 300 });
    const socket = connect(server.port, '127.0.0.1');
    const ended = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      'POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const t0 = Date.now();
    await server.stop();
    await ended;
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('mints a new admin token when the one in the credential file was revoked', async () => {
    const dir = tempDir();
    const first = await start(dir);
    const old = first.credentials.credentials.token;
    await first.stop();

    const store = await openSqliteStore({ path: join(dir, 'fleet.db'), blobDir: join(dir, 'b') });
    const [bootstrap] = (await store.listTokens()).filter((t) => t.name === BOOTSTRAP_TOKEN_NAME);
    await store.revokeToken(bootstrap!.id);
    await store.close();

    const second = await start(dir);
    expect(second.credentials.created).toBe(true);
    const fresh = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as {
      token: string;
    };
    expect(fresh.token).not.toBe(old);
    expect(fresh.token).toBe(second.credentials.credentials.token);
    expect(statSync(join(dir, 'credentials.json')).mode & 0o777).toBe(0o600);
  });

  it('refuses a credential file that is not JSON, and closes the store', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'credentials.json'), 'nope', { mode: 0o600 });
    await expect(start(dir)).rejects.toMatchObject({
      name: 'ServerStartError',
      reason: 'credentials',
      message: expect.stringMatching(/credentials\.json is not valid JSON — delete it/),
    });
    // The store was closed: another handle can open, write and close it.
    const store = await openSqliteStore({ path: join(dir, 'fleet.db'), blobDir: join(dir, 'b') });
    await store.enqueue([{ tenant: 'acme', bodyMd: 'x' }]);
    await store.close();
  });

  it('says when the port is taken', async () => {
    const first = await start(tempDir());
    await expect(
      startServer({
        dataDir: tempDir(),
        host: '127.0.0.1',
        port: first.port,
        leaseTtlMs: 30_000,
        logger: pino({ level: 'silent' }),
        version: 'test',
      }),
    ).rejects.toMatchObject({
      reason: 'listen',
      message: expect.stringMatching(/127\.0\.0\.1:\d+ is already in use .* pick another --port/),
    });
  });
});

describe('createServerLogger', () => {
  it('writes JSON lines with authorization headers redacted', () => {
    const lines: string[] = [];
    const logger = createServerLogger({ write: (line) => lines.push(line) });
    logger.info({ req: { headers: { authorization: 'Bearer fleet_adm_secret' } } }, 'hello');
    logger.debug('not at info');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('fleet_adm_secret');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 30,
      msg: 'hello',
      req: { headers: { authorization: '[redacted]' } },
    });
  });
});
