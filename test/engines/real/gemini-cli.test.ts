import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  PATH,
  dataOf,
  explain,
  gitStatus,
  makeSandbox,
  probeCli,
  runCli,
  type Run,
} from './cli-harness.js';
import { estimateCostUsd } from '../../../src/core/index.js';
import { gemini } from '../../../src/engines/gemini.js';
import type { EngineCommand } from '../../../src/engines/index.js';
import {
  SCRIPT_USAGE,
  partsSent,
  startGeminiServer,
  toolNames,
  type GeminiServer,
  type Script,
} from '../../helpers/model-servers/gemini.js';

/**
 * The real Gemini CLI (the `@google/gemini-cli` dev dependency) run headless with our adapter's
 * command line against a scripted Gemini API on 127.0.0.1: its `write_file` tool really writes
 * in a temporary git repository, and its stdout goes through our parser.
 */

const probe = probeCli(gemini, 'Gemini CLI', 'dev dependency @google/gemini-cli');

const MODEL = 'gemini-2.5-flash';

/**
 * `$HOME/.gemini/settings.json` for a headless run against the scripted server. The auth type
 * must be named: with `GOOGLE_GEMINI_BASE_URL` set and no setting, 0.61.0 picks its `gateway`
 * auth, which non-interactive mode rejects ("Invalid auth method selected.", exit 41). No update
 * checks, usage statistics or telemetry (outside traffic), and one attempt per request so a
 * failure ends the run instead of retrying for minutes.
 */
const SETTINGS = {
  security: { auth: { selectedType: 'gemini-api-key' } },
  general: { enableAutoUpdate: false, enableAutoUpdateNotification: false, maxAttempts: 1 },
  privacy: { usageStatisticsEnabled: false },
  telemetry: { enabled: false },
};

/**
 * Runs the CLI against the scripted server with a minimal environment (no GEMINI_* or GOOGLE_*
 * of the test runner).
 */
function runGemini(
  cmd: EngineCommand,
  opts: { cwd: string; home: string; tmp: string; server: GeminiServer },
): Promise<Run> {
  return runCli(cmd, gemini.parser({ model: MODEL }), {
    cwd: opts.cwd,
    timeoutMs: 25_000,
    env: {
      PATH,
      HOME: opts.home,
      TMPDIR: opts.tmp,
      LANG: 'C.UTF-8',
      ...cmd.env,
      GEMINI_API_KEY: 'test-key',
      GOOGLE_GEMINI_BASE_URL: opts.server.baseUrl,
    },
  });
}

describe.skipIf(!probe.ok)(
  `Gemini CLI (real binary${probe.ok ? ` ${probe.version}` : ''}, scripted Gemini API)`,
  () => {
    let root: string;
    let worktree: string;
    let home: string;
    let tmp: string;
    let server: GeminiServer | undefined;

    beforeEach(() => {
      ({ root, worktree, home, tmp } = makeSandbox('fleet-gemini-real-'));
      mkdirSync(join(home, '.gemini'));
      writeFileSync(join(home, '.gemini', 'settings.json'), JSON.stringify(SETTINGS));
    });

    afterEach(async () => {
      await server?.close();
      server = undefined;
      rmSync(root, { recursive: true, force: true });
    });

    /** Turn 1: a sentence and a `write_file` call for hello.txt; turn 2: the answer. */
    function helloScript(): Script {
      return [
        [
          { type: 'text', text: "I'll create hello.txt." },
          {
            type: 'functionCall',
            name: 'write_file',
            args: {
              file_path: join(worktree, 'hello.txt'),
              content: 'hello from the scripted model\n',
            },
          },
        ],
        [{ type: 'text', text: 'Done: hello.txt is written.' }],
      ];
    }

    it('yolo: runs the scripted write_file, and the adapter captures events, tokens, cost and turns', async () => {
      const file = join(worktree, 'hello.txt');
      server = await startGeminiServer(helloScript());
      const cmd = gemini.command({ prompt: 'Create hello.txt', yolo: true, model: MODEL });
      expect(cmd.stdin).toBe('ignore');
      const run = await runGemini(cmd, { cwd: worktree, home, tmp, server });

      expect(run.timedOut, explain(run)).toBe(false);
      expect(run.code, explain(run)).toBe(0);
      expect(readFileSync(file, 'utf8')).toBe('hello from the scripted model\n');
      expect(gitStatus(worktree)).toBe('?? hello.txt');

      // Only the two model requests, with our key; the first declares write_file, the second
      // carries its result under the id the CLI gave the call (the API sent none).
      expect(server.turnsPlayed).toBe(2);
      expect(server.overruns).toBe(0);
      const streamUrl = `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`;
      expect(server.requests.map((r) => `${r.method} ${r.url} ${r.handled}`)).toEqual([
        `POST ${streamUrl} turn`,
        `POST ${streamUrl} turn`,
      ]);
      const [first, second] = server.turnRequests();
      expect(first?.headers.apiKey).toBe('test-key');
      expect(toolNames(first?.body)).toContain('write_file');
      expect(partsSent(first?.body).some((p) => 'functionResponse' in p)).toBe(false);
      const sentCall = partsSent(second?.body).find((p) => 'functionCall' in p)?.functionCall as
        { id?: string; name?: string } | undefined;
      expect(sentCall).toMatchObject({ id: expect.any(String), name: 'write_file' });
      const response = partsSent(second?.body).find((p) => 'functionResponse' in p)
        ?.functionResponse as { id?: string; name?: string; response?: { output?: string } };
      expect(response).toMatchObject({ id: sentCall?.id, name: 'write_file' });
      expect(response.response?.output).toContain('Successfully created and wrote to new file');

      // Events, in the order the CLI printed them.
      const types = run.events.map((e) => e.type);
      expect(types, run.lines.join('\n')).toEqual([
        'session',
        'message',
        'message',
        'tool_call',
        'tool_result',
        'message',
        'usage',
        'result',
      ]);
      const [session] = dataOf(run.events, 'session');
      expect(session).toEqual({ sessionId: expect.any(String), model: MODEL });
      expect(dataOf(run.events, 'message')).toEqual([
        { role: 'user', text: 'Create hello.txt' },
        { role: 'assistant', text: "I'll create hello.txt." },
        { role: 'assistant', text: 'Done: hello.txt is written.' },
      ]);
      const [call] = dataOf(run.events, 'tool_call');
      // The stream-json tool id is the request's call id prefixed with the tool name.
      expect(call).toEqual({
        id: `write_file__${sentCall?.id}`,
        name: 'write_file',
        input: { file_path: file, content: 'hello from the scripted model\n' },
      });
      expect(dataOf(run.events, 'tool_result')).toEqual([{ id: call?.id, isError: false }]);

      // Tokens: the result's stats add up both requests' last usageMetadata (the prompt-only
      // usage of each turn's first chunk is not counted again). `input_tokens` includes the
      // cached ones; thoughts are in `total_tokens` only, not in `output_tokens`, and Fleet
      // counts them as output (Gemini bills thinking as output).
      const u = SCRIPT_USAGE;
      const tokens = {
        tokensIn: 2 * (u.promptTokenCount - u.cachedContentTokenCount),
        tokensOut: 2 * (u.totalTokenCount - u.promptTokenCount),
        tokensCached: 2 * u.cachedContentTokenCount,
      };
      const resultLine = JSON.parse(run.lines.at(-1) ?? '{}') as { stats?: unknown };
      expect(resultLine.stats).toMatchObject({
        total_tokens: 2 * u.totalTokenCount,
        input_tokens: 2 * u.promptTokenCount,
        output_tokens: 2 * u.candidatesTokenCount,
        cached: 2 * u.cachedContentTokenCount,
        input: tokens.tokensIn,
        tool_calls: 1,
        models: { [MODEL]: expect.any(Object) as unknown },
      });
      expect(dataOf(run.events, 'usage')).toEqual([{ ...tokens, cumulative: true }]);
      expect(dataOf(run.events, 'result')).toEqual([{ ok: true }]);

      const { summary } = run;
      expect(summary.ok).toBe(true);
      expect(summary.error).toBeNull();
      expect(summary.sessionId).toBe(session?.sessionId);
      const costUsd = estimateCostUsd({ model: MODEL, ...tokens });
      expect(costUsd).toBeGreaterThan(0);
      expect(summary.insights).toEqual({
        model: MODEL,
        ...tokens,
        costUsd,
        estimated: true,
        toolCalls: 1,
        turns: 2,
      });
    }, 30_000);

    it('without yolo: the headless CLI refuses write_file, and the run still ends well', async () => {
      server = await startGeminiServer([
        helloScript()[0]!,
        [{ type: 'text', text: 'I was not allowed to write the file.' }],
      ]);
      const cmd = gemini.command({ prompt: 'Create hello.txt', yolo: false, model: MODEL });
      expect(cmd.args).not.toContain('--yolo');
      const run = await runGemini(cmd, { cwd: worktree, home, tmp, server });

      expect(run.timedOut, explain(run)).toBe(false);
      expect(run.code, explain(run)).toBe(0);
      expect(existsSync(join(worktree, 'hello.txt'))).toBe(false);
      expect(gitStatus(worktree)).toBe('');

      // The model was told the call was refused; Fleet saw the call and its failed result.
      const response = partsSent(server.turnRequests()[1]?.body).find(
        (p) => 'functionResponse' in p,
      )?.functionResponse as { name?: string; response?: unknown } | undefined;
      expect(response?.name).toBe('write_file');
      const [call] = dataOf(run.events, 'tool_call');
      expect(call).toMatchObject({ name: 'write_file' });
      expect(dataOf(run.events, 'tool_result')).toEqual([
        expect.objectContaining({ id: call?.id, isError: true }),
      ]);
      expect(run.summary.ok).toBe(true);
      expect(run.summary.insights).toMatchObject({ model: MODEL, toolCalls: 1, turns: 2 });
    }, 30_000);
  },
);
