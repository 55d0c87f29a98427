import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLoopback } from '../../src/server/run-server.js';
import { launchServe, serveFleet, terminate } from '../helpers/fleet-process.js';
import { openSqliteStore } from '../../src/store/sqlite/open.js';

const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-serve-'));
  dirs.push(dir);
  return dir;
}

const launch = (args: string[]) => launchServe(args);
const serve = (args: string[]) => serveFleet(args);

const readCredentials = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as {
    server: string;
    token: string;
  };

describe('fleet serve', () => {
  it('writes a 0600 credential file whose admin token works, serves /healthz, stops on SIGTERM', async () => {
    const dir = tempDir();
    const served = await serve(['--data-dir', dir, '--port', '0']);
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const file = join(dir, 'credentials.json');
    expect(served.stdout()).toContain(`admin credentials in ${file} (new admin token)`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const creds = readCredentials(dir);
    expect(creds.server).toBe(served.url);
    expect(creds.token).toMatch(/^fleet_adm_/);

    const health = await fetch(`${served.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, store: 'sqlite' });

    const jobs = await fetch(`${creds.server}/v1/jobs`, {
      headers: { authorization: `Bearer ${creds.token}` },
    });
    expect(jobs.status).toBe(200);
    expect(await jobs.json()).toEqual({ items: [], next: null });
    expect((await fetch(`${served.url}/v1/jobs`)).status).toBe(401);

    // fetch keeps its connection alive: an idle keep-alive must not hold the shutdown up.
    const { code, ms } = await terminate(served);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(4_000);
    const log = served.stderr();
    expect(log).toMatch(/"msg":"stopped"/);
    expect(log).not.toContain(creds.token);
    // Structured: every line of the log is a JSON object.
    for (const line of log.trim().split('\n'))
      expect(() => JSON.parse(line) as unknown).not.toThrow();
  });

  it('keeps the credential on a second start, updating its server URL', async () => {
    const dir = tempDir();
    const first = await serve(['--data-dir', dir, '--port', '0']);
    const before = readCredentials(dir);
    expect((await terminate(first)).code).toBe(0);

    const second = await serve(['--data-dir', dir, '--port', '0']);
    const after = readCredentials(dir);
    expect(after.token).toBe(before.token);
    expect(after.server).toBe(second.url);
    expect(second.stdout()).not.toContain('new admin token');
    expect(statSync(join(dir, 'credentials.json')).mode & 0o777).toBe(0o600);
    const jobs = await fetch(`${second.url}/v1/jobs`, {
      headers: { authorization: `Bearer ${after.token}` },
    });
    expect(jobs.status).toBe(200);
    expect((await terminate(second)).code).toBe(0);
  });

  it('refuses a non-loopback host without TLS, saying what to do', async () => {
    const dir = tempDir();
    const r = launch(['--data-dir', dir, '--port', '0', '--host', '0.0.0.0']);
    expect(await r.exited).toBe(1);
    expect(r.stderr()).toMatch(/refusing to serve plain HTTP on 0\.0\.0\.0/);
    expect(r.stderr()).toMatch(/--tls-cert FILE --tls-key FILE/);
    expect(r.stderr()).toMatch(/--insecure/);
    expect(r.stderr()).not.toMatch(/\n\s+at /);
    // Nothing was created: the refusal comes before the store opens.
    expect(() => statSync(join(dir, 'credentials.json'))).toThrow();
  });

  it('serves plain HTTP on all interfaces with --insecure, writing a reachable URL', async () => {
    const dir = tempDir();
    const served = await serve([
      '--data-dir',
      dir,
      '--port',
      '0',
      '--host',
      '0.0.0.0',
      '--insecure',
    ]);
    expect(served.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    const creds = readCredentials(dir);
    expect(creds.server).toBe(served.url.replace('0.0.0.0', '127.0.0.1'));
    expect((await fetch(`${creds.server}/healthz`)).status).toBe(200);
    expect((await terminate(served)).code).toBe(0);
  });

  it('reaps a job whose lease expired', async () => {
    const dir = tempDir();
    const served = await serve(['--data-dir', dir, '--port', '0', '--lease-ttl', '1s']);
    const store = await openSqliteStore({
      path: join(dir, 'fleet.db'),
      blobDir: join(dir, 'blobs'),
    });
    try {
      const [enqueued] = await store.enqueue([{ tenant: 'acme', bodyMd: 'x', maxAttempts: 3 }]);
      const claimed = await store.claim({
        factoryId: 'f1',
        tenants: ['acme'],
        capabilities: [],
        limit: 1,
        leaseTtlMs: 1_000,
      });
      expect(claimed).toHaveLength(1);
      const id = enqueued!.job.id;
      const deadline = Date.now() + 10_000;
      let stage = (await store.getJob('acme', id))!.stage;
      while (stage !== 'queued' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        stage = (await store.getJob('acme', id))!.stage;
      }
      expect(stage).toBe('queued');
      const runs = await store.listRuns('acme', id);
      expect(runs[0]).toMatchObject({ result: 'lease_lost' });
      await expect.poll(() => served.stderr(), { timeout: 5_000 }).toContain(`"jobId":"${id}"`);
      const line = served
        .stderr()
        .split('\n')
        .find((l) => l.includes(`"jobId":"${id}"`))!;
      expect(JSON.parse(line)).toMatchObject({
        component: 'reaper',
        jobId: id,
        tenant: 'acme',
        stage: 'queued',
        msg: 'lease expired; job back in the queue',
      });
      const metrics = await fetch(`${served.url}/metrics`, {
        headers: { authorization: `Bearer ${readCredentials(dir).token}` },
      });
      expect(await metrics.text()).toMatch(/^fleet_lease_expiries_total 1$/m);
    } finally {
      await store.close();
    }
    expect((await terminate(served)).code).toBe(0);
  });

  it.skipIf(!hasOpenssl())('serves HTTPS with --tls-cert and --tls-key', async () => {
    const dir = tempDir();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const served = await serve([
      '--data-dir',
      dir,
      '--port',
      '0',
      '--host',
      '0.0.0.0',
      '--tls-cert',
      cert,
      '--tls-key',
      key,
    ]);
    const creds = readCredentials(dir);
    expect(creds.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        `${creds.server}/v1/jobs`,
        { ca: readFileSync(cert), headers: { authorization: `Bearer ${creds.token}` } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(`${res.statusCode} ${text}`));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(body).toBe('200 {"items":[],"next":null}');
    expect((await terminate(served)).code).toBe(0);
  });

  it.each([
    [['--lease-ttl', '30'], /--lease-ttl: "30" has no unit; write 30s or 30ms/],
    [['--lease-ttl', '500ms'], /--lease-ttl must be at least 1s/],
    [['--port', 'http'], /--port must be a whole number from 0 to 65535, not "http"/],
    [['--tls-cert', 'x.pem'], /--tls-cert and --tls-key go together/],
    [
      ['--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem'],
      /cannot read --tls-cert \/nonexistent\/c\.pem/,
    ],
    [['--db', 'postgres://postgres@127.0.0.1:1/none'], /cannot reach PostgreSQL at .* check --db/],
  ])('refuses %j with a one-line error', async (args, message) => {
    const r = launch(['--data-dir', tempDir(), '--port', '0', ...args]);
    expect(await r.exited).toBe(1);
    expect(r.stderr()).toMatch(message);
    expect(r.stderr()).not.toMatch(/\n\s+at /);
  });
});

describe('isLoopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.5', false],
    ['example.com', false],
  ])('%s → %s', (host, loopback) => {
    expect(isLoopback(host)).toBe(loopback);
  });
});

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
