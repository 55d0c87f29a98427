import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FleetClient } from '../../src/client/index.js';
import { readCredentials } from '../../src/server/credentials.js';
import { cleanup, makeRepo, tempDir, waitGone } from '../factory/fixtures.js';
import { launchFleet, until } from '../helpers/fleet-process.js';

type Up = ReturnType<typeof launchFleet>;

/** Starts `fleet up` on a fresh data dir and a free port; resolves once it says it is up. */
async function startUp(dataDir?: string): Promise<{ up: Up; dir: string; admin: FleetClient }> {
  const dir = dataDir ?? (await tempDir('fleet-up-'));
  if (dataDir === undefined) onTestFinished(() => cleanup(dir));
  const up = launchFleet(['up', '--data-dir', dir, '--port', '0', '--name', 'up-test']);
  await until(
    () => /^Fleet is up: /m.test(up.stdout()) || up.child.exitCode !== null,
    25_000,
    () => up.stderr(),
  );
  const match = /^Fleet is up: (\S+) \(API: \/openapi\.json\)/m.exec(up.stdout());
  if (match === null) throw new Error(`fleet up did not start:\n${up.stderr()}`);
  const saved = readCredentials(join(dir, 'credentials.json'))!;
  expect(saved.server).toBe(match[1]);
  return { up, dir, admin: new FleetClient({ baseUrl: saved.server, token: saved.token }) };
}

/** The pid of the latest `started`/`restarted` line for `name` in the supervisor's log. */
function childPid(up: Up, name: string): number {
  const pids = [...up.stderr().matchAll(new RegExp(`started ${name} \\(pid (\\d+)\\)`, 'g'))];
  return Number(pids.at(-1)![1]);
}

async function factoryOnline(admin: FleetClient): Promise<boolean> {
  const factories = await admin.listFactories();
  return factories.some((f) => f.name === 'up-test' && f.status === 'online');
}

describe('fleet up', () => {
  it('runs the server and a factory that work together, and stops them in order on SIGTERM', async () => {
    const { up, dir, admin } = await startUp();
    expect(up.stdout()).toMatch(
      new RegExp(
        `^Fleet is up: http://127\\.0\\.0\\.1:\\d+ \\(API: /openapi\\.json\\) · credential: ${join(dir, 'credentials.json')} · ` +
          `factory up-test with 4 seats · stop with Ctrl-C\n$`,
      ),
    );
    expect(await admin.health()).toMatchObject({ ok: true, store: 'sqlite' });
    await until(() => factoryOnline(admin));

    // The factory runs on a factory token of its own, kept private in the data dir.
    const tokenFile = join(dir, 'factory-token.json');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(readFileSync(tokenFile, 'utf8')) as { id: string };
    const token = (await admin.listTokens()).find((t) => t.id === saved.id);
    expect(token).toMatchObject({ role: 'factory', tenants: ['default'], revokedAt: null });

    // A job submitted to the server runs on the factory.
    const repo = await makeRepo();
    onTestFinished(() => cleanup(repo));
    const { jobs } = await admin.submitJobs([
      { bodyMd: 'echo hello from fleet up', engine: 'shell', manifest: { cwd: repo }, key: 'up1' },
    ]);
    const id = jobs[0]!.job.id;
    await until(
      async () => (await admin.getJob(id)).job.stage === 'succeeded',
      20_000,
      () => up.stderr(),
    );

    const pids = [childPid(up, 'server'), childPid(up, 'factory')];
    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
    const log = up.stderr();
    const at = (text: string) => {
      const i = log.indexOf(text);
      expect(i, `"${text}" in the log`).toBeGreaterThanOrEqual(0);
      return i;
    };
    const order = [
      'fleet up: SIGTERM: stopping the factory, then the server',
      'fleet up: stopping factory',
      'fleet up: factory stopped (code 0, signal null)',
      'fleet up: stopping server',
      'fleet up: server stopped (code 0, signal null)',
      'fleet up: stopped',
    ].map(at);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(log).toMatch(/^\{"child":"factory",.*"msg":"factory stopped"\}$/m);
    for (const pid of pids) expect(await waitGone(pid, 5_000)).toBe(true);
  });

  it('restarts a factory killed with SIGKILL, and reuses its token on the next start', async () => {
    const { up, dir, admin } = await startUp();
    await until(() => factoryOnline(admin));
    const first = childPid(up, 'factory');
    const tokenId = readFileSync(join(dir, 'factory-token.json'), 'utf8');

    process.kill(first, 'SIGKILL');
    await until(
      () => /restarted factory \(pid \d+\)/.test(up.stderr()),
      10_000,
      () => up.stderr(),
    );
    expect(up.stderr()).toMatch(
      /fleet up: factory exited \(code null, signal SIGKILL\); restarting in \d+\.\ds/,
    );
    const second = childPid(up, 'factory');
    expect(second).not.toBe(first);
    // Back online: it connected again.
    await until(
      () => up.stderr().match(/^\[factory\] factory up-test connected to /gm)?.length === 2,
      20_000,
      () => up.stderr(),
    );
    await until(() => factoryOnline(admin));
    // The server was not restarted.
    expect(up.stderr()).not.toMatch(/restarted server/);

    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);

    const again = await startUp(dir);
    expect(readFileSync(join(dir, 'factory-token.json'), 'utf8')).toBe(tokenId);
    await until(() => factoryOnline(again.admin));
    again.up.child.kill('SIGTERM');
    expect(await again.up.exited).toBe(0);
  });

  it('restarts a crashed server on the same port; the factory reconnects by itself', async () => {
    const { up, admin } = await startUp();
    await until(() => factoryOnline(admin));
    const factory = childPid(up, 'factory');

    process.kill(childPid(up, 'server'), 'SIGKILL');
    await until(
      () => /restarted server \(pid \d+\)/.test(up.stderr()),
      10_000,
      () => up.stderr(),
    );
    // Same URL as before: the restart kept the port the first start picked.
    await until(() =>
      admin.health().then(
        () => true,
        () => false,
      ),
    );
    await until(
      () => up.stderr().match(/^\{"child":"factory",.*"state":"connected"/gm)!.length >= 2,
      30_000,
      () => up.stderr(),
    );
    await until(() => factoryOnline(admin));
    expect(childPid(up, 'factory')).toBe(factory);
    expect(up.stderr()).not.toMatch(/restarted factory/);

    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
  });

  it('a second SIGINT kills the children and exits 130 while the factory is still draining', async () => {
    const { up, admin } = await startUp();
    await until(() => factoryOnline(admin));
    const repo = await makeRepo();
    onTestFinished(() => cleanup(repo));
    const { jobs } = await admin.submitJobs([
      { bodyMd: 'sleep 60', engine: 'shell', manifest: { cwd: repo }, key: 'slow' },
    ]);
    await until(async () => (await admin.getJob(jobs[0]!.job.id)).job.stage === 'running');
    const pids = [childPid(up, 'server'), childPid(up, 'factory')];

    up.child.kill('SIGINT');
    // The factory now waits for the running job (up to its shutdown deadline).
    await until(() => /"msg":"stop requested; draining and finishing runs"/.test(up.stderr()));
    up.child.kill('SIGINT');
    expect(await up.exited).toBe(130);
    expect(up.stderr()).toMatch(/fleet up: SIGINT again: killing the factory and the server/);
    for (const pid of pids) expect(await waitGone(pid, 5_000)).toBe(true);
  });

  it('takes its children down when it is killed with SIGKILL', async () => {
    const { up } = await startUp();
    const pids = [childPid(up, 'server'), childPid(up, 'factory')];
    up.child.kill('SIGKILL');
    await up.exited;
    for (const pid of pids) expect(await waitGone(pid, 10_000)).toBe(true);
  });

  it('names the port and suggests --port when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => void blocker.close());
    const port = (blocker.address() as { port: number }).port;
    const dir = await tempDir('fleet-up-');
    onTestFinished(() => cleanup(dir));

    const up = launchFleet(['up', '--data-dir', dir, '--port', String(port)]);
    expect(await up.exited).toBe(1);
    expect(up.stderr()).toMatch(
      new RegExp(
        `^error: the server did not start: 127\\.0\\.0\\.1:${port} is already in use .* pick another --port$`,
        'm',
      ),
    );
    expect(up.stdout()).toBe('');
    expect(up.stderr()).not.toMatch(/restart/);
  });

  it('rejects a bad --seats before starting anything', async () => {
    const up = launchFleet(['up', '--seats', 'many']);
    expect(await up.exited).toBe(1);
    expect(up.stderr()).toBe('error: --seats must be a whole number from 1 to 10000, not "many"\n');
  });
});
