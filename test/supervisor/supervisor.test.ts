import { describe, expect, it, onTestFinished } from 'vitest';
import type { SupervisorEvent } from '../../src/supervisor/events.js';
import { RestartBackoff } from '../../src/supervisor/restart-policy.js';
import { type ChildSpec, ChildStartError, Supervisor } from '../../src/supervisor/supervisor.js';
import { until } from '../helpers/fleet-process.js';

/** A `node -e` child running `script`. */
const node = (name: string, script: string, extra: Partial<ChildSpec> = {}): ChildSpec => ({
  name,
  command: process.execPath,
  args: ['-e', script],
  ...extra,
});

/** Prints "ready", then waits; on SIGTERM says so and exits 0. */
const polite = `
  process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(0); });
  console.log('ready');
  setInterval(() => {}, 1000);
`;

function supervise(options: ConstructorParameters<typeof Supervisor>[0] = {}) {
  const events: SupervisorEvent[] = [];
  const output: string[] = [];
  const supervisor = new Supervisor({
    onEvent: (e) => events.push(e),
    onOutput: (name, stream, line) => output.push(`${name}/${stream}: ${line}`),
    ...options,
  });
  onTestFinished(() => supervisor.kill());
  const timeline = () => events.map((e) => `${e.type} ${e.name}`);
  return { supervisor, events, output, timeline };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('RestartBackoff', () => {
  const policy = { baseMs: 100, maxMs: 800, stableMs: 1_000 };

  it('doubles the delay with each quick crash, up to the cap', () => {
    const backoff = new RestartBackoff(policy, () => 0.999_999);
    const delays = Array.from({ length: 6 }, () => backoff.next(10));
    expect(delays).toEqual([100, 200, 400, 800, 800, 800]);
  });

  it('starts over after the child stayed up for the stable period', () => {
    const backoff = new RestartBackoff(policy, () => 0.999_999);
    expect([backoff.next(10), backoff.next(10), backoff.next(10)]).toEqual([100, 200, 400]);
    expect(backoff.next(1_000)).toBe(100);
    expect(backoff.next(10)).toBe(200);
  });

  it('jitters between half the step and the whole step', () => {
    expect(new RestartBackoff(policy, () => 0).next(0)).toBe(50);
    expect(new RestartBackoff(policy, () => 0.5).next(0)).toBe(75);
  });
});

describe('Supervisor', () => {
  it('starts children in order, each ready first, and stops them in reverse order', async () => {
    const { supervisor, events, output, timeline } = supervise();
    const ready = async (child: { waitForLine(p: RegExp): Promise<unknown> }) => {
      await child.waitForLine(/^ready$/);
    };
    await supervisor.start(node('first', polite, { ready }));
    await supervisor.start(node('second', polite, { ready }));
    expect(output).toEqual(['first/stdout: ready', 'second/stdout: ready']);
    const pids = [supervisor.pid('first')!, supervisor.pid('second')!];
    expect(pids.every(alive)).toBe(true);

    await supervisor.stop();
    expect(timeline()).toEqual([
      'started first',
      'started second',
      'stopping second',
      'stopped second',
      'stopping first',
      'stopped first',
    ]);
    expect(events.filter((e) => e.type === 'stopped').map((e) => e.exit)).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
    expect(output).toContain('second/stdout: got SIGTERM');
    expect(pids.some(alive)).toBe(false);
    expect(supervisor.pid('first')).toBeNull();
  });

  it('restarts a crashing child with growing delays and never sooner than it said', async () => {
    const { supervisor, events } = supervise({
      restart: { baseMs: 100, maxMs: 400, stableMs: 60_000 },
      random: () => 0.999_999,
    });
    await supervisor.start(node('crasher', 'setTimeout(() => process.exit(3), 20)'));
    await until(() => events.filter((e) => e.type === 'exited').length >= 5, 10_000);
    await supervisor.stop();

    const exits = events.flatMap((e) => (e.type === 'exited' ? [e] : []));
    expect(exits.slice(0, 5).map((e) => e.restartInMs)).toEqual([100, 200, 400, 400, 400]);
    expect(exits[0]!.exit).toEqual({ code: 3, signal: null });
    // Each restart comes after the delay announced with the exit before it.
    const starts = events.flatMap((e) => (e.type === 'started' ? [e] : []));
    expect(starts[0]!.restart).toBe(false);
    expect(starts.slice(1).every((s) => s.restart)).toBe(true);
    expect(new Set(starts.map((s) => s.pid)).size).toBe(starts.length);
  });

  it('waits at least the announced delay between a crash and the restart', async () => {
    const stamps: { type: string; at: number; delay?: number }[] = [];
    const supervisor = new Supervisor({
      restart: { baseMs: 300, maxMs: 300, stableMs: 60_000 },
      random: () => 0.999_999,
      onEvent: (e) =>
        stamps.push({
          type: e.type,
          at: Date.now(),
          ...(e.type === 'exited' ? { delay: e.restartInMs } : {}),
        }),
    });
    onTestFinished(() => supervisor.kill());
    await supervisor.start(node('crasher', 'process.exit(1)'));
    await until(() => stamps.filter((s) => s.type === 'started').length >= 3, 10_000);
    await supervisor.stop();
    for (let i = 0; i < stamps.length - 1; i++) {
      const [a, b] = [stamps[i]!, stamps[i + 1]!];
      if (a.type === 'exited' && b.type === 'started')
        expect(b.at - a.at).toBeGreaterThanOrEqual(a.delay! - 5);
    }
  });

  it('goes back to the first delay after a child stayed up for the stable period', async () => {
    const { supervisor, events } = supervise({
      restart: { baseMs: 100, maxMs: 1_000, stableMs: 200 },
      random: () => 0.999_999,
    });
    await supervisor.start(node('steady', 'setTimeout(() => process.exit(1), 400)'));
    await until(() => events.filter((e) => e.type === 'exited').length >= 3, 10_000);
    await supervisor.stop();
    const delays = events.flatMap((e) => (e.type === 'exited' ? [e.restartInMs] : []));
    expect(delays.slice(0, 3)).toEqual([100, 100, 100]);
  });

  it('SIGKILLs a child that ignores SIGTERM once its grace period is over', async () => {
    const { supervisor, timeline, events } = supervise();
    const stubborn = `
      process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
      console.log('ready');
      setInterval(() => {}, 1000);
    `;
    await supervisor.start(
      node('stubborn', stubborn, {
        stopGraceMs: 300,
        ready: async (child) => void (await child.waitForLine(/^ready$/, 'stdout')),
      }),
    );
    const begun = Date.now();
    await supervisor.stop();
    expect(Date.now() - begun).toBeGreaterThanOrEqual(290);
    expect(timeline()).toEqual([
      'started stubborn',
      'stopping stubborn',
      'killing stubborn',
      'stopped stubborn',
    ]);
    expect(events.at(-1)).toMatchObject({ exit: { code: null, signal: 'SIGKILL' } });
  });

  it('fails start with the child’s last lines when it exits before it is ready', async () => {
    const { supervisor, timeline } = supervise();
    const failing = node('broken', `console.error('error: port taken'); process.exit(2)`, {
      ready: async (child) => void (await child.waitForLine(/^ready$/)),
    });
    const failure = await supervisor.start(failing).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ChildStartError);
    expect(failure).toMatchObject({
      child: 'broken',
      exit: { code: 2, signal: null },
      output: ['error: port taken'],
    });
    await new Promise((r) => setTimeout(r, 300));
    // Not restarted: a child that never came up is the caller's to report.
    expect(timeline()).toEqual(['started broken']);
  });

  it('stops a child that is not ready in time', async () => {
    const { supervisor, timeline } = supervise();
    const silent = node('silent', polite, {
      readyTimeoutMs: 200,
      ready: async (child) => void (await child.waitForLine(/^never$/)),
    });
    const failure = await supervisor.start(silent).catch((err: unknown) => err);
    expect(failure).toMatchObject({
      child: 'silent',
      exit: null,
      output: ['ready', 'got SIGTERM'],
    });
    expect((failure as Error).message).toBe('silent did not become ready: not ready after 200 ms');
    expect(timeline()).toEqual(['started silent', 'stopping silent', 'stopped silent']);
  });

  it('kill() SIGKILLs every child at once and nothing restarts', async () => {
    const { supervisor, events } = supervise({ restart: { baseMs: 50, maxMs: 50, stableMs: 1 } });
    await supervisor.start(node('a', polite));
    await supervisor.start(node('b', polite));
    const pids = [supervisor.pid('a')!, supervisor.pid('b')!];
    await supervisor.kill();
    expect(pids.some(alive)).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(events.filter((e) => e.type === 'started')).toHaveLength(2);
  });
});
