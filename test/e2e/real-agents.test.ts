import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { estimateCostUsd, type Run } from '../../src/core/index.js';
import { claudeCode } from '../../src/engines/claude-code.js';
import { codex } from '../../src/engines/codex.js';
import { gemini } from '../../src/engines/gemini.js';
import { pi } from '../../src/engines/pi.js';
import { listen, type ListeningServer } from '../client/helpers.js';
import { PATH, probeCli } from '../engines/real/cli-harness.js';
import { cleanup, makeRepo, show, tempDir } from '../factory/fixtures.js';
import { launchFleet, until } from '../helpers/fleet-process.js';
import {
  SCRIPT_USAGE as GEMINI_USAGE,
  toolNames as geminiToolNames,
  startGeminiServer,
} from '../helpers/model-servers/gemini.js';
import { messagesSent, toolNames as chatToolNames } from '../helpers/model-servers/openai-chat.js';
import { STORES } from '../helpers/stores.js';
import {
  CONTENT,
  cleanAgentEnv,
  expectInOrder,
  scriptedClaude,
  scriptedCodex,
  scriptedPi,
} from './scripted-agents.js';

/**
 * Issue 4's end to end: a job with `engine: claude-code` (then `codex`, `gemini`, `pi`) submitted
 * to a real server, claimed by the real `fleet factory` child process, which runs the real agent
 * CLI (the dev dependency) in a worktree against a scripted model server on 127.0.0.1. The job
 * ends `succeeded` with the agent's edit committed on its branch and tokens/cost in the run's
 * insights.
 *
 * Everything the CLI needs (base URL, key, a temporary HOME / CODEX_HOME / PI_CODING_AGENT_DIR)
 * is in the factory's environment: the runner passes the factory's environment through to its
 * agents.
 */

const sqlite = STORES.find((k) => k.name === 'sqlite')!;

// Each CLI is probed once with a throwaway HOME; a missing one skips its case with a warning
// naming the dev dependency to install.
const claudeProbe = probeCli(
  claudeCode,
  'Claude Code factory e2e',
  'dev dependency @anthropic-ai/claude-code and its platform package',
);
const codexProbe = probeCli(
  codex,
  'Codex factory e2e',
  'dev dependency @openai/codex and its platform package',
  ['CODEX_HOME'],
);
const geminiProbe = probeCli(gemini, 'Gemini CLI factory e2e', 'dev dependency @google/gemini-cli');
const piProbe = probeCli(pi, 'Pi factory e2e', 'dev dependency @mariozechner/pi-coding-agent');

/** The real `fleet factory` as a child process, with `env` layered over a clean environment. */
const launchFactory = (args: string[], token: string, env: Record<string, string>) =>
  launchFleet(
    ['factory', ...args],
    { ...cleanAgentEnv(), PATH, FLEET_TOKEN: token, ...env },
    { inherit: false },
  );

interface Setup {
  server: ListeningServer;
  repo: string;
  work: string;
  home: string;
}

async function setup(): Promise<Setup> {
  const server = await listen(sqlite);
  const repo = await makeRepo();
  const work = await tempDir('fleet-e2e-work-');
  const home = await tempDir('fleet-e2e-home-');
  onTestFinished(() => cleanup(repo, work, home));
  return { server, repo, work, home };
}

/**
 * Starts the factory, submits one job and waits for it to end; returns the job, its runs and
 * events. Fails with the factory's output and the job's events when the job does not succeed.
 */
async function runThroughFactory(
  s: Setup,
  env: Record<string, string>,
  job: { engine: string; key: string; model: string },
) {
  const token = await s.server.token('factory', ['acme']);
  const operator = s.server.client(await s.server.token('operator', ['acme']));
  const factory = launchFactory(
    [
      '--server',
      s.server.baseUrl,
      '--name',
      `factory-${job.key}`,
      '--seats',
      '1',
      '--work-dir',
      s.work,
      '--data-dir',
      s.work,
      '--poll-ms',
      '200',
    ],
    token,
    env,
  );
  await until(
    () => /control socket/.test(factory.stdout()),
    15_000,
    () => `factory stdout:\n${factory.stdout()}\nstderr:\n${factory.stderr()}`,
  );
  const { jobs } = await operator.submitJobs([
    {
      engine: job.engine,
      bodyMd: 'create hello.txt',
      key: job.key,
      manifest: { cwd: s.repo, yolo: true, model: job.model },
    },
  ]);
  const id = jobs[0]!.job.id;
  const events = () => s.server.store.readEvents('acme', id, { limit: 10_000 });
  const explain = async () =>
    [
      `job: ${JSON.stringify(await s.server.store.getJob('acme', id))}`,
      `runs: ${JSON.stringify(await s.server.store.listRuns('acme', id))}`,
      `events:\n${(await events()).map((e) => `${e.type} ${JSON.stringify(e.data)}`).join('\n')}`,
      `factory stdout:\n${factory.stdout()}\nstderr:\n${factory.stderr()}`,
    ].join('\n');
  await until(
    async () => {
      const runs = await s.server.store.listRuns('acme', id);
      if (runs.some((r) => r.result !== null && r.result !== 'success'))
        throw new Error(`a run did not succeed\n${await explain()}`);
      return (await s.server.store.getJob('acme', id))?.stage === 'succeeded';
    },
    45_000,
    explain,
  );
  const runs: Run[] = await s.server.store.listRuns('acme', id);
  const stored = await events();
  factory.child.kill('SIGTERM');
  expect(await factory.exited).toBe(0);
  return { id, runs, events: stored, explain };
}

describe('real agents through the real factory', () => {
  it.skipIf(!claudeProbe.ok)(
    `claude-code${claudeProbe.ok ? ` (${claudeProbe.version})` : ''}: the job succeeds with the Write on its branch, tokens and cost recorded`,
    { timeout: 60_000 },
    async () => {
      const s = await setup();
      const { model, modelName, env, tokens } = await scriptedClaude(s.home);
      const { runs, events, explain } = await runThroughFactory(s, env, {
        engine: 'claude-code',
        key: 'claude-e2e',
        model: modelName,
      });

      expect(await show(s.repo, 'fleet/claude-e2e:hello.txt'), await explain()).toBe(CONTENT);
      expect(model.turnsPlayed).toBe(2);
      expect(model.overruns).toBe(0);

      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ engine: 'claude-code', result: 'success' });
      expect(runs[0]!.insights).toMatchObject({
        model: modelName,
        ...tokens,
        turns: 2,
        toolCalls: 1,
        estimated: false,
        filesChanged: 1,
      });
      expect(runs[0]!.insights.costUsd).toBeGreaterThan(0);

      expectInOrder(
        events,
        ['session', 'tool_call', 'tool_result', 'result', 'commit'],
        await explain(),
      );
      const call = events.find((e) => e.type === 'tool_call')!;
      expect(call.data).toMatchObject({ name: 'Write' });
      const result = events.find((e) => e.type === 'tool_result')!;
      expect(result.data).toMatchObject({ id: call.data.id, isError: false });
    },
  );

  it.skipIf(!codexProbe.ok)(
    `codex${codexProbe.ok ? ` (${codexProbe.version})` : ''}: the job succeeds with the shell edit on its branch, tokens and an estimated cost`,
    { timeout: 60_000 },
    async () => {
      const s = await setup();
      // gpt-5.5 would not do: it is not in the price table, so its cost would stay unknown.
      const { model, modelName, env, tokens } = await scriptedCodex(s.home);
      const { runs, events, explain } = await runThroughFactory(s, env, {
        engine: 'codex',
        key: 'codex-e2e',
        model: modelName,
      });

      expect(await show(s.repo, 'fleet/codex-e2e:hello.txt'), await explain()).toBe(CONTENT);
      expect(model.turnsPlayed).toBe(2);
      expect(model.overruns).toBe(0);
      const [first] = model.turnRequests();
      expect(first?.headers.authorization).toBe('Bearer test-key');
      expect(first?.body).toMatchObject({ model: modelName, stream: true });

      expect(runs).toHaveLength(1);
      const cost = estimateCostUsd({ model: modelName, ...tokens });
      expect(cost).toBeGreaterThan(0);
      expect(runs[0]).toMatchObject({ engine: 'codex', result: 'success' });
      expect(runs[0]!.insights).toMatchObject({
        model: modelName,
        ...tokens,
        turns: 1,
        toolCalls: 1,
        costUsd: cost,
        estimated: true,
        filesChanged: 1,
      });

      expectInOrder(
        events,
        ['session', 'tool_call', 'tool_result', 'result', 'commit'],
        await explain(),
      );
      const call = events.find((e) => e.type === 'tool_call')!;
      expect(call.data).toMatchObject({ name: 'bash' });
      const result = events.find((e) => e.type === 'tool_result')!;
      expect(result.data).toMatchObject({ id: call.data.id, isError: false, exitCode: 0 });
    },
  );
  it.skipIf(!geminiProbe.ok)(
    `gemini${geminiProbe.ok ? ` (${geminiProbe.version})` : ''}: the job succeeds with the write_file on its branch, tokens and an estimated cost`,
    { timeout: 60_000 },
    async () => {
      const s = await setup();
      const modelName = 'gemini-2.5-flash';
      // A relative path, as for Claude Code: write_file resolves it against the worktree.
      const model = await startGeminiServer([
        [
          { type: 'text', text: "I'll create hello.txt." },
          {
            type: 'functionCall',
            name: 'write_file',
            args: { file_path: 'hello.txt', content: CONTENT },
          },
        ],
        [{ type: 'text', text: 'done' }],
      ]);
      onTestFinished(() => model.close());

      // Headless runs need the auth type named in the settings (see gemini-cli.test.ts).
      await mkdir(join(s.home, '.gemini'), { recursive: true });
      await writeFile(
        join(s.home, '.gemini', 'settings.json'),
        JSON.stringify({
          security: { auth: { selectedType: 'gemini-api-key' } },
          general: { enableAutoUpdate: false, enableAutoUpdateNotification: false, maxAttempts: 1 },
          privacy: { usageStatisticsEnabled: false },
          telemetry: { enabled: false },
        }),
      );

      const { runs, events, explain } = await runThroughFactory(
        s,
        { HOME: s.home, GEMINI_API_KEY: 'test-key', GOOGLE_GEMINI_BASE_URL: model.baseUrl },
        { engine: 'gemini', key: 'gemini-e2e', model: modelName },
      );

      expect(await show(s.repo, 'fleet/gemini-e2e:hello.txt'), await explain()).toBe(CONTENT);
      expect(model.turnsPlayed).toBe(2);
      expect(model.overruns).toBe(0);
      // The job's model reached the CLI as `-m`: no router-model request came before the turns.
      const streamed = `POST /v1beta/models/${modelName}:streamGenerateContent?alt=sse turn`;
      expect(model.requests.map((r) => `${r.method} ${r.url} ${r.handled}`)).toEqual([
        streamed,
        streamed,
      ]);
      const [first] = model.turnRequests();
      expect(first?.headers.apiKey).toBe('test-key');
      expect(geminiToolNames(first?.body)).toContain('write_file');

      expect(runs).toHaveLength(1);
      const u = GEMINI_USAGE;
      const tokens = {
        tokensIn: 2 * (u.promptTokenCount - u.cachedContentTokenCount),
        tokensOut: 2 * (u.totalTokenCount - u.promptTokenCount), // thinking counts as output
        tokensCached: 2 * u.cachedContentTokenCount,
      };
      const cost = estimateCostUsd({ model: modelName, ...tokens });
      expect(cost).toBeGreaterThan(0);
      expect(runs[0]).toMatchObject({ engine: 'gemini', result: 'success' });
      expect(runs[0]!.insights).toMatchObject({
        model: modelName,
        ...tokens,
        turns: 2,
        toolCalls: 1,
        costUsd: cost,
        estimated: true,
        filesChanged: 1,
      });

      expectInOrder(
        events,
        ['session', 'tool_call', 'tool_result', 'usage', 'result', 'commit'],
        await explain(),
      );
      const call = events.find((e) => e.type === 'tool_call')!;
      expect(call.data).toMatchObject({ name: 'write_file' });
      const result = events.find((e) => e.type === 'tool_result')!;
      expect(result.data).toMatchObject({ id: call.data.id, isError: false });
    },
  );
  it.skipIf(!piProbe.ok)(
    `pi${piProbe.ok ? ` (${piProbe.version})` : ''}: the job succeeds with the write on its branch, tokens and an estimated cost`,
    { timeout: 60_000 },
    async () => {
      const s = await setup();
      const { model, modelName, jobModel, env, tokens } = await scriptedPi(s.home);
      const { runs, events, explain } = await runThroughFactory(s, env, {
        engine: 'pi',
        key: 'pi-e2e',
        model: jobModel,
      });

      expect(await show(s.repo, 'fleet/pi-e2e:hello.txt'), await explain()).toBe(CONTENT);
      expect(model.turnsPlayed).toBe(2);
      expect(model.overruns).toBe(0);
      expect(model.requests.map((r) => `${r.method} ${r.url} ${r.handled}`)).toEqual([
        'POST /v1/chat/completions turn',
        'POST /v1/chat/completions turn',
      ]);
      const [first, second] = model.turnRequests();
      expect(first?.headers.authorization).toBe('Bearer test-key');
      expect(first?.body).toMatchObject({ model: modelName, stream: true });
      // A yolo job keeps pi's default tools, write among them.
      expect(chatToolNames(first?.body)).toEqual(['read', 'bash', 'edit', 'write']);
      // The write ran in the worktree: its result went back to the model under the call's id.
      const sent = messagesSent(second?.body);
      expect(sent.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool']);
      expect(sent[3]).toMatchObject({ tool_call_id: 'call_script_0_1' });
      expect(sent[3]?.content).toMatch(/^Successfully wrote 30 bytes to .*hello\.txt$/);

      expect(runs).toHaveLength(1);
      const cost = estimateCostUsd({ model: modelName, ...tokens });
      expect(cost).toBeGreaterThan(0);
      expect(runs[0]).toMatchObject({ engine: 'pi', result: 'success' });
      expect(runs[0]!.insights).toMatchObject({
        model: modelName,
        ...tokens,
        turns: 2,
        toolCalls: 1,
        // Estimated per request and summed, so compared up to rounding.
        costUsd: expect.closeTo(cost!, 12),
        estimated: true,
        filesChanged: 1,
      });
      // Pi's own price was $0 for both requests, so their usage events carry no cost.
      const usage = events.filter((e) => e.type === 'usage').map((e) => e.data);
      expect(usage).toEqual([
        {
          tokensIn: tokens.tokensIn / 2,
          tokensOut: tokens.tokensOut / 2,
          tokensCached: tokens.tokensCached / 2,
        },
        {
          tokensIn: tokens.tokensIn / 2,
          tokensOut: tokens.tokensOut / 2,
          tokensCached: tokens.tokensCached / 2,
        },
      ]);

      expectInOrder(
        events,
        ['session', 'tool_call', 'usage', 'tool_result', 'usage', 'result', 'commit'],
        await explain(),
      );
      const session = events.find((e) => e.type === 'session')!;
      // The run's output keeps pi's session id (for a follow-up) and the job's branch.
      expect(runs[0]!.output).toMatchObject({
        branch: 'fleet/pi-e2e',
        sessionId: session.data.sessionId,
      });
      const call = events.find((e) => e.type === 'tool_call')!;
      expect(call.data).toMatchObject({
        id: 'call_script_0_1',
        name: 'write',
        input: { path: 'hello.txt', content: CONTENT },
      });
      const result = events.find((e) => e.type === 'tool_result')!;
      expect(result.data).toMatchObject({ id: call.data.id, isError: false });
    },
  );
});
