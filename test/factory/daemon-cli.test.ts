import { join } from 'node:path';
import { IpcClient } from '../../src/factory/ipc/index.js';
import { describe, expect, it, onTestFinished } from 'vitest';
import { closedPort } from '../client/helpers.js';
import { launchFleet, until } from '../helpers/fleet-process.js';
import { cleanup, factoryTestbed, tempDir } from './fixtures.js';

const launchFactory = (args: string[], env: Record<string, string> = {}) =>
  launchFleet(['factory', ...args], env);

describe('fleet factory', () => {
  it('connects, prints its ready line, runs a job, and exits 0 on SIGTERM', async () => {
    const { server, token, operator, workDir, repo } = await factoryTestbed();

    const f = launchFactory(
      [
        '--server',
        server.baseUrl,
        '--name',
        'cli-factory',
        '--seats',
        '2',
        '--work-dir',
        workDir,
        '--data-dir',
        workDir,
      ],
      { FLEET_TOKEN: token },
    );
    void f.exited.then((code) => {
      if (!/connected to/.test(f.stdout())) throw new Error(`exited ${code}:\n${f.stderr()}`);
    });
    await until(() => /control socket/.test(f.stdout()));
    const socket = join(workDir, 'factory-cli-factory.sock');
    expect(f.stdout()).toBe(
      `factory cli-factory connected to ${server.baseUrl} with 2 seats\ncontrol socket ${socket}\n`,
    );
    // The local control socket answers for the running daemon.
    const ipc = new IpcClient(socket);
    onTestFinished(() => ipc.close());
    expect(await ipc.status()).toMatchObject({ name: 'cli-factory', seats: { total: 2, busy: 0 } });
    expect((await ipc.snapshot()).schema).toBe('fleet.snapshot.v1');

    const { jobs } = await operator.submitJobs([
      { bodyMd: 'echo from the cli', engine: 'shell', manifest: { cwd: repo }, key: 'cli1' },
    ]);
    const id = jobs[0]!.job.id;
    await until(async () => (await server.store.getJob('acme', id))?.stage === 'succeeded');

    f.child.kill('SIGTERM');
    expect(await f.exited).toBe(0);
    expect(f.stderr()).toMatch(/"msg":"factory stopped"/);
  });

  it('says what is missing without a token, and exits 1', async () => {
    const dir = await tempDir('fleet-empty-');
    onTestFinished(() => cleanup(dir));
    const f = launchFactory(['--data-dir', dir]);
    expect(await f.exited).toBe(1);
    expect(f.stderr()).toMatch(/^error: no token: pass --token/);
  });

  it('exits 1 when the server cannot be reached', async () => {
    const dir = await tempDir('fleet-empty-');
    onTestFinished(() => cleanup(dir));
    const port = await closedPort();
    const f = launchFactory([
      '--server',
      `http://127.0.0.1:${port}`,
      '--token',
      'x',
      '--work-dir',
      dir,
    ]);
    expect(await f.exited).toBe(1);
    expect(f.stderr()).toMatch(/error: cannot connect to http:\/\/127\.0\.0\.1:\d+/);
  });
});
