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
import type { EngineCommand } from '../../../src/engines/index.js';
import { pi } from '../../../src/engines/pi.js';
import {
  SCRIPT_USAGE,
  messagesSent,
  startOpenAIChatServer,
  toolNames,
  type OpenAIChatServer,
  type Script,
} from '../../helpers/model-servers/openai-chat.js';

/**
 * The real Pi (the `@mariozechner/pi-coding-agent` dev dependency) run headless with our
 * adapter's command line against a scripted OpenAI Chat Completions API on 127.0.0.1, reached
 * through a `models.json` provider in a temporary agent directory: its tools really write in a
 * temporary git repository, and its stdout goes through our parser.
 */

const probe = probeCli(pi, 'Pi', 'dev dependency @mariozechner/pi-coding-agent');

/** A price pi knows from models.json (dollars per million tokens), unlike Fleet's table. */
const PRICE = { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 };

/** One scripted request's usage in Fleet's terms (prompt tokens include the cached ones). */
const REQUEST = {
  tokensIn: SCRIPT_USAGE.prompt_tokens - SCRIPT_USAGE.prompt_tokens_details.cached_tokens,
  tokensOut: SCRIPT_USAGE.completion_tokens,
  tokensCached: SCRIPT_USAGE.prompt_tokens_details.cached_tokens,
};

/**
 * Writes pi's configuration into `agentDir` (what `PI_CODING_AGENT_DIR` points at): a provider
 * `fleet` speaking Chat Completions to the scripted server, with one model (priced when `price`
 * is given), and settings that bound retries (one agent-level retry after 50 ms, none inside the
 * OpenAI SDK) so a failing API ends the run in seconds.
 */
function configure(
  agentDir: string,
  server: OpenAIChatServer,
  model: { id: string; price?: typeof PRICE },
): void {
  mkdirSync(agentDir, { recursive: true });
  const entry = model.price === undefined ? { id: model.id } : { id: model.id, cost: model.price };
  const provider = {
    baseUrl: server.baseUrl,
    api: 'openai-completions',
    apiKey: 'FLEET_TEST_KEY', // the name of the variable holding the key
    models: [entry],
  };
  writeFileSync(join(agentDir, 'models.json'), JSON.stringify({ providers: { fleet: provider } }));
  const retry = { enabled: true, maxRetries: 1, baseDelayMs: 50, provider: { maxRetries: 0 } };
  writeFileSync(join(agentDir, 'settings.json'), JSON.stringify({ retry }));
}

/**
 * Runs pi with a minimal environment: nothing of the test runner's (no API keys, no real HOME),
 * its agent directory in the sandbox, and no startup network requests (`PI_OFFLINE`).
 */
function runPi(cmd: EngineCommand, opts: { cwd: string; home: string; tmp: string }): Promise<Run> {
  return runCli(cmd, pi.parser(), {
    cwd: opts.cwd,
    timeoutMs: 25_000,
    env: {
      PATH,
      HOME: opts.home,
      TMPDIR: opts.tmp,
      LANG: 'C.UTF-8',
      ...cmd.env,
      PI_CODING_AGENT_DIR: join(opts.home, '.pi', 'agent'),
      PI_OFFLINE: '1',
      FLEET_TEST_KEY: 'test-key',
    },
  });
}

describe.skipIf(!probe.ok)(
  `Pi (real binary${probe.ok ? ` ${probe.version}` : ''}, scripted Chat Completions API)`,
  () => {
    let root: string;
    let worktree: string;
    let home: string;
    let tmp: string;
    let agentDir: string;
    let server: OpenAIChatServer | undefined;

    beforeEach(() => {
      ({ root, worktree, home, tmp } = makeSandbox('fleet-pi-real-'));
      agentDir = join(home, '.pi', 'agent');
    });

    afterEach(async () => {
      await server?.close();
      server = undefined;
      rmSync(root, { recursive: true, force: true });
    });

    /** Turn 1: a sentence and a `write` call for hello.txt; turn 2: the answer. */
    function helloScript(): Script {
      return [
        [
          { type: 'text', text: "I'll create hello.txt." },
          {
            type: 'tool_call',
            name: 'write',
            arguments: {
              path: join(worktree, 'hello.txt'),
              content: 'hello from the scripted model\n',
            },
          },
        ],
        [{ type: 'text', text: 'Done: hello.txt is written.' }],
      ];
    }

    it('yolo: runs the scripted write, and the adapter captures events, tokens, pi’s cost and turns', async () => {
      const file = join(worktree, 'hello.txt');
      server = await startOpenAIChatServer(helloScript());
      configure(agentDir, server, { id: 'scripted-model', price: PRICE });
      const cmd = pi.command({
        prompt: 'Create hello.txt',
        yolo: true,
        model: 'fleet/scripted-model',
      });
      expect(cmd.stdin).toBe('ignore');
      const run = await runPi(cmd, { cwd: worktree, home, tmp });

      expect(run.timedOut, explain(run)).toBe(false);
      expect(run.code, explain(run)).toBe(0);
      expect(readFileSync(file, 'utf8')).toBe('hello from the scripted model\n');
      expect(gitStatus(worktree)).toBe('?? hello.txt');

      // Only the two model requests, with our key; the first declares the tools, the second
      // carries the call and its result under the id the API gave it.
      expect(server.turnsPlayed).toBe(2);
      expect(server.overruns).toBe(0);
      expect(server.requests.map((r) => `${r.method} ${r.url} ${r.handled}`)).toEqual([
        'POST /v1/chat/completions turn',
        'POST /v1/chat/completions turn',
      ]);
      const [first, second] = server.turnRequests();
      expect(first?.headers.authorization).toBe('Bearer test-key');
      expect(first?.body).toMatchObject({
        model: 'scripted-model',
        stream: true,
        stream_options: { include_usage: true },
      });
      expect(toolNames(first?.body)).toEqual(['read', 'bash', 'edit', 'write']);
      const sent = messagesSent(second?.body);
      expect(sent.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool']);
      expect(sent[3]).toMatchObject({ tool_call_id: 'call_script_0_1' });
      expect(sent[3]?.content).toBe(`Successfully wrote 30 bytes to ${file}`);

      // Events, in the order the CLI printed them.
      expect(
        run.events.map((e) => e.type),
        run.lines.join('\n'),
      ).toEqual([
        'session',
        'message',
        'message',
        'tool_call',
        'usage',
        'tool_result',
        'message',
        'usage',
        'result',
      ]);
      const header = JSON.parse(run.lines[0] ?? '{}') as { type?: string; id?: string };
      expect(header.type).toBe('session');
      expect(dataOf(run.events, 'session')).toEqual([{ sessionId: header.id }]);
      expect(dataOf(run.events, 'message')).toEqual([
        { role: 'user', text: 'Create hello.txt' },
        { role: 'assistant', text: "I'll create hello.txt." },
        { role: 'assistant', text: 'Done: hello.txt is written.' },
      ]);
      expect(dataOf(run.events, 'tool_call')).toEqual([
        {
          id: 'call_script_0_1',
          name: 'write',
          input: { path: file, content: 'hello from the scripted model\n' },
        },
      ]);
      expect(dataOf(run.events, 'tool_result')).toEqual([
        { id: 'call_script_0_1', isError: false, output: `Successfully wrote 30 bytes to ${file}` },
      ]);
      // Each request's usage, priced by pi from models.json.
      const perRequest =
        (REQUEST.tokensIn * PRICE.input +
          REQUEST.tokensOut * PRICE.output +
          REQUEST.tokensCached * PRICE.cacheRead) /
        1e6;
      expect(dataOf(run.events, 'usage')).toEqual([
        { ...REQUEST, costUsd: expect.closeTo(perRequest, 12) },
        { ...REQUEST, costUsd: expect.closeTo(perRequest, 12) },
      ]);
      expect(dataOf(run.events, 'result')).toEqual([{ ok: true, subtype: 'stop' }]);

      expect(run.summary).toEqual({
        sessionId: header.id,
        ok: true,
        error: null,
        insights: {
          model: 'scripted-model',
          tokensIn: 2 * REQUEST.tokensIn,
          tokensOut: 2 * REQUEST.tokensOut,
          tokensCached: 2 * REQUEST.tokensCached,
          costUsd: expect.closeTo(2 * perRequest, 12),
          estimated: false,
          turns: 2,
          toolCalls: 1,
        },
      });
      // The session was saved in the sandbox's agent directory, not the real home.
      expect(existsSync(join(agentDir, 'sessions'))).toBe(true);
    }, 30_000);

    it('resume: a follow-up on the session carries the earlier conversation', async () => {
      const file = join(worktree, 'from-bash.txt');
      server = await startOpenAIChatServer([
        [
          {
            type: 'tool_call',
            name: 'bash',
            arguments: { command: "printf 'made by bash\\n' > from-bash.txt" },
          },
        ],
        [{ type: 'text', text: 'I ran printf.' }],
        [{ type: 'text', text: 'Earlier I wrote from-bash.txt.' }],
      ]);
      configure(agentDir, server, { id: 'scripted-model' });
      const model = 'fleet/scripted-model';
      const first = await runPi(
        pi.command({ prompt: 'Make a file with bash', yolo: true, model }),
        {
          cwd: worktree,
          home,
          tmp,
        },
      );
      expect(first.code, explain(first)).toBe(0);
      expect(readFileSync(file, 'utf8')).toBe('made by bash\n');
      expect(dataOf(first.events, 'tool_result')).toEqual([
        { id: 'call_script_0_0', isError: false, output: '(no output)' },
      ]);
      const sessionId = first.summary.sessionId;
      expect(sessionId).toEqual(expect.any(String));

      const cmd = pi.command({
        prompt: 'what did you do?',
        yolo: true,
        model,
        resumeSessionId: sessionId ?? '',
      });
      const second = await runPi(cmd, { cwd: worktree, home, tmp });
      expect(second.code, explain(second)).toBe(0);

      // The third request replays the first run's conversation before the new message.
      const sent = messagesSent(server.turnRequests()[2]?.body);
      expect(sent.map((m) => m.role)).toEqual([
        'system',
        'user',
        'assistant',
        'tool',
        'assistant',
        'user',
      ]);
      expect(sent[1]?.content).toEqual([{ type: 'text', text: 'Make a file with bash' }]);
      expect(sent[4]?.content).toBe('I ran printf.');
      expect(sent[5]?.content).toEqual([{ type: 'text', text: 'what did you do?' }]);

      expect(second.summary.sessionId).toBe(sessionId);
      expect(dataOf(second.events, 'message')).toEqual([
        { role: 'user', text: 'what did you do?' },
        { role: 'assistant', text: 'Earlier I wrote from-bash.txt.' },
      ]);
      // Usage is per request: the resumed run counts its own request only. The model has no
      // price in pi or in Fleet's table, so there is no cost.
      expect(second.summary).toMatchObject({ ok: true, error: null });
      expect(second.summary.insights).toEqual({
        model: 'scripted-model',
        ...REQUEST,
        turns: 1,
        toolCalls: 0,
      });
    }, 30_000);

    it('without yolo: only read-only tools, the write is refused, the cost is estimated', async () => {
      server = await startOpenAIChatServer([
        helloScript()[0]!,
        [{ type: 'text', text: 'I was not allowed to write the file.' }],
      ]);
      // A model id Fleet's price table knows, with no price in models.json: pi reports $0.
      configure(agentDir, server, { id: 'gpt-4.1' });
      const cmd = pi.command({ prompt: 'Create hello.txt', yolo: false, model: 'fleet/gpt-4.1' });
      const run = await runPi(cmd, { cwd: worktree, home, tmp });

      expect(run.code, explain(run)).toBe(0);
      expect(existsSync(join(worktree, 'hello.txt'))).toBe(false);
      expect(gitStatus(worktree)).toBe('');
      expect(toolNames(server.turnRequests()[0]?.body)).toEqual(['read', 'grep', 'find', 'ls']);
      expect(dataOf(run.events, 'tool_result')).toEqual([
        { id: 'call_script_0_1', isError: true, output: 'Tool write not found' },
      ]);
      const tokens = {
        tokensIn: 2 * REQUEST.tokensIn,
        tokensOut: 2 * REQUEST.tokensOut,
        tokensCached: 2 * REQUEST.tokensCached,
      };
      expect(run.summary.ok).toBe(true);
      expect(run.summary.insights).toEqual({
        model: 'gpt-4.1',
        ...tokens,
        costUsd: estimateCostUsd({ model: 'gpt-4.1', ...tokens }),
        estimated: true,
        turns: 2,
        toolCalls: 1,
      });
    }, 30_000);

    it('a failing API: pi retries once, exits 0, and the adapter reports the failure', async () => {
      server = await startOpenAIChatServer([
        { status: 500, message: 'scripted outage' },
        { status: 500, message: 'scripted outage again' },
      ]);
      configure(agentDir, server, { id: 'scripted-model' });
      const run = await runPi(
        pi.command({ prompt: 'Create hello.txt', yolo: true, model: 'fleet/scripted-model' }),
        { cwd: worktree, home, tmp },
      );

      expect(run.timedOut, explain(run)).toBe(false);
      // The exit code says nothing: only the JSON lines tell the run failed.
      expect(run.code, explain(run)).toBe(0);
      expect(server.requests.map((r) => r.handled)).toEqual(['turn', 'turn']);
      expect(dataOf(run.events, 'retry')).toEqual([
        { attempt: 1, maxAttempts: 1, delayMs: 50, message: '500 scripted outage' },
      ]);
      expect(dataOf(run.events, 'result')).toEqual([
        { ok: false, subtype: 'error', message: '500 scripted outage' },
        { ok: false, subtype: 'error', message: '500 scripted outage again' },
      ]);
      expect(run.summary).toMatchObject({ ok: false, error: '500 scripted outage again' });
      expect(run.summary.insights).toMatchObject({ turns: 0, toolCalls: 0, tokensIn: 0 });
    }, 30_000);
  },
);
