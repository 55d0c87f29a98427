import { existsSync } from 'node:fs';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { EventInput, Job } from '../../src/core/index.js';
import { engineFor } from '../../src/engines/registry.js';
import { startFactory } from '../../src/factory/daemon.js';
import { parseGate, runGate, type GateSpec } from '../../src/factory/gate.js';
import { git } from '../../src/factory/git.js';
import { runJob, type RunJobInput } from '../../src/factory/run-job.js';
import { listen } from '../client/helpers.js';
import { STORES } from '../helpers/stores.js';
import { cleanup, head, makeRepo, tempDir } from './fixtures.js';

async function setup(): Promise<{ repo: string; workRoot: string }> {
  const repo = await makeRepo();
  const workRoot = await tempDir('fleet-work-');
  onTestFinished(() => cleanup(repo, workRoot));
  return { repo, workRoot };
}

function input(
  cwd: string,
  workRoot: string,
  job: Partial<RunJobInput['job']>,
): RunJobInput & { events: EventInput[] } {
  const events: EventInput[] = [];
  return {
    job: {
      id: 'j_gate1',
      key: null,
      bodyMd: '',
      verify: [],
      timeoutMs: null,
      checkpoint: null,
      cwd,
      ...job,
    },
    engine: engineFor('shell'),
    workRoot,
    env: { FLEET_URL: 'http://127.0.0.1:1', FLEET_JOB_ID: 'j_gate1' },
    graceMs: 500,
    onEvent: (e) => events.push(e),
    events,
  };
}

/** Runs a shell job to success: its result is committed on fleet/<key>. */
async function deliver(repo: string, workRoot: string, key: string, body: string, base?: string) {
  const out = await runJob(input(repo, workRoot, { id: `j_${key}`, key, bodyMd: body, base }));
  expect(out.result).toBe('success');
  return out;
}

const check = (name: string, run: string, required = true) => ({ name, run, required });
const ofType = (events: EventInput[], type: string) => events.filter((e) => e.type === type);
const files = async (repo: string, ref: string) =>
  (await git(repo, ['ls-tree', '--name-only', ref])).split('\n').filter(Boolean);

describe('a job base branch', () => {
  it('starts the worktree from manifest.base instead of HEAD', async () => {
    const { repo, workRoot } = await setup();
    await deliver(repo, workRoot, 'p/a', 'echo a > a.txt');
    const out = await deliver(repo, workRoot, 'p/b', 'echo b > b.txt', 'fleet/p/a');
    expect(await files(repo, 'fleet/p/b')).toEqual(['README.md', 'a.txt', 'b.txt']);
    expect(await head(repo, 'fleet/p/b~1')).toBe(await head(repo, 'fleet/p/a'));
    expect(out.commit).toBe(await head(repo, 'fleet/p/b'));
    // The repository's own checkout did not move.
    expect(await files(repo, 'HEAD')).toEqual(['README.md']);
  });

  it('fails, not retryable, naming the branch and the repository when the base is missing', async () => {
    const { repo, workRoot } = await setup();
    const run = input(repo, workRoot, { key: 'p/c', bodyMd: 'echo never > x', base: 'fleet/nope' });
    const out = await runJob(run);
    expect(out.result).toBe('crashed');
    expect(out.retryable).toBe(false);
    expect(out.error).toContain(`base branch fleet/nope does not exist in ${repo}`);
    expect(ofType(run.events, 'error')[0]?.data?.message).toContain('fleet/nope');
  });
});

describe('runGate with real git repositories and real check processes', () => {
  it('PASS: merges the phase branches on the gate branch, runs every check, removes the worktree', async () => {
    const { repo, workRoot } = await setup();
    await deliver(repo, workRoot, 'p/a', 'echo a > a.txt');
    await deliver(repo, workRoot, 'p/b', 'echo b > b.txt');
    const gate: GateSpec = {
      phase: 'build',
      merge: ['p/a', 'p/b'],
      checks: [check('has a', 'test -f a.txt && echo A ok'), check('has b', 'cat b.txt')],
    };
    const run = input(repo, workRoot, { key: 'p/build/gate' });
    const out = await runGate(run, gate);

    expect(out.result).toBe('success');
    const commit = await head(repo, 'fleet/p/build/gate');
    expect(out).toMatchObject({ commit, branch: 'fleet/p/build/gate' });
    expect(out.output).toEqual({
      gate: {
        phase: 'build',
        decision: 'PASS',
        branch: 'fleet/p/build/gate',
        commit,
        checks: [
          { name: 'has a', required: true, exit: 0, passed: true },
          { name: 'has b', required: true, exit: 0, passed: true },
        ],
      },
    });
    expect(await files(repo, 'fleet/p/build/gate')).toEqual(['README.md', 'a.txt', 'b.txt']);
    // Two merge commits and nothing else on top of main.
    const log = await git(repo, [
      'log',
      '--format=%P|%s',
      'main..fleet/p/build/gate',
      '--first-parent',
    ]);
    const lines = log.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l.split('|')[0]!.split(' ')).toHaveLength(2);
    expect(lines[0]).toContain('merge fleet/p/b');
    expect(out.verifyResult?.passed).toBe(true);
    expect(out.verifyResult?.commands.map((c) => c.outputTail)).toEqual(['A ok\n', 'b\n']);
    expect(existsSync(out.worktree)).toBe(false);
    expect(out.insights).toMatchObject({ filesChanged: 2, linesAdded: 2 });

    expect(ofType(run.events, 'merge').map((e) => e.data)).toMatchObject([
      { key: 'p/a', branch: 'fleet/p/a', ok: true },
      { key: 'p/b', branch: 'fleet/p/b', ok: true },
    ]);
    expect(ofType(run.events, 'verify_started').map((e) => e.data?.check)).toEqual([
      'has a',
      'has b',
    ]);
    expect(ofType(run.events, 'verify')[0]?.data).toMatchObject({
      check: 'has a',
      passed: true,
      commands: [{ command: 'test -f a.txt && echo A ok', exit: 0, outputTail: 'A ok\n' }],
    });
    expect(ofType(run.events, 'gate')).toEqual([
      {
        type: 'gate',
        data: {
          phase: 'build',
          decision: 'PASS',
          checks: (out.output!.gate as { checks: unknown }).checks,
        },
      },
    ]);
  });

  it('a later phase starts from the previous gate branch as its base', async () => {
    const { repo, workRoot } = await setup();
    await deliver(repo, workRoot, 'p/a', 'echo a > a.txt');
    const first = await runGate(input(repo, workRoot, { key: 'p/one/gate' }), {
      phase: 'one',
      merge: ['p/a'],
      checks: [],
    });
    expect(first.output?.gate).toMatchObject({ decision: 'PASS', checks: [] });
    expect(first.verifyResult).toEqual({ passed: true, commands: [] });
    await deliver(repo, workRoot, 'p/c', 'test -f a.txt && echo c > c.txt', 'fleet/p/one/gate');
    const second = await runGate(
      input(repo, workRoot, { key: 'p/two/gate', base: 'fleet/p/one/gate' }),
      { phase: 'two', merge: ['p/c'], checks: [check('both', 'test -f a.txt && test -f c.txt')] },
    );
    expect(second.output?.gate).toMatchObject({ decision: 'PASS' });
    expect(await files(repo, 'fleet/p/two/gate')).toEqual(['README.md', 'a.txt', 'c.txt']);
  });

  it('CONDITIONAL: only a required:false check failed; the run still succeeds', async () => {
    const { repo, workRoot } = await setup();
    await deliver(repo, workRoot, 'p/a', 'echo a > a.txt');
    const out = await runGate(input(repo, workRoot, { key: 'p/gate' }), {
      phase: 'build',
      merge: ['p/a'],
      checks: [check('lint', 'echo "2 warnings"; exit 3', false), check('test', 'test -f a.txt')],
    });
    expect(out.result).toBe('success');
    expect(out.output?.gate).toMatchObject({
      decision: 'CONDITIONAL',
      checks: [
        { name: 'lint', required: false, exit: 3, passed: false },
        { name: 'test', required: true, exit: 0, passed: true },
      ],
    });
    expect(out.verifyResult?.passed).toBe(false);
    expect(out.verifyResult?.commands[0]?.outputTail).toBe('2 warnings\n');
    expect(out.commit).toBe(await head(repo, 'fleet/p/gate'));
    expect(existsSync(out.worktree)).toBe(false);
  });

  it('FAIL: a required check failed; every check ran, the worktree is kept, not retryable', async () => {
    const { repo, workRoot } = await setup();
    await deliver(repo, workRoot, 'p/a', 'echo a > a.txt');
    const run = input(repo, workRoot, { key: 'p/gate' });
    const out = await runGate(run, {
      phase: 'build',
      merge: ['p/a'],
      checks: [
        check('test', 'echo "expected 2, got 3" >&2; exit 1'),
        check('later', 'echo still ran'),
        check('types', 'exit 2'),
      ],
    });
    expect(out.result).toBe('gate_failed');
    expect(out.retryable).toBe(false);
    expect(out.error).toBe(
      'gate build: FAIL: required checks failed: "test" (exit 1), "types" (exit 2)',
    );
    expect(out.output?.gate).toMatchObject({
      decision: 'FAIL',
      branch: 'fleet/p/gate',
      commit: await head(repo, 'fleet/p/gate'),
    });
    expect(out.verifyResult?.commands.map((c) => [c.exit, c.outputTail])).toEqual([
      [1, 'expected 2, got 3\n'],
      [0, 'still ran\n'],
      [2, ''],
    ]);
    // Kept for inspection on a detached HEAD (the branch is free), with the merged files.
    expect(existsSync(`${out.worktree}/a.txt`)).toBe(true);
    expect((await git(out.worktree, ['rev-parse', '--abbrev-ref', 'HEAD'])).trim()).toBe('HEAD');
    expect(ofType(run.events, 'worktree_kept')).toHaveLength(1);
    expect(ofType(run.events, 'gate')[0]?.data).toMatchObject({ decision: 'FAIL' });
  });

  it('FAIL on a merge conflict: names the file, aborts the merge, runs no check', async () => {
    const { repo, workRoot } = await setup();
    await deliver(repo, workRoot, 'p/a', 'echo from-a > README.md && echo a > a.txt');
    await deliver(repo, workRoot, 'p/b', 'echo from-b > README.md');
    const run = input(repo, workRoot, { key: 'p/gate' });
    const out = await runGate(run, {
      phase: 'build',
      merge: ['p/a', 'p/b'],
      checks: [check('never', 'touch ran.txt')],
    });
    expect(out.result).toBe('gate_failed');
    expect(out.retryable).toBe(false);
    expect(out.error).toBe(
      'gate build: FAIL: merging fleet/p/b conflicts in README.md (merge aborted)',
    );
    expect(out.output?.gate).toMatchObject({
      decision: 'FAIL',
      checks: [],
      conflict: { branch: 'fleet/p/b', files: ['README.md'] },
    });
    expect(ofType(run.events, 'merge').map((e) => e.data?.ok)).toEqual([true, false]);
    expect(ofType(run.events, 'verify_started')).toHaveLength(0);
    // The kept worktree holds the first merge, clean, with no merge in progress.
    expect(existsSync(`${out.worktree}/ran.txt`)).toBe(false);
    expect(existsSync(`${out.worktree}/a.txt`)).toBe(true);
    expect(await git(out.worktree, ['status', '--porcelain'])).toBe('');
  });

  it('FAIL when a branch to merge does not exist', async () => {
    const { repo, workRoot } = await setup();
    const out = await runGate(input(repo, workRoot, { key: 'p/gate' }), {
      phase: 'build',
      merge: ['p/missing'],
      checks: [],
    });
    expect(out.result).toBe('gate_failed');
    expect(out.error).toMatch(/branch fleet\/p\/missing does not exist/);
  });

  it('runs the checks in place, with no merge, when the cwd is not a git repository', async () => {
    const dir = await tempDir('fleet-plain-');
    const workRoot = await tempDir('fleet-work-');
    onTestFinished(() => cleanup(dir, workRoot));
    const run = input(dir, workRoot, { key: 'p/gate' });
    const out = await runGate(run, {
      phase: 'build',
      merge: ['p/a'],
      checks: [check('write', 'echo here > here.txt && pwd')],
    });
    expect(out.result).toBe('success');
    expect(out.output?.gate).toMatchObject({ decision: 'PASS', branch: null, commit: null });
    expect(existsSync(`${dir}/here.txt`)).toBe(true);
    expect(ofType(run.events, 'workspace')[0]?.data).toMatchObject({
      inPlace: true,
      reason: `${dir} is not a git repository; the gate runs its checks in place, without merging p/a`,
    });
    expect(ofType(run.events, 'merge')).toHaveLength(0);
  });

  it('the job timeout bounds the gate: a hanging check is stopped and no decision is made', async () => {
    const { repo, workRoot } = await setup();
    const began = Date.now();
    const out = await runGate(input(repo, workRoot, { key: 'p/gate', timeoutMs: 400 }), {
      phase: 'build',
      merge: [],
      checks: [check('hang', 'sleep 30')],
    });
    expect(Date.now() - began).toBeLessThan(5_000);
    expect(out.result).toBe('timeout');
    expect(out.error).toBe('the gate timed out while running check "hang"');
    expect(out.output).toBeUndefined();
  });

  it('fails, not retryable, when its base branch is missing', async () => {
    const { repo, workRoot } = await setup();
    const out = await runGate(input(repo, workRoot, { key: 'p/gate', base: 'fleet/p/x/gate' }), {
      phase: 'build',
      merge: [],
      checks: [],
    });
    expect(out.result).toBe('crashed');
    expect(out.retryable).toBe(false);
    expect(out.error).toContain(`base branch fleet/p/x/gate does not exist in ${repo}`);
  });
});

describe('parseGate', () => {
  it('reads a gate manifest', () => {
    const gate = { phase: 'build', checks: [check('t', 'npm test', false)], merge: ['a', 'b'] };
    expect(parseGate(gate)).toEqual(gate);
  });

  it.each([
    [null, 'manifest.gate must be an object {phase, checks, merge} (got null)'],
    [{ checks: [], merge: [] }, 'manifest.gate.phase must be a non-empty string (got nothing)'],
    [
      { phase: 'p', checks: 'npm test', merge: [] },
      'manifest.gate.checks must be a list of {name, run, required} (got "npm test")',
    ],
    [
      {
        phase: 'p',
        checks: [check('a', 'true'), { name: 'b', run: 'true', required: 'yes' }],
        merge: [],
      },
      'manifest.gate.checks[1].required must be true or false (got "yes")',
    ],
    [
      { phase: 'p', checks: [{ name: 'a', required: true }], merge: [] },
      'manifest.gate.checks[0].run must be a non-empty string (got nothing)',
    ],
    [
      { phase: 'p', checks: [], merge: ['a', 7] },
      'manifest.gate.merge[1] must be a non-empty string (got number 7)',
    ],
    [{ phase: 'p', checks: [] }, 'manifest.gate.merge must be a list of job keys (got nothing)'],
  ])('names the bad field: %j', (value, message) => {
    expect(() => parseGate(value)).toThrow(message);
  });
});

describe('a gate job through the factory daemon', () => {
  const sqlite = STORES.find((k) => k.name === 'sqlite')!;

  async function daemon() {
    const server = await listen(sqlite, { store: { clock: () => Date.now() } });
    const operator = server.client(await server.token('operator', ['acme']));
    const workDir = await tempDir('fleet-work-');
    const repo = await makeRepo();
    onTestFinished(() => cleanup(workDir, repo));
    const factory = await startFactory({
      server: server.baseUrl,
      token: await server.token('factory', ['acme']),
      name: 'gate-factory',
      seats: 2,
      capabilities: [],
      workDir,
      logger: pino({ level: 'silent' }),
      pollMs: 100,
      graceMs: 500,
    });
    onTestFinished(() => factory.stop());
    const job = async (id: string): Promise<Job> => (await server.store.getJob('acme', id))!;
    const submit = async (specs: Record<string, unknown>[]): Promise<string[]> => {
      const { jobs } = await operator.submitJobs(
        specs.map(
          (s) =>
            ({
              engine: 'shell',
              bodyMd: '',
              ...s,
              manifest: { cwd: repo, ...(s.manifest as object) },
            }) as never,
        ),
      );
      return jobs.map((j) => j.job.id);
    };
    const settled = async (id: string): Promise<Job> => {
      const end = Date.now() + 20_000;
      for (;;) {
        const j = await job(id);
        if (['succeeded', 'failed', 'cancelled'].includes(j.stage)) return j;
        if (Date.now() > end) throw new Error(`job ${id} still ${j.stage}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    return { server, repo, submit, settled };
  }

  it('PASS: the gate job succeeds with output.gate and the merged gate branch', async () => {
    const f = await daemon();
    const ids = await f.submit([
      { key: 'q/a', bodyMd: 'echo a > a.txt' },
      { key: 'q/b', bodyMd: 'echo b > b.txt' },
      {
        key: 'q/gate',
        deps: ['q/a', 'q/b'],
        bodyMd: 'gate of phase q',
        manifest: {
          gate: { phase: 'q', merge: ['q/a', 'q/b'], checks: [check('both', 'cat a.txt b.txt')] },
        },
      },
    ]);
    const gateId = ids[2]!;
    expect((await f.settled(gateId)).stage).toBe('succeeded');
    const [run] = await f.server.store.listRuns('acme', gateId);
    const commit = await head(f.repo, 'fleet/q/gate');
    expect(run).toMatchObject({
      result: 'success',
      output: { commit, branch: 'fleet/q/gate', gate: { decision: 'PASS', commit } },
      verifyResult: {
        passed: true,
        commands: [{ command: 'cat a.txt b.txt', outputTail: 'a\nb\n' }],
      },
    });
    expect(await files(f.repo, 'fleet/q/gate')).toEqual(['README.md', 'a.txt', 'b.txt']);
    const events = await f.server.store.readEvents('acme', gateId, { limit: 1000 });
    expect(events.find((e) => e.type === 'gate')?.data).toMatchObject({ decision: 'PASS' });
  });

  it('FAIL: the gate job fails once (not retried) with result gate_failed and output.gate', async () => {
    const f = await daemon();
    const [a, gateId] = await f.submit([
      { key: 'r/a', bodyMd: 'echo a > a.txt' },
      {
        key: 'r/gate',
        deps: ['r/a'],
        maxAttempts: 3,
        manifest: { gate: { phase: 'r', merge: ['r/a'], checks: [check('nope', 'exit 4')] } },
      },
    ]);
    expect((await f.settled(a!)).stage).toBe('succeeded');
    const job = await f.settled(gateId!);
    expect(job.stage).toBe('failed');
    expect(job.lastError).toBe('gate r: FAIL: required check failed: "nope" (exit 4)');
    const runs = await f.server.store.listRuns('acme', gateId!);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      result: 'gate_failed',
      output: { gate: { decision: 'FAIL', checks: [{ name: 'nope', exit: 4, passed: false }] } },
    });
  });

  it("manifest.base starts a job from another job's branch; a malformed one fails at once", async () => {
    const f = await daemon();
    const [a, b, bad, gone] = await f.submit([
      { key: 't/a', bodyMd: 'echo a > a.txt' },
      { key: 't/b', deps: ['t/a'], bodyMd: 'cat a.txt > b.txt', manifest: { base: 'fleet/t/a' } },
      { key: 't/bad', bodyMd: 'true', manifest: { base: 7 } },
      { key: 't/gone', bodyMd: 'true', maxAttempts: 3, manifest: { base: 'fleet/none' } },
    ]);
    expect((await f.settled(a!)).stage).toBe('succeeded');
    expect((await f.settled(b!)).stage).toBe('succeeded');
    expect(await git(f.repo, ['show', 'fleet/t/b:b.txt'])).toBe('a\n');
    const failed = await f.settled(bad!);
    expect(failed.stage).toBe('failed');
    expect(failed.lastError).toMatch(/manifest\.base must be a branch name \(got 7\)/);
    expect(await f.server.store.listRuns('acme', bad!)).toHaveLength(1);
    // A missing base is not retried either.
    const missing = await f.settled(gone!);
    expect(missing.stage).toBe('failed');
    expect(missing.lastError).toContain(`base branch fleet/none does not exist in ${f.repo}`);
    expect(await f.server.store.listRuns('acme', gone!)).toHaveLength(1);
  });

  it('a malformed gate manifest fails the job at once, naming the field', async () => {
    const f = await daemon();
    const [id] = await f.submit([
      { key: 's/gate', manifest: { gate: { phase: 's', merge: [], checks: [{ name: 'x' }] } } },
    ]);
    const job = await f.settled(id!);
    expect(job.stage).toBe('failed');
    expect(job.lastError).toMatch(/manifest\.gate\.checks\[0\]\.required must be true or false/);
    expect(await f.server.store.listRuns('acme', id!)).toHaveLength(1);
  });
});
