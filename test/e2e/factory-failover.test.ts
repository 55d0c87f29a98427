import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { EventHub } from '../../src/server/index.js';
import { runReaperLoop } from '../../src/server/reaper-loop.js';
import { listen } from '../client/helpers.js';
import { cleanup, makeRepo, show, tempDir, waitGone } from '../factory/fixtures.js';
import { launchFleet, until } from '../helpers/fleet-process.js';
import { STORES } from '../helpers/stores.js';

const sqlite = STORES.find((k) => k.name === 'sqlite')!;
const run = promisify(execFile);

const LEASE_TTL_MS = 2_000;
const REAP_EVERY_MS = 300;

/** The real `fleet factory` as a child process. */
const launchFactory = (args: string[], token: string) =>
  launchFleet(['factory', ...args], { FLEET_TOKEN: token });

/** Live (not zombie) processes whose command line contains `needle`. */
async function processesWith(needle: string): Promise<number[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,stat=,args=']);
  const pids: number[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (m === null || m[2]!.startsWith('Z') || !m[3]!.includes(needle)) continue;
    pids.push(Number(m[1]));
  }
  return pids;
}

describe('factory failover', () => {
  it(
    'kill -9 a factory mid-run: its agent dies, the lease expires, another factory finishes the job',
    {
      timeout: 60_000,
    },
    async () => {
      // 1. A server on SQLite with a short lease TTL, and the real reaper loop.
      const hub = new EventHub();
      const server = await listen(sqlite, {
        store: { clock: () => Date.now(), backoff: { baseMs: 100, maxMs: 1_000, factor: 2 } },
        server: { leaseTtlMs: LEASE_TTL_MS, hub },
      });
      const reaping = new AbortController();
      const reaper = runReaperLoop({
        store: server.served,
        hub,
        logger: pino({ level: 'silent' }),
        intervalMs: REAP_EVERY_MS,
        signal: reaping.signal,
      });
      // Registered after listen: runs before the store is closed.
      onTestFinished(async () => {
        reaping.abort();
        await reaper;
      });

      const token = await server.token('factory', ['acme']);
      const operator = server.client(await server.token('operator', ['acme']));
      const repo = await makeRepo();
      const workA = await tempDir('fleet-work-a-');
      const workB = await tempDir('fleet-work-b-');
      // Outside the repository (the runs work in worktrees): its presence lets the script finish.
      const markerDir = await tempDir('fleet-failover-marker-');
      onTestFinished(() => cleanup(repo, workA, workB, markerDir));
      const marker = join(markerDir, 'go');

      // 2. Factory A, then a slow, idempotent job; the unique marker path names its processes.
      const factoryArgs = (name: string, dir: string) => [
        '--server',
        server.baseUrl,
        '--name',
        name,
        '--seats',
        '1',
        '--work-dir',
        dir,
        '--data-dir',
        dir,
        '--poll-ms',
        '200',
      ];
      const a = launchFactory(factoryArgs('factory-a', workA), token);
      await until(() => /control socket/.test(a.stdout()));

      const script = [
        `M=${marker}`,
        'for i in $(seq 1 150); do echo "tick $i"; [ -f "$M" ] && break; sleep 0.2; done',
        'echo finished > result.txt',
      ].join('\n');
      const { jobs } = await operator.submitJobs([
        { bodyMd: script, engine: 'shell', manifest: { cwd: repo }, key: 'failover' },
      ]);
      const id = jobs[0]!.job.id;

      // 3. Running on A with some ticks in; its agent (guard and bash) is alive.
      const ticks = async () =>
        (await server.store.readEvents('acme', id, { limit: 10_000 })).filter(
          (e) => e.type === 'log' && /^tick \d+$/.test(String(e.data.line)),
        );
      await until(async () => (await ticks()).length >= 3);
      const job1 = await server.store.getJob('acme', id);
      expect(job1).toMatchObject({ stage: 'running', lease: { leaseEpoch: 1 } });
      const agentPids = await processesWith(marker);
      expect(agentPids.length).toBeGreaterThan(0);

      const killedAt = Date.now();
      a.child.kill('SIGKILL');
      await a.exited;

      // 4. The guard takes the agent down with its factory …
      for (const pid of agentPids) expect(await waitGone(pid, 5_000)).toBe(true);
      await until(async () => (await processesWith(marker)).length === 0, 5_000);

      // … and the reaper ends the first run as lease_lost once the lease expired.
      await until(
        async () => (await server.store.listRuns('acme', id))[0]?.result === 'lease_lost',
      );
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual(LEASE_TTL_MS - 700);
      const requeued = await server.store.getJob('acme', id);
      expect(requeued).toMatchObject({ stage: 'queued', attempts: 1, lease: null });

      // A's dead worktree still holds fleet/failover on this machine; B must take it over.

      // 5. Factory B claims the job at epoch 2 and runs it to success.
      await writeFile(marker, '');
      const b = launchFactory(factoryArgs('factory-b', workB), token);
      await until(async () => (await server.store.getJob('acme', id))?.stage === 'succeeded');

      const runs = await server.store.listRuns('acme', id);
      expect(runs).toHaveLength(2);
      expect(runs[0]).toMatchObject({ attempt: 1, leaseEpoch: 1, result: 'lease_lost' });
      expect(runs[1]).toMatchObject({ attempt: 2, leaseEpoch: 2, result: 'success' });
      expect(runs[0]!.factoryId).not.toBe(runs[1]!.factoryId);
      expect((await show(repo, 'fleet/failover:result.txt')).trim()).toBe('finished');

      // 6. One gap-free stream with both attempts' events.
      const events = await server.store.readEvents('acme', id, { limit: 10_000 });
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      const epochs = new Set(events.map((e) => e.epoch));
      expect(epochs.has(1)).toBe(true);
      expect(epochs.has(2)).toBe(true);
      expect(events.some((e) => e.epoch === 2 && e.type === 'commit')).toBe(true);

      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
    },
  );
});
