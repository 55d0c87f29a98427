import { readdirSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PipePoller } from '../../src/factory/pipe-poller.js';
import { spawnProcess, type SpawnOptions } from '../../src/factory/spawn-agent.js';
import { cleanup, isGone, tempDir, waitGone } from './fixtures.js';

const dirs: string[] = [];
afterEach(async () => {
  await cleanup(...dirs.splice(0));
});

/** How the child's stdout and stderr are read: a stream per pipe, or FIFOs on one timer. */
const MODES: { name: string; poller: PipePoller | undefined }[] = [
  { name: 'streams', poller: undefined },
  { name: 'a PipePoller', poller: new PipePoller() },
];
afterAll(() => {
  for (const mode of MODES) mode.poller?.close();
});

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Polls `condition` every 20 ms for up to `ms` (generous: a loaded machine is slow). */
async function waitFor(condition: () => boolean, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) return false;
    await delay(20);
  }
  return true;
}

describe.each(MODES)('spawnProcess, output read by $name', ({ poller }) => {
  afterEach(() => {
    // Every pipe of a finished run is closed, none is left on the timer.
    if (poller !== undefined) expect(poller.size).toBe(0);
  });

  function bash(script: string, extra: Partial<SpawnOptions> = {}): SpawnOptions {
    return {
      command: 'bash',
      args: ['-c', script],
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      ...(poller === undefined ? {} : { poller }),
      ...extra,
    };
  }

  it('reports the exit code and the lines of both streams', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const res = await spawnProcess(
      bash('echo one; echo two >&2; printf three; exit 7', {
        onStdoutLine: (l) => out.push(l),
        onStderrLine: (l) => err.push(l),
      }),
    );
    expect(res).toMatchObject({
      exit: { code: 7, signal: null },
      reason: 'exited',
      spawnError: null,
    });
    expect(res.pid).toBeGreaterThan(0);
    expect(out).toEqual(['one', 'three']);
    expect(err).toEqual(['two']);
  });

  it('runs in its own process group', async () => {
    const lines: string[] = [];
    const res = await spawnProcess(
      bash('ps -o pgid= -p $$', { onStdoutLine: (l) => lines.push(l) }),
    );
    expect(Number(lines[0]?.trim())).toBe(res.pid);
    expect(res.pid).not.toBe(process.pid);
  });

  it('passes exactly the given environment and cwd', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const lines: string[] = [];
    await spawnProcess(
      bash('echo "$ONLY_THIS" "$HOME" "$PWD"', {
        cwd: dir,
        env: { ONLY_THIS: 'yes', PATH: process.env.PATH ?? '' },
        onStdoutLine: (l) => lines.push(l),
      }),
    );
    expect(lines).toEqual([`yes  ${dir}`]);
  });

  it('timeout: SIGTERM to the whole group, grandchildren included', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const pidFile = path.join(dir, 'pid');
    const started = Date.now();
    const res = await spawnProcess(
      bash(`sleep 30 & echo $! > ${pidFile}; sleep 30`, { timeoutMs: 200, graceMs: 2000 }),
    );
    expect(res.reason).toBe('timeout');
    expect(res.exit).toEqual({ code: null, signal: 'SIGTERM' });
    // Done when the group is gone, well before the grace period ends.
    expect(Date.now() - started).toBeLessThan(200 + 1500);
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    expect(await waitGone(grandchild)).toBe(true);
    expect(await isGone(res.pid!)).toBe(true);
  });

  it('a group that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const pidFile = path.join(dir, 'pid');
    const started = Date.now();
    const res = await spawnProcess(
      bash(`trap '' TERM; sleep 30 & echo $! > ${pidFile}; sleep 30`, {
        timeoutMs: 200,
        graceMs: 500,
      }),
    );
    const elapsed = Date.now() - started;
    expect(res.reason).toBe('timeout');
    expect(res.exit.signal).toBe('SIGKILL');
    expect(elapsed).toBeGreaterThanOrEqual(200 + 500 - 20);
    expect(elapsed).toBeLessThan(200 + 500 + 1500);
    expect(await waitGone(Number(await readFile(pidFile, 'utf8')))).toBe(true);
  });

  it('abort stops the group the same way; an already aborted signal starts nothing', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 150);
    const res = await spawnProcess(bash('sleep 30', { signal: controller.signal, graceMs: 1000 }));
    expect(res.reason).toBe('aborted');
    expect(res.exit.signal).toBe('SIGTERM');

    const none = await spawnProcess(bash('sleep 30', { signal: controller.signal }));
    expect(none).toMatchObject({ reason: 'aborted', pid: null });
  });

  it('a backgrounded child holding stdout does not keep a finished process open', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const pidFile = path.join(dir, 'pid');
    const started = Date.now();
    const res = await spawnProcess(
      bash(`sleep 30 & echo $! > ${pidFile}; echo bye`, { graceMs: 1000 }),
    );
    expect(res).toMatchObject({ reason: 'exited', exit: { code: 0, signal: null } });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await waitGone(Number(await readFile(pidFile, 'utf8')))).toBe(true);
  });

  it('a binary that does not exist resolves with spawnError', async () => {
    const res = await spawnProcess({
      command: 'fleet-no-such-binary',
      args: [],
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '' },
      ...(poller === undefined ? {} : { poller }),
    });
    expect(res.spawnError?.message).toContain('ENOENT');
    expect(res.pid).toBeNull();
  });

  it('splits a long stdout line and reassembles partial writes', async () => {
    const lines: string[] = [];
    await spawnProcess(
      bash("head -c 300000 /dev/zero | tr '\\0' b; printf 'x'; sleep 0.1; printf 'y\\n'", {
        maxLineChars: 100000,
        onStdoutLine: (l) => lines.push(l),
      }),
    );
    expect(lines.map((l) => l.length)).toEqual([100000, 100000, 100000, 2]);
    expect(lines[3]).toBe('xy');
  });

  it('an abort right after the start, before the agent pid is known, still stops it', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const marker = path.join(dir, 'started');
    const controller = new AbortController();
    const started = Date.now();
    const pending = spawnProcess(
      bash(`touch ${marker}; sleep 30`, { signal: controller.signal, graceMs: 1000 }),
    );
    controller.abort();
    const res = await pending;
    if (poller === undefined) {
      // The spawn is synchronous: the process exists and is stopped.
      expect(res).toMatchObject({ reason: 'aborted', exit: { code: null, signal: 'SIGTERM' } });
      expect(res.pid).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(await waitGone(res.pid!)).toBe(true);
    } else {
      // The abort came while the FIFOs were being made: nothing is started at all.
      expect(res).toMatchObject({
        reason: 'aborted',
        exit: { code: null, signal: null },
        spawnError: null,
        pid: null,
      });
      await delay(500);
      await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });

  it('an agent whose guard is killed is stopped too', async () => {
    // The guard's watcher is the agent's only child when it starts (the guard exec'd it).
    const children = async (pid: string) =>
      (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(' ');
    const res = await spawnProcess(
      bash('echo "$$"; sleep 30', {
        graceMs: 1000,
        onStdoutLine: (line) =>
          void children(line).then(([watcher]) => process.kill(Number(watcher), 'SIGKILL')),
      }),
    );
    expect(res.reason).toBe('exited');
    expect(res.exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(await waitGone(res.pid!)).toBe(true);
  });

  it('reads stdout and stderr through the pipes of its mode', async () => {
    const lines: string[] = [];
    const res = await spawnProcess(
      bash('readlink /proc/$$/fd/1; readlink /proc/$$/fd/2', {
        onStdoutLine: (l) => lines.push(l),
      }),
    );
    expect(res.exit.code).toBe(0);
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      if (poller === undefined) expect(line).toMatch(/^socket:\[\d+\]$/);
      else expect(line).toMatch(/\/fleet-fifo-[^/]+\/p\d+ \(deleted\)$/);
    }
  });

  it('leaves no descriptor open after runs that exit, time out, or fail to start', async () => {
    // The first runs open descriptors that stay for the process's life (libuv's signal pipe).
    await spawnProcess(bash('echo warm'));
    const baseline = openFds();
    const lines: string[] = [];
    await Promise.all([
      spawnProcess(bash('echo one; echo two >&2', { onStdoutLine: (l) => lines.push(l) })),
      spawnProcess(bash("head -c 1000000 /dev/zero | tr '\\0' z")),
      spawnProcess(bash('sleep 30', { timeoutMs: 100, graceMs: 1000 })),
      spawnProcess(bash('echo x', { cwd: '/fleet-no-such-dir' })),
    ]);
    const aborted = new AbortController();
    const pending = spawnProcess(bash('sleep 30', { signal: aborted.signal }));
    aborted.abort();
    await pending;
    expect(lines).toEqual(['one']);
    expect(await waitFor(() => openFds() === baseline)).toBe(true);
  });
});

describe('spawnProcess with a PipePoller that cannot make FIFOs', () => {
  const broken = new PipePoller({ mkfifo: '/nonexistent/mkfifo' });
  afterAll(() => broken.close());

  it('falls back to ordinary pipes and reports the lines', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const res = await spawnProcess({
      command: 'bash',
      args: ['-c', 'echo one; echo two >&2; readlink /proc/$$/fd/1; exit 3'],
      cwd: process.cwd(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      poller: broken,
      onStdoutLine: (l) => out.push(l),
      onStderrLine: (l) => err.push(l),
    });
    expect(res).toMatchObject({ exit: { code: 3, signal: null }, reason: 'exited' });
    expect(res.pid).toBeGreaterThan(0);
    expect(out[0]).toBe('one');
    expect(out[1]).toMatch(/^socket:\[\d+\]$/);
    expect(err).toEqual(['two']);
  });
});
