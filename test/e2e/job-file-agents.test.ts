import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { estimateCostUsd, type Job, type JobEvent, type Run } from '../../src/core/index.js';
import { claudeCode } from '../../src/engines/claude-code.js';
import { codex } from '../../src/engines/codex.js';
import { pi } from '../../src/engines/pi.js';
import { formatCost, formatTokens } from '../../src/cli/output/format.js';
import { openStore } from '../../src/store/open-store.js';
import { PATH, probeCli } from '../engines/real/cli-harness.js';
import { cleanup, makeRepo, show, tempDir } from '../factory/fixtures.js';
import { launchFleet } from '../helpers/fleet-process.js';
import {
  CONTENT,
  cleanAgentEnv,
  expectInOrder,
  scriptedClaude,
  scriptedCodex,
  scriptedPi,
} from './scripted-agents.js';

/**
 * Issue 4's "done when", literally: a Markdown job file with `engine: claude-code` (then `codex`,
 * `pi`) run by the real `fleet run hello.md` CLI in a child process — its own embedded server and
 * factory — which runs the real agent CLI (the dev dependency) in a worktree of a temporary git
 * repository against a scripted model server on 127.0.0.1. `fleet run` exits 0, its summary shows
 * the job succeeded with tokens and cost, the edit is committed on `fleet/<key>`, and the run
 * stored in `--data-dir` has its result, verify and insights.
 *
 * Everything the agent needs (base URL, key, a temporary HOME / CODEX_HOME / PI_CODING_AGENT_DIR)
 * is in `fleet run`'s environment: its factory passes its environment through to the agents.
 */

/** `fleet run`'s own server keeps its jobs under this tenant. */
const TENANT = 'default';
/** Bounds `fleet run` well inside the test's 60 s, so a hang fails with its output. */
const RUN_MS = 50_000;

const claudeProbe = probeCli(
  claudeCode,
  'Claude Code job-file e2e',
  'dev dependency @anthropic-ai/claude-code and its platform package',
);
const codexProbe = probeCli(
  codex,
  'Codex job-file e2e',
  'dev dependency @openai/codex and its platform package',
  ['CODEX_HOME'],
);
const piProbe = probeCli(pi, 'Pi job-file e2e', 'dev dependency @mariozechner/pi-coding-agent');

interface Setup {
  repo: string;
  /** Holds hello.md. */
  jobs: string;
  dataDir: string;
  home: string;
}

async function setup(): Promise<Setup> {
  const repo = await makeRepo();
  const jobs = await tempDir('fleet-e2e-jobs-');
  const dataDir = await tempDir('fleet-e2e-data-');
  const home = await tempDir('fleet-e2e-home-');
  onTestFinished(() => cleanup(repo, jobs, dataDir, home));
  return { repo, jobs, dataDir, home };
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
  job: Job;
  runs: Run[];
  events: JobEvent[];
  /** Everything to look at when an assertion fails. */
  explain: string;
}

/**
 * Writes `hello.md` (front matter plus a body asking for hello.txt) and runs `fleet run hello.md
 * --data-dir DIR --seats 1` to its end with `env` over a clean environment; then reads the job,
 * its runs and events from the data directory's SQLite file (no server is left once `fleet run`
 * has exited, so nothing else writes to it).
 */
async function runJobFile(
  s: Setup,
  header: { key: string; engine: string; model: string },
  env: Record<string, string>,
): Promise<Finished> {
  const file = join(s.jobs, 'hello.md');
  await writeFile(
    file,
    [
      '---',
      `key: ${header.key}`,
      `engine: ${header.engine}`,
      `cwd: ${JSON.stringify(s.repo)}`,
      'yolo: true',
      `model: ${JSON.stringify(header.model)}`,
      "verify: ['test -f hello.txt']",
      'timeout: 45s',
      '---',
      '',
      'Create hello.txt holding one line: hello from the scripted model.',
      '',
    ].join('\n'),
  );
  const run = launchFleet(
    ['run', file, '--data-dir', s.dataDir, '--seats', '1'],
    { ...cleanAgentEnv(), PATH, NO_COLOR: '1', ...env },
    { inherit: false },
  );
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    run.exited,
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), RUN_MS))),
  ]).finally(() => clearTimeout(timer));
  const log = join(s.dataDir, 'fleet.log');
  const output = async () =>
    [
      `fleet run stdout:\n${run.stdout()}`,
      `stderr:\n${run.stderr()}`,
      `fleet.log (end):\n${existsSync(log) ? (await readFile(log, 'utf8')).slice(-4000) : '(none)'}`,
    ].join('\n');
  if (code === 'timeout') {
    run.child.kill('SIGKILL');
    throw new Error(`fleet run did not end within ${RUN_MS} ms\n${await output()}`);
  }

  const store = await openStore({ dataDir: s.dataDir });
  try {
    const { items } = await store.listJobs(TENANT, { limit: 100 });
    if (items.length !== 1)
      throw new Error(`expected one stored job, found ${items.length}\n${await output()}`);
    const job = items[0]!;
    const runs = await store.listRuns(TENANT, job.id);
    const events = await store.readEvents(TENANT, job.id, { limit: 10_000 });
    const explain = [
      `job: ${JSON.stringify(job)}`,
      `runs: ${JSON.stringify(runs)}`,
      `events:\n${events.map((e) => `${e.type} ${JSON.stringify(e.data)}`).join('\n')}`,
      await output(),
    ].join('\n');
    return { code, stdout: run.stdout(), stderr: run.stderr(), job, runs, events, explain };
  } finally {
    await store.close();
  }
}

/**
 * The job's row of the summary table `fleet run` prints at its end (`JOB RESULT DURATION TOKENS
 * COST`), split into its cells.
 */
function summaryRow(stdout: string, key: string): string[] {
  const table = stdout.slice(stdout.lastIndexOf('\nJOB '));
  const row = table.split('\n').find((l) => l.startsWith(`${key} `));
  if (row === undefined) throw new Error(`no summary row for ${key} in:\n${stdout}`);
  return row.trim().split(/\s+/);
}

/**
 * What every engine's case checks: exit 0 with a clean stderr, one successful run on the job's
 * branch whose verify passed, the events in order, and the summary's row and total line showing
 * the stored tokens and cost. Each case then checks the file on the branch and exact insights.
 */
function expectSucceeded(f: Finished, key: string): Run {
  expect(f.code, f.explain).toBe(0);
  expect(f.stderr).toBe('');
  expect(f.stdout).toMatch(
    /^Running 1 job on a local Fleet \(http:\/\/127\.0\.0\.1:\d+, SQLite in /,
  );
  expect(f.job).toMatchObject({ key, stage: 'succeeded', attempts: 1 });
  expect(f.runs, f.explain).toHaveLength(1);
  const run = f.runs[0]!;
  expect(run.result).toBe('success');
  expect(run.output).toMatchObject({ branch: `fleet/${key}` });
  expect(run.verifyResult).toMatchObject({
    passed: true,
    commands: [{ command: 'test -f hello.txt', exit: 0 }],
  });
  expectInOrder(
    f.events,
    ['session', 'tool_call', 'tool_result', 'result', 'verify', 'commit'],
    f.explain,
  );

  // The summary shows the stored totals: tokens (in + out + cached) and the runs' cost.
  const { tokensIn = 0, tokensOut = 0, tokensCached = 0, costUsd } = run.insights;
  expect(tokensIn).toBeGreaterThan(0);
  expect(tokensOut).toBeGreaterThan(0);
  expect(run.insights.turns).toBeGreaterThan(0);
  expect(run.insights.toolCalls).toBeGreaterThan(0);
  expect(costUsd).toBeGreaterThan(0);
  const tokens = formatTokens(tokensIn + tokensOut + tokensCached);
  // An estimate from token counts (Codex, pi here) is marked with `~`, and a legend says so.
  const estimated = run.insights.estimated === true;
  const cost = `${estimated ? '~' : ''}${formatCost(costUsd)}`;
  const [label, stage, duration, ...rest] = summaryRow(f.stdout, key);
  expect(label).toBe(key);
  expect(stage).toBe('succeeded');
  expect(duration).toMatch(/^\d/);
  expect(rest).toEqual([tokens, cost]);
  expect(cost).toMatch(/^~?\$0\.\d{4}$/);
  const total = f.stdout.split('\n').find((l) => l.startsWith('1 job: '));
  expect(total, f.stdout).toMatch(/^1 job: 1 succeeded · \S+ · /);
  expect(total!.endsWith(` · ${tokens} tokens · ${cost}`), total).toBe(true);
  expect(f.stdout.includes('~ cost estimated from token counts')).toBe(estimated);
  return run;
}

describe('a Markdown job file through the real `fleet run` and a real agent CLI', () => {
  it.skipIf(!claudeProbe.ok)(
    `claude-code${claudeProbe.ok ? ` (${claudeProbe.version})` : ''}: succeeded, hello.txt on fleet/claude-file, tokens and cost in the summary and the store`,
    { timeout: 60_000 },
    async () => {
      const s = await setup();
      const { model, modelName, env, tokens } = await scriptedClaude(s.home);
      const f = await runJobFile(
        s,
        { key: 'claude-file', engine: 'claude-code', model: modelName },
        env,
      );
      const run = expectSucceeded(f, 'claude-file');

      expect(await show(s.repo, 'fleet/claude-file:hello.txt'), f.explain).toBe(CONTENT);
      expect(model.turnsPlayed).toBe(2);
      expect(model.overruns).toBe(0);
      // The job file's model reached the CLI.
      expect(model.turnRequests()[0]?.body).toMatchObject({ model: modelName });

      expect(run).toMatchObject({ engine: 'claude-code' });
      expect(run.insights).toMatchObject({
        model: modelName,
        ...tokens,
        turns: 2,
        toolCalls: 1,
        estimated: false,
        filesChanged: 1,
      });
    },
  );

  it.skipIf(!codexProbe.ok)(
    `codex${codexProbe.ok ? ` (${codexProbe.version})` : ''}: succeeded, hello.txt on fleet/codex-file, tokens and an estimated cost in the summary and the store`,
    { timeout: 60_000 },
    async () => {
      const s = await setup();
      const { model, modelName, env, tokens } = await scriptedCodex(s.home);
      const f = await runJobFile(s, { key: 'codex-file', engine: 'codex', model: modelName }, env);
      const run = expectSucceeded(f, 'codex-file');

      expect(await show(s.repo, 'fleet/codex-file:hello.txt'), f.explain).toBe(CONTENT);
      expect(model.turnsPlayed).toBe(2);
      expect(model.overruns).toBe(0);
      const [first] = model.turnRequests();
      expect(first?.headers.authorization).toBe('Bearer test-key');
      expect(first?.body).toMatchObject({ model: modelName, stream: true });

      expect(run).toMatchObject({ engine: 'codex' });
      expect(run.insights).toMatchObject({
        model: modelName,
        ...tokens,
        turns: 1,
        toolCalls: 1,
        costUsd: estimateCostUsd({ model: modelName, ...tokens }),
        estimated: true,
        filesChanged: 1,
      });
    },
  );

  it.skipIf(!piProbe.ok)(
    `pi${piProbe.ok ? ` (${piProbe.version})` : ''}: succeeded, hello.txt on fleet/pi-file, tokens and an estimated cost in the summary and the store`,
    { timeout: 60_000 },
    async () => {
      const s = await setup();
      const { model, modelName, jobModel, env, tokens } = await scriptedPi(s.home);
      const f = await runJobFile(s, { key: 'pi-file', engine: 'pi', model: jobModel }, env);
      const run = expectSucceeded(f, 'pi-file');

      expect(await show(s.repo, 'fleet/pi-file:hello.txt'), f.explain).toBe(CONTENT);
      expect(model.turnsPlayed).toBe(2);
      expect(model.overruns).toBe(0);
      const [first] = model.turnRequests();
      expect(first?.headers.authorization).toBe('Bearer test-key');
      expect(first?.body).toMatchObject({ model: modelName, stream: true });

      expect(run).toMatchObject({ engine: 'pi' });
      expect(run.insights).toMatchObject({
        model: modelName,
        ...tokens,
        turns: 2,
        toolCalls: 1,
        // Estimated per request and summed, so compared up to rounding.
        costUsd: expect.closeTo(estimateCostUsd({ model: modelName, ...tokens })!, 12),
        estimated: true,
        filesChanged: 1,
      });
    },
  );
});
