import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import type { EventInput } from '../../src/core/index.js';
import type { AgentState } from '../../src/engines/engine.js';
import { engineFor } from '../../src/engines/registry.js';
import { startFactory } from '../../src/factory/daemon.js';
import { runJob, type RunJobInput } from '../../src/factory/run-job.js';
import {
  DEFAULT_MAX_RESTARTS,
  DEFAULT_NUDGE,
  DEFAULT_STALL_AFTER_MS,
  parseStall,
  RESTART_MESSAGE,
  Watchdog,
  type StallConfig,
  type WatchdogClock,
} from '../../src/factory/watchdog.js';
import { cleanup, factoryTestbed, fakeSessionEngine, makeRepo, show, tempDir } from './fixtures.js';

/** A clock whose time moves only when the test says so. */
function fakeClock(): WatchdogClock & { advance(ms: number): void; pending(): number } {
  let now = 1_000_000;
  let nextId = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = nextId++;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (h) => {
      timers.delete(h as number);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let due: [number, { at: number; fn: () => void }] | undefined;
        for (const entry of timers)
          if (entry[1].at <= end && (due === undefined || entry[1].at < due[1].at)) due = entry;
        if (due === undefined) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
    pending: () => timers.size,
  };
}

describe('Watchdog', () => {
  function dog(ms = 1000) {
    const clock = fakeClock();
    const stalls: number[] = [];
    const w = new Watchdog({ stalledAfterMs: ms, onStall: (s) => stalls.push(s), clock });
    return { clock, stalls, w };
  }

  it('fires once after the silence, not before', () => {
    const { clock, stalls, w } = dog();
    w.start();
    clock.advance(999);
    expect(stalls).toEqual([]);
    clock.advance(1);
    expect(stalls).toEqual([1000]);
    expect(w.stalled).toBe(true);
    clock.advance(10_000);
    expect(stalls).toEqual([1000]);
  });

  it('touches postpone the stall; a touch after a stall starts a new silence', () => {
    const { clock, stalls, w } = dog();
    w.start();
    for (let i = 0; i < 20; i++) {
      clock.advance(500);
      w.touch();
    }
    expect(stalls).toEqual([]);
    clock.advance(1000);
    expect(stalls).toEqual([1000]);
    w.touch();
    expect(w.stalled).toBe(false);
    clock.advance(400);
    w.touch();
    clock.advance(999);
    expect(stalls).toEqual([1000]);
    clock.advance(1);
    expect(stalls).toEqual([1000, 1000]);
  });

  it('keeps one timer however many touches', () => {
    const { clock, w } = dog();
    w.start();
    for (let i = 0; i < 100; i++) w.touch();
    expect(clock.pending()).toBe(1);
  });

  it('stop: never fires afterwards, clears its timer; touch before start does nothing', () => {
    const { clock, stalls, w } = dog();
    w.touch();
    expect(clock.pending()).toBe(0);
    w.start();
    clock.advance(500);
    w.stop();
    expect(clock.pending()).toBe(0);
    clock.advance(5000);
    w.touch();
    w.start();
    clock.advance(5000);
    expect(stalls).toEqual([]);
  });

  it('rejects a non-positive silence', () => {
    expect(() => new Watchdog({ stalledAfterMs: 0, onStall: () => undefined })).toThrow();
  });
});

describe('parseStall', () => {
  it('is null without a stall object; defaults otherwise', () => {
    expect(parseStall(undefined)).toBeNull();
    expect(parseStall('fail')).toBeNull();
    expect(parseStall({})).toEqual({
      afterMs: DEFAULT_STALL_AFTER_MS,
      policy: 'fail',
      nudge: DEFAULT_NUDGE,
      maxRestarts: DEFAULT_MAX_RESTARTS,
    });
    expect(DEFAULT_STALL_AFTER_MS).toBe(600_000);
  });

  it('reads valid fields and ignores invalid ones', () => {
    expect(
      parseStall({ afterMs: 5000, policy: 'nudge', nudge: 'Status?', maxRestarts: 0 }),
    ).toEqual({ afterMs: 5000, policy: 'nudge', nudge: 'Status?', maxRestarts: 0 });
    expect(parseStall({ afterMs: -1, policy: 'explode', nudge: 3, maxRestarts: 1.5 })).toEqual({
      afterMs: DEFAULT_STALL_AFTER_MS,
      policy: 'fail',
      nudge: DEFAULT_NUDGE,
      maxRestarts: DEFAULT_MAX_RESTARTS,
    });
  });
});

// ---- Runs with real processes ------------------------------------------------------------

const dirs: string[] = [];
afterEach(async () => {
  await cleanup(...dirs.splice(0));
});

async function setup(): Promise<{ repo: string; workRoot: string }> {
  const repo = await makeRepo();
  const workRoot = await tempDir('fleet-work-');
  dirs.push(repo, workRoot);
  return { repo, workRoot };
}

function stall(s: Partial<StallConfig>): StallConfig {
  return { afterMs: 300, policy: 'fail', nudge: 'Nudge!', maxRestarts: 2, ...s };
}

function input(
  repo: string,
  workRoot: string,
  job: Partial<RunJobInput['job']>,
  extra: Partial<RunJobInput> = {},
): RunJobInput & { events: EventInput[]; states: AgentState[] } {
  const events: EventInput[] = [];
  const states: AgentState[] = [];
  return {
    job: {
      id: 'j_stall',
      key: null,
      bodyMd: 'true',
      verify: [],
      timeoutMs: 20_000,
      checkpoint: null,
      cwd: repo,
      ...job,
    },
    engine: engineFor('shell'),
    workRoot,
    env: { FLEET_URL: 'http://127.0.0.1:1', FLEET_JOB_ID: 'j_stall' },
    graceMs: 1000,
    onEvent: (e) => events.push(e),
    onState: (s) => states.push(s),
    events,
    states,
    ...extra,
  };
}

const ofType = (events: EventInput[], type: string) => events.filter((e) => e.type === type);

describe('runJob with a stall policy', () => {
  it('fail: a silent agent is stopped; agent_failed with a stalled event and a checkpoint', async () => {
    const { repo, workRoot } = await setup();
    const run = input(repo, workRoot, {
      key: 'stall-fail',
      bodyMd: 'echo started; echo wip > wip.txt; sleep 30',
      stall: stall({ policy: 'fail' }),
    });
    const started = Date.now();
    const out = await runJob(run);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(out.result).toBe('agent_failed');
    expect(out.error).toMatch(/^stalled: no output for \d+\.\ds$/);
    const stalled = ofType(run.events, 'stalled');
    expect(stalled).toHaveLength(1);
    expect(stalled[0]!.data).toMatchObject({ policy: 'fail', action: 'fail' });
    expect(stalled[0]!.data!.silentMs as number).toBeGreaterThanOrEqual(300);
    expect(out.checkpoint).not.toBeNull();
    expect(await show(repo, `${out.checkpoint!.wipCommit}:wip.txt`)).toBe('wip\n');
    expect(run.states.at(-1)).toBe('exited');
  });

  it('restart with a session engine: resumed once with the restart message, then succeeds', async () => {
    const { repo, workRoot } = await setup();
    const promptFile = path.join(workRoot, 'prompt.txt');
    const run = input(
      repo,
      workRoot,
      {
        key: 'stall-restart',
        verify: ['grep -qx ok status.txt'],
        stall: stall({ policy: 'restart' }),
      },
      { engine: fakeSessionEngine(promptFile, 'echo wip > status.txt; sleep 30') },
    );
    const out = await runJob(run);
    expect(out.result).toBe('success');
    expect(await readFile(promptFile, 'utf8')).toBe(RESTART_MESSAGE);
    const stalled = ofType(run.events, 'stalled');
    expect(stalled).toHaveLength(1);
    expect(stalled[0]!.data).toMatchObject({ policy: 'restart', action: 'resume', restart: 1 });
    expect(ofType(run.events, 'agent_exit')).toHaveLength(2);
    expect(await show(repo, 'fleet/stall-restart:status.txt')).toBe('ok\n');
  });

  it('nudge with a session engine: resumed with the job nudge message', async () => {
    const { repo, workRoot } = await setup();
    const promptFile = path.join(workRoot, 'prompt.txt');
    const run = input(
      repo,
      workRoot,
      { key: 'stall-nudge', stall: stall({ policy: 'nudge', nudge: 'Are you there?' }) },
      { engine: fakeSessionEngine(promptFile, 'echo wip > status.txt; sleep 30') },
    );
    const out = await runJob(run);
    expect(out.result).toBe('success');
    expect(await readFile(promptFile, 'utf8')).toBe('Are you there?');
    expect(ofType(run.events, 'stalled')[0]!.data).toMatchObject({
      policy: 'nudge',
      action: 'resume',
    });
  });

  it('restart without a session (shell): the same command runs again in the same worktree', async () => {
    const { repo, workRoot } = await setup();
    const counter = path.join(workRoot, 'count');
    const body = [
      `n=$(cat ${counter} 2>/dev/null || echo 0); echo $((n+1)) > ${counter}`,
      'echo "run $n" >> runs.txt',
      'if [ "$n" -eq 0 ]; then sleep 30; fi',
      'echo done',
    ].join('\n');
    const run = input(repo, workRoot, {
      key: 'stall-shell',
      bodyMd: body,
      stall: stall({ policy: 'nudge' }),
    });
    const out = await runJob(run);
    expect(out.result).toBe('success');
    expect(ofType(run.events, 'stalled')[0]!.data).toMatchObject({
      policy: 'nudge',
      action: 'restart',
    });
    // The second run saw the first one's work.
    expect(await show(repo, 'fleet/stall-shell:runs.txt')).toBe('run 0\nrun 1\n');
  });

  it('restarts are bounded: the stall after the last restart fails the run', async () => {
    const { repo, workRoot } = await setup();
    const run = input(repo, workRoot, {
      key: 'stall-bounded',
      bodyMd: 'echo hi; sleep 30',
      stall: stall({ policy: 'restart', maxRestarts: 1 }),
    });
    const out = await runJob(run);
    expect(out.result).toBe('agent_failed');
    expect(out.error).toMatch(/^stalled/);
    expect(ofType(run.events, 'stalled').map((e) => e.data?.action)).toEqual(['restart', 'fail']);
    expect(ofType(run.events, 'agent_exit')).toHaveLength(2);
  });

  it('output that keeps coming never stalls', async () => {
    const { repo, workRoot } = await setup();
    const run = input(repo, workRoot, {
      bodyMd: 'for i in $(seq 1 12); do echo tick $i; sleep 0.1; done; echo x >&2',
      stall: stall({ policy: 'fail' }),
    });
    const out = await runJob(run);
    expect(out.result).toBe('success');
    expect(out.error).toBeUndefined();
    expect(ofType(run.events, 'stalled')).toHaveLength(0);
  });

  it('a cancel during a stall-supervised run is still a cancel', async () => {
    const { repo, workRoot } = await setup();
    const controller = new AbortController();
    const run = input(
      repo,
      workRoot,
      { bodyMd: 'echo hi; sleep 30', stall: stall({ afterMs: 10_000 }) },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 300);
    const out = await runJob(run);
    expect(out.result).toBe('cancelled');
    expect(ofType(run.events, 'stalled')).toHaveLength(0);
    expect(existsSync(out.worktree)).toBe(true);
  });
});

describe('the daemon with a stall policy', () => {
  it('reads manifest.stall, shows the run as stalled, reports the stall as the error', async () => {
    const { server, token, operator, workDir, repo } = await factoryTestbed();
    const factory = await startFactory({
      server: server.baseUrl,
      token,
      name: 'stall-factory',
      seats: 1,
      capabilities: [],
      workDir,
      logger: pino({ level: 'silent' }),
      pollMs: 200,
      reconnect: { minDelayMs: 50, maxDelayMs: 200 },
      graceMs: 500,
    });
    onTestFinished(() => factory.stop());
    // The script lingers after SIGTERM (until SIGKILL), so the snapshot can see `stalled`.
    const body = "trap 'sleep 5' TERM; echo wip > wip.txt; echo started; sleep 30 & wait";
    const { jobs } = await operator.submitJobs([
      {
        engine: 'shell',
        bodyMd: body,
        key: 'st1',
        maxAttempts: 1,
        manifest: { cwd: repo, stall: { afterMs: 300, policy: 'fail' } },
      } as never,
    ]);
    const id = jobs[0]!.job.id;
    const states = new Set<string>();
    const end = Date.now() + 15_000;
    for (;;) {
      const job = await server.store.getJob('acme', id);
      if (job && ['succeeded', 'failed', 'cancelled'].includes(job.stage)) break;
      if (Date.now() > end) throw new Error('timed out waiting');
      for (const r of factory.snapshot().runs) states.add(r.state);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(states.has('stalled')).toBe(true);
    const job = (await server.store.getJob('acme', id))!;
    expect(job.stage).toBe('failed');
    expect(job.lastError).toMatch(/^stalled: no output for/);
    const [run] = await server.store.listRuns('acme', id);
    expect(run).toMatchObject({ result: 'agent_failed' });
    const events = await server.store.readEvents('acme', id, { limit: 1000 });
    expect(events.find((e) => e.type === 'stalled')?.data).toMatchObject({
      policy: 'fail',
      action: 'fail',
    });
    expect(await show(repo, 'fleet/st1:wip.txt')).toBe('wip\n');
  });
});
