import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job, PlanDetail } from '../../src/core/index.js';
import { openStore } from '../../src/store/open-store.js';
import { launchFleet, root, until } from '../helpers/fleet-process.js';

/**
 * Plans end to end: the real `fleet` CLI in child processes, each scenario on its own temporary
 * data directory. `fleet run` brings its own server and factory; the `fleet submit` scenarios
 * share one `fleet serve` + `fleet factory` pair.
 */

const git = promisify(execFile);
const PLANS = join(root, 'test/fixtures/plans');
const QUICKSTART = join(root, 'examples/quickstart');

interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A fresh data directory, removed when the test file ends. */
const dirs: string[] = [];
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-plans-e2e-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs `fleet <args>` (no FLEET_* variable of the host) to its end. */
async function fleet(args: string[]): Promise<Done> {
  const child = launchFleet(args);
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

/** Every job stored in a data directory, read from its SQLite database. */
async function storedJobs(dir: string): Promise<Job[]> {
  const store = await openStore({ dataDir: dir });
  try {
    return (await store.listJobs('default', { limit: 1000 })).items;
  } finally {
    await store.close();
  }
}

const byKey = (jobs: Job[], key: string): Job => {
  const job = jobs.find((j) => j.key === key);
  if (job === undefined)
    throw new Error(`no job ${key} among ${jobs.map((j) => j.key).join(', ')}`);
  return job;
};

/** The plan id a waiting `fleet run` shows in its approve hint. */
async function waitingPlan(run: ReturnType<typeof launchFleet>): Promise<string> {
  await until(
    () => /waiting for approval.*fleet approve \S+/.test(run.stdout()),
    20_000,
    () => `stdout:\n${run.stdout()}\nstderr:\n${run.stderr()}`,
  );
  return /waiting for approval.*fleet approve (\S+)/.exec(run.stdout())![1]!;
}

describe('fleet run: a plan on a local, embedded Fleet', () => {
  it('runs the quick start to the end: summary, reports, the merged result branch', async () => {
    const dir = dataDir();
    const run = await fleet(['run', QUICKSTART, '--data-dir', dir]);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/5 jobs: 5 succeeded/);
    expect(run.stdout).toContain('plan quickstart: succeeded');
    expect(run.stdout).toMatch(/phase 1\/2 build: passed \(gate PASS\)/);
    expect(readdirSync(join(dir, 'reports')).sort()).toEqual([
      'phase-1-build.md',
      'phase-2-document.md',
    ]);
    expect(readFileSync(join(dir, 'reports', 'phase-1-build.md'), 'utf8')).toMatch(
      /^# Plan quickstart · phase 1\/2: build\n\n\*\*Decision: PASS\*\*/,
    );
    const workspace = /^workspace (\S+)/m.exec(run.stdout)![1]!;
    const branch = /^result {2}branch (\S+)/m.exec(run.stdout)![1]!;
    expect(branch).toBe('fleet/quickstart/document.gate');
    const { stdout: readme } = await git('git', ['show', `${branch}:README.md`], {
      cwd: workspace,
    });
    expect(readme).toContain('## Messages');
    expect(readme).toContain('Hello from Fleet');
  });

  it('a failing required gate check fails the plan and cancels the later phase', async () => {
    const dir = dataDir();
    const run = await fleet(['run', join(PLANS, 'gate-fail'), '--data-dir', dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/plan gatefail failed: phase build failed: .*shipped\.txt is there/);
    expect(run.stdout).toMatch(/phase 2\/2 ship: cancelled \(gate_failed\)/);
    const jobs = await storedJobs(dir);
    expect(byKey(jobs, 'gatefail')).toMatchObject({ stage: 'failed', stageReason: 'gate_failed' });
    expect(byKey(jobs, 'gatefail/build/make').stage).toBe('succeeded');
    expect(byKey(jobs, 'gatefail/build.gate')).toMatchObject({
      stage: 'failed',
      stageReason: 'gate_failed',
    });
    for (const key of ['gatefail/ship/ship', 'gatefail/ship.gate'])
      expect(byKey(jobs, key)).toMatchObject({ stage: 'cancelled', stageReason: 'gate_failed' });
    expect(readdirSync(join(dir, 'reports'))).toEqual(['phase-1-build.md']);
    const report = readFileSync(join(dir, 'reports', 'phase-1-build.md'), 'utf8');
    expect(report).toMatch(/^# Plan gatefail · phase 1\/2: build$/m);
    expect(report).toMatch(/\*\*Decision: FAIL\*\*/);
    expect(report).toMatch(/^### ✗ shipped\.txt is there: `test -f shipped\.txt`$/m);
  });

  it('a CONDITIONAL gate goes on with --approve', async () => {
    const dir = dataDir();
    const run = await fleet(['run', join(PLANS, 'conditional'), '--data-dir', dir, '--approve']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('plan conditional: succeeded');
    expect(run.stdout).toMatch(/phase 1\/2 draft: passed \(gate CONDITIONAL\)/);
  });

  it('a CONDITIONAL gate waits until `fleet approve` from another process', async () => {
    const dir = dataDir();
    const run = launchFleet(['run', join(PLANS, 'conditional'), '--data-dir', dir]);
    const id = await waitingPlan(run);
    expect(run.stdout()).toMatch(/draft: waiting for approval \(gate CONDITIONAL\)/);
    // The later phase has not started.
    expect(byKey(await storedJobs(dir), 'conditional/publish/publish')).toMatchObject({
      stage: 'blocked',
      approvedAt: null,
    });
    const approve = await fleet(['approve', id, '--data-dir', dir]);
    expect(approve.stderr).toBe('');
    expect(approve.code).toBe(0);
    expect(approve.stdout).toMatch(/plan conditional: approved/);
    expect(approve.stdout).toMatch(/phase 2\/2 publish: running/);
    expect(await run.exited).toBe(0);
    expect(run.stdout()).toContain('plan conditional: succeeded');
  });

  it('`fleet reject` stops the plan: exit 1, the later phase cancelled as rejected', async () => {
    const dir = dataDir();
    const run = launchFleet(['run', join(PLANS, 'conditional'), '--data-dir', dir]);
    const id = await waitingPlan(run);
    const reject = await fleet(['reject', id, '--data-dir', dir]);
    expect(reject.code).toBe(0);
    expect(reject.stdout).toMatch(/plan conditional: rejected/);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toMatch(/plan conditional failed: phase draft was rejected/);
    const jobs = await storedJobs(dir);
    expect(byKey(jobs, 'conditional')).toMatchObject({ stage: 'failed', stageReason: 'rejected' });
    expect(byKey(jobs, 'conditional/draft.gate').stage).toBe('succeeded');
    for (const key of ['conditional/publish/publish', 'conditional/publish.gate'])
      expect(byKey(jobs, key)).toMatchObject({ stage: 'cancelled', stageReason: 'rejected' });
  });

  it('`approval: required` waits after a passing gate, then goes on when approved', async () => {
    const dir = dataDir();
    const run = launchFleet(['run', join(PLANS, 'approval'), '--data-dir', dir]);
    const id = await waitingPlan(run);
    expect(run.stdout()).toMatch(/design: waiting for approval \(gate PASS\)/);
    const before = await storedJobs(dir);
    expect(byKey(before, 'approval/build/build')).toMatchObject({
      stage: 'blocked',
      approvedAt: null,
    });
    const approve = await fleet(['approve', id, '--data-dir', dir]);
    expect(approve.code).toBe(0);
    expect(await run.exited).toBe(0);
    expect(run.stdout()).toContain('plan approval: succeeded');
  });

  it('a malformed job file names file:line and field, and starts nothing', async () => {
    const dir = join(dataDir(), 'data');
    const run = await fleet(['run', join(PLANS, 'bad-job'), '--data-dir', dir]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(
      "test/fixtures/plans/bad-job/jobs/slow.md:3: timeout: expected a duration like 90s or 4h, got 'soon'",
    );
    expect(run.stdout).toBe('');
    expect(existsSync(dir)).toBe(false);
  });

  it('an unknown --engine is refused before anything starts', async () => {
    const dir = join(dataDir(), 'data');
    const run = await fleet([
      'run',
      join(PLANS, 'conditional'),
      '--engine',
      'bogus',
      '--data-dir',
      dir,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/--engine: no engine is named "bogus"; known engines: .*shell/);
    expect(existsSync(dir)).toBe(false);
  });
});

/** A long-lived `fleet …` child for the whole describe block. */
function spawnFleet(args: string[]): { child: ChildProcess; stdout: () => string } {
  const env: Record<string, string | undefined> = { ...process.env, FLEET_DEBUG: '' };
  for (const name of Object.keys(env)) if (name.startsWith('FLEET_')) delete env[name];
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args],
    {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.resume();
  return { child, stdout: () => out };
}

describe('fleet submit, plan ls|show, cancel against fleet serve + fleet factory', () => {
  const dir = dataDir();
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    const serve = spawnFleet(['serve', '--data-dir', dir, '--port', '0']);
    children.push(serve.child);
    await until(() => /^listening on /m.test(serve.stdout()), 20_000);
    const factory = spawnFleet([
      'factory',
      '--data-dir',
      dir,
      '--name',
      'plans-e2e',
      '--seats',
      '2',
      '--poll-ms',
      '200',
    ]);
    children.push(factory.child);
    await until(() => /^factory plans-e2e connected/m.test(factory.stdout()), 20_000);
  });

  afterAll(async () => {
    for (const child of children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      await exited;
    }
  });

  const cli = (args: string[]) => fleet([...args, '--data-dir', dir]);
  const showPlan = async (id: string): Promise<PlanDetail> => {
    const shown = await cli(['plan', 'show', id, '--json']);
    expect(shown.stderr).toBe('');
    return JSON.parse(shown.stdout) as PlanDetail;
  };

  it('a batch with one bad job file is refused whole: nothing is stored', async () => {
    const submit = await cli(['submit', join(PLANS, 'batch/good.md'), join(PLANS, 'batch/bad.md')]);
    expect(submit.code).not.toBe(0);
    expect(submit.stderr).toMatch(/batch\/bad\.md:4: priority: /);
    const ls = await cli(['ls', '--json']);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout)).toEqual([]);
  });

  it('submit --wait follows a plan to its end; plan ls and plan show see it', async () => {
    const submit = await cli(['submit', QUICKSTART, '--wait']);
    expect(submit.stderr).toBe('');
    expect(submit.code).toBe(0);
    expect(submit.stdout).toMatch(/^submitted plan quickstart \(\S+\): 2 phases, 5 jobs/m);
    expect(submit.stdout).toContain('plan quickstart: succeeded');
    const id = /^submitted plan quickstart \((\S+)\)/m.exec(submit.stdout)![1]!;

    const ls = await cli(['plan', 'ls', '--json']);
    const plans = JSON.parse(ls.stdout) as PlanDetail[];
    expect(plans.map((p) => [p.plan.id, p.state.name, p.plan.stage])).toContainEqual([
      id,
      'quickstart',
      'succeeded',
    ]);

    const show = await cli(['plan', 'show', id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/plan quickstart \S+: succeeded/);
    expect(show.stdout).toMatch(/phase 1\/2 build: passed \(gate PASS\)/);
    expect(show.stdout).toMatch(/phase 2\/2 document: passed \(gate PASS\)/);
    expect(show.stdout).toMatch(/quickstart\/build\/greeting {2}succeeded/);
    expect(show.stdout).toContain(`fleet plan show ${id} --report build`);

    const report = await cli(['plan', 'show', id, '--report', 'build']);
    expect(report.code).toBe(0);
    expect(report.stdout).toMatch(/^#/);
    expect(report.stdout).toContain('quickstart/build/greeting');
    expect(report.stdout).toContain('PASS');

    const approve = await cli(['approve', id]);
    expect(approve.code).toBe(1);
    expect(approve.stderr).toContain(
      `error: cannot approve plan quickstart: the plan has finished — fleet plan show ${id} shows its phases`,
    );

    const missing = await cli(['plan', 'show', id, '--report', 'deploy']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(
      'plan quickstart has no phase deploy; its phases: build, document',
    );
  });

  it('cancelling a running plan cancels it and every job of it', async () => {
    const submit = await cli(['submit', join(PLANS, 'slow')]);
    expect(submit.code).toBe(0);
    const id = /^submitted plan slow \((\S+)\)/m.exec(submit.stdout)![1]!;
    await until(
      async () =>
        (await showPlan(id)).jobs.find((j) => j.key === 'slow/wait/nap')?.stage === 'running',
      20_000,
    );
    // A plan is never claimed: `fleet ls` shows the phase it is in rather than `queued`.
    const listed = await cli(['ls']);
    expect(listed.stdout).toMatch(
      new RegExp(`^${id}\\s+slow\\s+running \\(phase 1/2 wait\\)\\s+plan\\s+-\\s`, 'm'),
    );
    const cancel = await cli(['cancel', id]);
    expect(cancel.stderr).toBe('');
    expect(cancel.code).toBe(0);
    await until(async () => {
      const detail = await showPlan(id);
      return detail.jobs.every((j) => j.stage === 'cancelled');
    }, 15_000);
    const detail = await showPlan(id);
    expect(detail.plan.stage).toBe('cancelled');
    expect(detail.jobs.map((j) => j.key).sort()).toEqual([
      'slow/after.gate',
      'slow/after/after',
      'slow/wait.gate',
      'slow/wait/nap',
    ]);
    expect(detail.state.phases.map((ph) => ph.status)).toEqual(['cancelled', 'cancelled']);
    const ls = await cli(['plan', 'ls']);
    expect(ls.stdout).toMatch(new RegExp(`^${id} +slow +cancelled +1/2 wait \\(cancelled\\)`, 'm'));
    // The running agent was stopped, not left to finish its sleep.
    const nap = detail.jobs.find((j) => j.key === 'slow/wait/nap')!;
    const shown = await cli(['show', nap.id, '--json']);
    const runs = (JSON.parse(shown.stdout) as { runs: { result: string | null }[] }).runs;
    expect(runs.at(-1)?.result).toBe('cancelled');
  });
});
