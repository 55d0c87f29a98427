import { type Socket, connect, createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { cleanup, tempDir } from '../factory/fixtures.js';
import { launchFleet, serveFleet, until } from '../helpers/fleet-process.js';
import { openSqliteStore } from '../../src/store/sqlite/open.js';

const LINES = 400;

/** A port free right now, so the restarted server listens where it did before. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A TCP relay in front of the server. `mute` holds back what the server sends (its replies),
 * so a batch can be stored while the factory never hears so; `cut` drops every connection, as
 * a dying server does.
 */
async function startRelay(targetPort: number) {
  let muted = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (!muted) client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    mute: (on: boolean) => (muted = on),
    cut: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

describe('server restart mid-run', () => {
  it(
    'the run goes on and every event is stored exactly once, in order',
    { timeout: 90_000 },
    async () => {
      const dataDir = await tempDir('fleet-restart-data-');
      const workDir = await tempDir('fleet-restart-work-');
      const jobDir = await tempDir('fleet-restart-job-');
      onTestFinished(() => cleanup(dataDir, workDir, jobDir));
      const port = await freePort();
      const serve = () => serveFleet(['--data-dir', dataDir, '--port', String(port)]);

      // 1. The real server (SQLite in the data dir) and the real factory.
      let server = await serve();
      const { token } = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as {
        token: string;
      };
      // The factory talks to the server through a relay that can hold back the server's replies.
      const relay = await startRelay(port);
      const factory = launchFleet(
        ['factory', '--server', relay.url, '--name', 'restart-host', '--work-dir', workDir],
        { FLEET_TOKEN: token },
      );
      factory.child.stdout!.resume();
      await until(() => /control socket/.test(factory.stdout()), 20_000, factory.stderr);

      // 2. A shell job printing numbered lines for several seconds.
      const script = `for i in $(seq 1 ${LINES}); do echo "line $i"; sleep 0.025; done`;
      const submitted = await fetch(`${server.url}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          jobs: [{ bodyMd: script, engine: 'shell', manifest: { cwd: jobDir } }],
        }),
      });
      expect(submitted.status).toBe(201);
      const id = ((await submitted.json()) as { jobs: { job: { id: string } }[] }).jobs[0]!.job.id;

      const store = await openSqliteStore({ path: join(dataDir, 'fleet.db'), blobDir: dataDir });
      onTestFinished(() => store.close());
      const lines = async () =>
        (await store.readEvents('default', id, { limit: 10_000 }))
          .filter((e) => e.type === 'log' && /^line \d+$/.test(String(e.data.line)))
          .map((e) => Number(String(e.data.line).slice(5)));

      // 3. Mid-run (some lines stored, most still to come), the server stores a batch whose
      // reply never reaches the factory, and dies (SIGKILL); then it is started again. The
      // factory sends that batch again after reconnecting: the server must not store it twice.
      await until(async () => (await lines()).length >= 40, 30_000, factory.stderr);
      relay.mute(true);
      const heard = (await lines()).length;
      await until(async () => (await lines()).length > heard, 10_000, factory.stderr);
      server.child.kill('SIGKILL');
      await server.exited;
      relay.cut();
      relay.mute(false);
      expect((await lines()).length).toBeLessThan(LINES);
      server = await serve();

      // 4. The factory reconnects, the run goes on and succeeds.
      await until(
        async () => (await store.getJob('default', id))?.stage === 'succeeded',
        60_000,
        async () => `${JSON.stringify(await store.getJob('default', id))}\n${factory.stderr()}`,
      );
      expect(factory.stdout() + factory.stderr()).toMatch(/reconnect/i);
      const runs = await store.listRuns('default', id);
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ result: 'success', leaseEpoch: 1 });

      // Every line once, in order; the job's stream seqs stay gap-free.
      expect(await lines()).toEqual(Array.from({ length: LINES }, (_, i) => i + 1));
      const seqs = (await store.readEvents('default', id, { limit: 10_000 })).map((e) => e.seq);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));

      server.child.kill('SIGTERM');
      await server.exited;
      factory.child.kill('SIGTERM');
      await factory.exited;
    },
  );
});
