import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventInput } from '../../src/core/index.js';
import type { AgentState, Engine } from '../../src/engines/engine.js';
import { engineFor } from '../../src/engines/registry.js';
import { git } from '../../src/factory/git.js';
import { LEASE_LOST, runJob, type RunJobInput } from '../../src/factory/run-job.js';
import { cleanup, fakeSessionEngine, head, makeRepo, show, tempDir, waitGone } from './fixtures.js';

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

type JobOverrides = Partial<RunJobInput['job']>;

function input(
  repo: string,
  workRoot: string,
  job: JobOverrides,
  extra: Partial<RunJobInput> = {},
): RunJobInput & { events: EventInput[]; states: AgentState[] } {
  const events: EventInput[] = [];
  const states: AgentState[] = [];
  return {
    job: {
      id: 'j_test1',
      key: null,
      bodyMd: 'true',
      verify: [],
      timeoutMs: null,
      checkpoint: null,
      cwd: repo,
      ...job,
    },
    engine: engineFor('shell'),
    workRoot,
    env: {
      FLEET_URL: 'http://127.0.0.1:1',
      FLEET_JOB_ID: 'j_test1',
      FLEET_TOKEN: 't0k',
      FLEET_PORT: '4100',
    },
    graceMs: 1000,
    onEvent: (e) => events.push(e),
    onState: (s) => states.push(s),
    events,
    states,
    ...extra,
  };
}

const ofType = (events: EventInput[], type: string) => events.filter((e) => e.type === type);
const logLines = (events: EventInput[], stream = 'stdout') =>
  ofType(events, 'log')
    .filter((e) => e.data?.stream === stream)
    .map((e) => String(e.data?.line));

describe('runJob with the shell engine and a real git repository', () => {
  it('success: commits the result on fleet/<key>, removes the worktree, counts the diff', async () => {
    const { repo, workRoot } = await setup();
    const base = await head(repo);
    const run = input(repo, workRoot, {
      key: 'feat/add thing',
      bodyMd: "printf 'a\\nb\\nc\\n' > new.txt && echo four >> README.md && echo done",
      verify: ['test -f new.txt', 'grep -q four README.md'],
    });
    const out = await runJob(run);

    expect(out.result).toBe('success');
    expect(out.exit).toEqual({ code: 0, signal: null });
    expect(out.branch).toBe('fleet/feat/add-thing');
    expect(out.commit).toBe(await head(repo, 'fleet/feat/add-thing'));
    expect(await head(repo)).toBe(base); // the user's checkout is untouched
    expect(await show(repo, 'fleet/feat/add-thing:new.txt')).toBe('a\nb\nc\n');
    expect((await git(repo, ['log', '-1', '--format=%an <%ae>', out.commit!])).trim()).toBe(
      'Fleet <fleet@localhost>',
    );
    expect(existsSync(out.worktree)).toBe(false);
    expect(await git(repo, ['worktree', 'list'])).not.toContain(out.worktree);
    expect(out.insights).toMatchObject({ filesChanged: 2, linesAdded: 4, linesDeleted: 0 });
    expect(out.verifyResult?.passed).toBe(true);
    expect(out.verifyResult?.commands.map((c) => c.exit)).toEqual([0, 0]);
    expect(out.checkpoint).toBeNull();
    expect(out.sessionId).toBeNull();
    expect(logLines(run.events)).toContain('done');
    expect(ofType(run.events, 'workspace')[0]?.data).toMatchObject({
      inPlace: false,
      branch: 'fleet/feat/add-thing',
      base,
    });
    expect(run.states[0]).toBe('starting');
    expect(run.states).toContain('exited');
  });

  it('verify failure: gate_failed with the output tail, a checkpoint commit, the worktree kept', async () => {
    const { repo, workRoot } = await setup();
    const base = await head(repo);
    const run = input(repo, workRoot, {
      key: 'gate',
      bodyMd: 'echo work > work.txt',
      verify: ['true', 'echo checking; echo "bad thing happened" >&2; exit 2', 'touch never-run'],
    });
    const out = await runJob(run);

    expect(out.result).toBe('gate_failed');
    expect(out.verifyResult?.passed).toBe(false);
    expect(out.verifyResult?.commands).toHaveLength(2); // stops at the first failure
    const failed = out.verifyResult!.commands[1]!;
    expect(failed.exit).toBe(2);
    expect(failed.outputTail).toContain('checking');
    expect(failed.outputTail).toContain('bad thing happened');
    expect(failed.durationMs).toBeGreaterThanOrEqual(0);
    // The shell engine has no session: no fix loop.
    expect(ofType(run.events, 'fix_skipped')).toHaveLength(1);
    expect(out.checkpoint).toEqual({
      wipBranch: 'fleet/gate',
      wipBase: base,
      wipCommit: await head(repo, 'fleet/gate'),
    });
    expect(await show(repo, `${out.checkpoint!.wipCommit}:work.txt`)).toBe('work\n');
    expect(out.commit).toBeNull();
    expect(existsSync(path.join(out.worktree, 'work.txt'))).toBe(true);
    // Kept on a detached HEAD, so the branch is free for the retry.
    expect((await git(out.worktree, ['branch', '--show-current'])).trim()).toBe('');
    expect(out.insights).toMatchObject({ filesChanged: 1, linesAdded: 1 });
  });

  it('agent exit 1: agent_failed with a checkpoint; no verify', async () => {
    const { repo, workRoot } = await setup();
    const run = input(repo, workRoot, {
      bodyMd: 'echo partial > partial.txt; exit 1',
      verify: ['touch verified'],
    });
    const out = await runJob(run);
    expect(out.result).toBe('agent_failed');
    expect(out.exit).toEqual({ code: 1, signal: null });
    expect(out.verifyResult).toBeNull();
    expect(out.branch).toBe('fleet/j_test1');
    expect(out.checkpoint?.wipCommit).toBe(await head(repo, 'fleet/j_test1'));
    expect(existsSync(path.join(out.worktree, 'verified'))).toBe(false);
  });

  it('agent failure without changes: no checkpoint', async () => {
    const { repo, workRoot } = await setup();
    const out = await runJob(input(repo, workRoot, { bodyMd: 'exit 3' }));
    expect(out.result).toBe('agent_failed');
    expect(out.exit?.code).toBe(3);
    expect(out.checkpoint).toBeNull();
    expect(existsSync(out.worktree)).toBe(true);
  });

  it('timeout: the process group (grandchild too) is gone within the grace period', async () => {
    const { repo, workRoot } = await setup();
    const pidFile = path.join(workRoot, 'grandchild.pid');
    const run = input(repo, workRoot, {
      bodyMd: `echo wip > wip.txt; sleep 30 & echo $! > ${pidFile}; sleep 30`,
      timeoutMs: 300,
    });
    const started = Date.now();
    const out = await runJob(run);
    const elapsed = Date.now() - started;

    expect(out.result).toBe('timeout');
    expect(out.exit?.signal).toBe('SIGTERM');
    expect(elapsed).toBeLessThan(300 + 1000 + 1500);
    const grandchild = Number((await readFile(pidFile, 'utf8')).trim());
    expect(grandchild).toBeGreaterThan(0);
    expect(await waitGone(grandchild)).toBe(true);
    expect(out.checkpoint).not.toBeNull();
    expect(await show(repo, `${out.checkpoint!.wipCommit}:wip.txt`)).toBe('wip\n');
  });

  it('abort: cancelled, the process stopped, work checkpointed; lease_lost when that is the reason', async () => {
    const { repo, workRoot } = await setup();
    const controller = new AbortController();
    const run = input(
      repo,
      workRoot,
      { bodyMd: 'echo wip > wip.txt; echo started; sleep 30' },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const out = await runJob(run);
    expect(out.result).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(out.checkpoint).not.toBeNull();

    const lost = new AbortController();
    const run2 = input(repo, workRoot, { bodyMd: 'sleep 30' }, { signal: lost.signal });
    setTimeout(() => lost.abort(LEASE_LOST), 200);
    expect((await runJob(run2)).result).toBe('lease_lost');
  });

  it('resume: a retry starts from the checkpoint and keeps the first base', async () => {
    const { repo, workRoot } = await setup();
    const base = await head(repo);
    const first = await runJob(
      input(repo, workRoot, { key: 'resume', bodyMd: 'echo step1 > wip.txt; exit 1' }),
    );
    expect(first.result).toBe('agent_failed');
    expect(first.checkpoint).not.toBeNull();

    const second = await runJob(
      input(repo, workRoot, {
        key: 'resume',
        checkpoint: first.checkpoint,
        bodyMd: 'test -f wip.txt && echo step2 >> wip.txt',
        verify: ['grep -q step1 wip.txt'],
      }),
    );
    expect(second.result).toBe('success');
    expect(await show(repo, 'fleet/resume:wip.txt')).toBe('step1\nstep2\n');
    expect(await head(repo, 'fleet/resume^')).toBe(first.checkpoint!.wipCommit);
    // This run's own diff: one line added to the WIP file.
    expect(second.insights).toMatchObject({ filesChanged: 1, linesAdded: 1 });
    expect(existsSync(first.worktree)).toBe(true); // the failed one is kept

    // A failing resumed run records the original base, not the previous WIP commit.
    const third = await runJob(
      input(repo, workRoot, {
        key: 'resume',
        checkpoint: { ...first.checkpoint!, wipCommit: second.commit! },
        bodyMd: 'echo step3 >> wip.txt; exit 1',
      }),
    );
    expect(third.checkpoint?.wipBase).toBe(base);
  });

  it('a cwd outside git runs in place and says so', async () => {
    const dir = await tempDir('fleet-plain-');
    const workRoot = await tempDir('fleet-work-');
    dirs.push(dir, workRoot);
    const run = input(dir, workRoot, {
      bodyMd: 'echo hi > out.txt; pwd',
      verify: ['test -f out.txt'],
    });
    const out = await runJob(run);
    expect(out.result).toBe('success');
    expect(out.worktree).toBe(dir);
    expect(out.commit).toBeNull();
    expect(out.branch).toBeNull();
    expect(await readFile(path.join(dir, 'out.txt'), 'utf8')).toBe('hi\n');
    const ws = ofType(run.events, 'workspace')[0];
    expect(ws?.data).toMatchObject({ inPlace: true, path: dir });
    expect(String(ws?.data?.reason)).toContain('not a git repository');
  });

  it('runs in the same subdirectory of the worktree when cwd is inside the repository', async () => {
    const { repo, workRoot } = await setup();
    const sub = path.join(repo, 'pkg');
    await mkdir(sub);
    await writeFile(path.join(sub, 'index.txt'), 'x\n');
    await git(repo, ['add', '-A']);
    await git(repo, ['commit', '--quiet', '-m', 'pkg']);
    const out = await runJob(
      input(sub, workRoot, { bodyMd: 'test -f index.txt && echo y > y.txt' }),
    );
    expect(out.result).toBe('success');
    expect(await show(repo, `${out.commit}:pkg/y.txt`)).toBe('y\n');
  });

  it('setup runs first in the worktree; a failing setup is crashed and the agent never runs', async () => {
    const { repo, workRoot } = await setup();
    const ok = input(repo, workRoot, {
      setup: 'echo ready > .setup-done',
      bodyMd: 'test -f .setup-done && echo ran > ran.txt',
    });
    const good = await runJob(ok);
    expect(good.result).toBe('success');
    expect(ofType(ok.events, 'setup')[0]?.data).toMatchObject({ ok: true, exit: 0 });

    const bad = input(repo, workRoot, {
      key: 'bad-setup',
      setup: 'echo "npm ci failed" >&2; exit 4',
      bodyMd: 'echo ran > ran.txt',
    });
    const out = await runJob(bad);
    expect(out.result).toBe('crashed');
    expect(out.exit).toEqual({ code: 4, signal: null });
    expect(out.checkpoint).toBeNull();
    expect(existsSync(path.join(out.worktree, 'ran.txt'))).toBe(false);
    const event = ofType(bad.events, 'setup')[0];
    expect(event?.data).toMatchObject({ ok: false, exit: 4 });
    expect(String(event?.data?.outputTail)).toContain('npm ci failed');
  });

  it('passes the environment through: Fleet variables, the job env, the factory env', async () => {
    const { repo, workRoot } = await setup();
    process.env.FLEET_TEST_FACTORY_VAR = 'from-factory';
    try {
      const run = input(repo, workRoot, {
        key: 'env',
        env: { MY_VAR: 'from-job', FLEET_JOB_ID: 'spoofed' },
        bodyMd:
          'echo "$FLEET_JOB_ID $FLEET_PORT $FLEET_TOKEN $FLEET_URL $MY_VAR $FLEET_TEST_FACTORY_VAR" > env.txt',
        verify: ['test "$FLEET_JOB_ID" = j_test1'],
      });
      const out = await runJob(run);
      expect(out.result).toBe('success');
      expect(await show(repo, 'fleet/env:env.txt')).toBe(
        'j_test1 4100 t0k http://127.0.0.1:1 from-job from-factory\n',
      );
    } finally {
      delete process.env.FLEET_TEST_FACTORY_VAR;
    }
  });

  it('handles long lines, partial lines and stderr', async () => {
    const { repo, workRoot } = await setup();
    const run = input(
      repo,
      workRoot,
      {
        bodyMd:
          "head -c 200000 /dev/zero | tr '\\0' a; echo; printf abc; sleep 0.2; printf 'def\\n'; echo oops >&2; printf tail",
      },
      { maxLineChars: 65536 },
    );
    const out = await runJob(run);
    expect(out.result).toBe('success');
    const lines = logLines(run.events);
    expect(lines.slice(0, 4).map((l) => l.length)).toEqual([65536, 65536, 65536, 3392]);
    expect(lines.slice(0, 4).join('')).toBe('a'.repeat(200000));
    expect(lines.slice(4)).toEqual(['abcdef', 'tail']);
    expect(logLines(run.events, 'stderr')).toEqual(['oops']);
  });

  it('the timeout covers setup too; a throwing listener does not stop the run', async () => {
    const { repo, workRoot } = await setup();
    const slow = await runJob(
      input(repo, workRoot, { setup: 'sleep 30', bodyMd: 'touch ran', timeoutMs: 300 }),
    );
    expect(slow.result).toBe('timeout');
    expect(existsSync(path.join(slow.worktree, 'ran'))).toBe(false);

    const run = input(
      repo,
      workRoot,
      { key: 'throwing', bodyMd: 'echo a; echo b > b.txt' },
      {
        onEvent: () => {
          throw new Error('listener broke');
        },
        onState: () => {
          throw new Error('listener broke');
        },
      },
    );
    const out = await runJob(run);
    expect(out.result).toBe('success');
    expect(await show(repo, 'fleet/throwing:b.txt')).toBe('b\n');
  });

  it('a repository with no commit to branch from: crashed, with an error event', async () => {
    const repo = await tempDir('fleet-empty-');
    const workRoot = await tempDir('fleet-work-');
    dirs.push(repo, workRoot);
    await git(repo, ['init', '--quiet']);
    const run = input(repo, workRoot, { bodyMd: 'touch ran' });
    const out = await runJob(run);
    expect(out.result).toBe('crashed');
    expect(out.worktree).toBe(repo);
    expect(existsSync(path.join(repo, 'ran'))).toBe(false);
    expect(String(ofType(run.events, 'error')[0]?.data?.message)).toContain(
      'could not prepare the workspace',
    );
  });

  it('an engine binary that does not exist: crashed, with an error event', async () => {
    const { repo, workRoot } = await setup();
    const missing: Engine = {
      ...engineFor('shell'),
      command: () => ({ command: 'fleet-no-such-binary', args: [], env: {}, stdin: 'ignore' }),
    };
    const run = input(repo, workRoot, {}, { engine: missing });
    const out = await runJob(run);
    expect(out.result).toBe('crashed');
    expect(ofType(run.events, 'error').map((e) => String(e.data?.message))).toEqual([
      expect.stringContaining('fleet-no-such-binary'),
    ]);
  });
});

describe('the fix loop', () => {
  const verify = [
    'grep -qx ok status.txt || { echo "status is $(cat status.txt), want ok"; exit 3; }',
  ];

  it('resumes the agent with the failing output, verifies again, succeeds', async () => {
    const { repo, workRoot } = await setup();
    const promptFile = path.join(workRoot, 'fix-prompt.txt');
    const run = input(
      repo,
      workRoot,
      { key: 'fix', verify },
      { engine: fakeSessionEngine(promptFile, 'echo bad > status.txt', { turns: 1 }) },
    );
    const out = await runJob(run);
    expect(out.result).toBe('success');
    expect(out.sessionId).toBe('fake-1');
    const prompt = await readFile(promptFile, 'utf8');
    expect(prompt).toContain('status is bad, want ok');
    expect(prompt).toContain('exit 3');
    expect(ofType(run.events, 'verify').map((e) => e.data?.passed)).toEqual([false, true]);
    expect(ofType(run.events, 'fix_attempt')[0]?.data).toMatchObject({
      attempt: 1,
      sessionId: 'fake-1',
    });
    expect(out.verifyResult?.passed).toBe(true);
    expect(await show(repo, 'fleet/fix:status.txt')).toBe('ok\n');
    expect(out.insights).toMatchObject({ turns: 1, filesChanged: 1 });
  });

  it('with fixAttempts 0: gate_failed, the agent is not resumed', async () => {
    const { repo, workRoot } = await setup();
    const promptFile = path.join(workRoot, 'fix-prompt.txt');
    const run = input(
      repo,
      workRoot,
      { key: 'nofix', verify, fixAttempts: 0 },
      { engine: fakeSessionEngine(promptFile, 'echo bad > status.txt', { turns: 1 }) },
    );
    const out = await runJob(run);
    expect(out.result).toBe('gate_failed');
    expect(existsSync(promptFile)).toBe(false);
    expect(ofType(run.events, 'fix_attempt')).toHaveLength(0);
    expect(out.checkpoint).not.toBeNull();
    expect(await show(repo, `${out.checkpoint!.wipCommit}:status.txt`)).toBe('bad\n');
  });
});
