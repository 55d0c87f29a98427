import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
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
import { codex, codexProviderArgs } from '../../../src/engines/codex.js';
import type { EngineCommand } from '../../../src/engines/index.js';
import {
  SCRIPT_USAGE,
  startOpenAIResponsesServer,
  type OpenAIResponsesServer,
  type Script,
} from '../../helpers/model-servers/openai-responses.js';

/**
 * The real Codex CLI (the `@openai/codex` dev dependency) run headless with our adapter's command
 * line against a scripted OpenAI Responses server on 127.0.0.1: the shell tool really runs in a
 * temporary git repository, and its stdout goes through our parser.
 */

const probe = probeCli(
  codex,
  'Codex CLI',
  'dev dependency @openai/codex and its platform package',
  ['CODEX_HOME'],
);

/** The env variable the scripted provider reads its key from (`env_key`). */
const KEY_ENV = 'FLEET_TEST_CODEX_KEY';

/**
 * Keeps the CLI offline apart from the scripted server (no plugin or update lookups), and fast
 * when something fails (no retries).
 */
const QUIET = [
  '-c',
  'features.plugins=false',
  '-c',
  'check_for_update_on_startup=false',
  '-c',
  'model_providers.fleet.request_max_retries=0',
  '-c',
  'model_providers.fleet.stream_max_retries=0',
];

/** The adapter's command with the provider flags inserted after `exec`, as the runner does. */
function withProvider(cmd: EngineCommand, server: OpenAIResponsesServer): EngineCommand {
  const [sub, ...rest] = cmd.args;
  expect(sub).toBe('exec');
  const provider = codexProviderArgs({ name: 'fleet', baseUrl: server.baseUrl, envKey: KEY_ENV });
  return { ...cmd, args: ['exec', ...provider, ...QUIET, ...rest] };
}

/**
 * Runs the CLI against the scripted server with a minimal environment (no OPENAI_* or
 * CODEX_* of the test runner).
 */
function runCodex(
  cmd: EngineCommand,
  opts: {
    cwd: string;
    home: string;
    codexHome: string;
    tmp: string;
    model: string;
    timeoutMs: number;
  },
): Promise<Run> {
  return runCli(cmd, codex.parser({ model: opts.model }), {
    cwd: opts.cwd,
    timeoutMs: opts.timeoutMs,
    env: {
      PATH,
      HOME: opts.home,
      CODEX_HOME: opts.codexHome,
      TMPDIR: opts.tmp,
      LANG: 'C.UTF-8',
      ...cmd.env,
      [KEY_ENV]: 'test-key',
    },
  });
}

/** The `function_call_output` items in the `input` of a recorded /v1/responses body. */
function toolOutputsSent(body: unknown): Record<string, unknown>[] {
  const input = (body as { input?: unknown } | undefined)?.input;
  if (!Array.isArray(input)) return [];
  return (input as Record<string, unknown>[]).filter((i) => i.type === 'function_call_output');
}

/** The names of the function tools a recorded /v1/responses body declares. */
function toolNames(body: unknown): string[] {
  const tools = (body as { tools?: unknown } | undefined)?.tools;
  if (!Array.isArray(tools)) return [];
  return (tools as { name?: unknown }[]).flatMap((t) =>
    typeof t.name === 'string' ? [t.name] : [],
  );
}

describe.skipIf(!probe.ok)(
  `Codex CLI (real binary${probe.ok ? ` ${probe.version}` : ''}, scripted Responses server)`,
  () => {
    let root: string;
    let worktree: string;
    let home: string;
    let codexHome: string;
    let tmp: string;
    let server: OpenAIResponsesServer | undefined;

    beforeEach(() => {
      ({ root, worktree, home, tmp } = makeSandbox('fleet-codex-real-'));
      codexHome = join(root, 'codex-home');
      mkdirSync(codexHome);
    });

    afterEach(async () => {
      await server?.close();
      server = undefined;
      rmSync(root, { recursive: true, force: true });
    });

    /** Turn 1: reasoning, a message and an `exec_command` call that writes hello.txt. */
    function helloScript(): Script {
      return [
        [
          { type: 'reasoning', summary: 'I should write the file.' },
          { type: 'message', text: "I'll create hello.txt." },
          {
            type: 'function_call',
            name: 'exec_command',
            arguments: { cmd: "printf '%s\\n' 'hello from the scripted model' > hello.txt" },
            callId: 'call_script_hello',
          },
        ],
        [{ type: 'message', text: 'done' }],
      ];
    }

    it('yolo: runs the scripted shell call, and the adapter captures events, tokens and turns', async () => {
      // The model the recordings used: Codex knows its metadata (no fallback warning). PRICES
      // has no price for it, so its cost stays unknown (the gpt-5 test below checks the cost).
      const model = 'gpt-5.5';
      const file = join(worktree, 'hello.txt');
      server = await startOpenAIResponsesServer(helloScript());
      const cmd = withProvider(
        codex.command({ prompt: 'Create hello.txt', yolo: true, model, maxTurns: 5 }),
        server,
      );
      expect(cmd.stdin).toBe('ignore');
      const run = await runCodex(cmd, {
        cwd: worktree,
        home,
        codexHome,
        tmp,
        model,
        timeoutMs: 50_000,
      });

      expect(run.timedOut, explain(run)).toBe(false);
      expect(run.code, explain(run)).toBe(0);
      expect(existsSync(file)).toBe(true);
      expect(readFileSync(file, 'utf8')).toBe('hello from the scripted model\n');
      expect(gitStatus(worktree)).toBe('?? hello.txt');

      // Only the two model requests, both to /v1/responses with our key; the second carried
      // the command's output for our call id.
      expect(server.turnsPlayed).toBe(2);
      expect(server.overruns).toBe(0);
      expect(server.requests.map((r) => `${r.method} ${r.url} ${r.handled}`)).toEqual([
        'POST /v1/responses turn',
        'POST /v1/responses turn',
      ]);
      const [first, second] = server.turnRequests();
      expect(first?.headers.authorization).toBe('Bearer test-key');
      expect(first?.body).toMatchObject({ model, stream: true });
      expect(toolNames(first?.body)).toContain('exec_command');
      expect(toolOutputsSent(first?.body)).toEqual([]);
      const sent = toolOutputsSent(second?.body);
      expect(sent).toHaveLength(1);
      expect(sent[0]?.call_id).toBe('call_script_hello');
      expect(String(sent[0]?.output)).toContain('Process exited with code 0');

      // Events, in the order the CLI printed them.
      const types = run.events.map((e) => e.type);
      expect(types, run.lines.join('\n')).not.toContain('raw');
      expect(types, run.lines.join('\n')).not.toContain('error');
      expect(types[0]).toBe('session');
      expect(types[types.length - 1]).toBe('result');
      const [session] = dataOf(run.events, 'session');
      expect(session?.sessionId).toEqual(expect.any(String));
      expect(dataOf(run.events, 'thinking')).toEqual([{ text: 'I should write the file.' }]);
      const calls = dataOf(run.events, 'tool_call');
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ name: 'bash', input: { command: expect.any(String) } });
      // Codex wraps the model's `cmd` in a login shell: `/bin/bash -lc "…"`.
      expect(String((calls[0]?.input as { command?: unknown }).command)).toContain('hello.txt');
      const results = dataOf(run.events, 'tool_result');
      expect(results).toEqual([{ id: calls[0]?.id, output: '', isError: false, exitCode: 0 }]);
      expect(types.indexOf('tool_call')).toBeLessThan(types.indexOf('tool_result'));
      expect(dataOf(run.events, 'message')).toEqual([
        { role: 'assistant', text: "I'll create hello.txt." },
        { role: 'assistant', text: 'done' },
      ]);
      expect(dataOf(run.events, 'result')).toEqual([{ ok: true, subtype: 'turn.completed' }]);

      // Tokens: Codex's turn.completed usage is the thread's total over both requests, each
      // with SCRIPT_USAGE; the adapter takes cached tokens out of the input count.
      const u = SCRIPT_USAGE;
      const input = 2 * u.input_tokens;
      const cached = 2 * u.input_tokens_details.cached_tokens;
      const tokens = {
        tokensIn: input - cached,
        tokensOut: 2 * u.output_tokens,
        tokensCached: cached,
      };
      const turnCompleted = JSON.parse(run.lines[run.lines.length - 1] ?? '{}') as {
        type?: string;
        usage?: Record<string, number>;
      };
      expect(turnCompleted).toEqual({
        type: 'turn.completed',
        usage: {
          input_tokens: input,
          cached_input_tokens: cached,
          cache_write_input_tokens: 0,
          output_tokens: 2 * u.output_tokens,
          reasoning_output_tokens: 2 * u.output_tokens_details.reasoning_tokens,
        },
      });
      expect(dataOf(run.events, 'usage')).toEqual([
        {
          ...tokens,
          tokensReasoning: 2 * u.output_tokens_details.reasoning_tokens,
          cumulative: true,
        },
      ]);

      const { summary } = run;
      expect(summary.ok).toBe(true);
      expect(summary.error).toBeNull();
      expect(summary.sessionId).toBe(session?.sessionId);
      expect(estimateCostUsd({ model, ...tokens })).toBeNull();
      expect(summary.insights).toEqual({ model, ...tokens, turns: 1, toolCalls: 1 });
    }, 60_000);

    it('without yolo (workspace-write sandbox): writes in the worktree; a denied command is not printed', async () => {
      const model = 'gpt-5.5';
      const probeFile = join(worktree, '.git', 'fleet-probe');
      server = await startOpenAIResponsesServer([
        [
          {
            type: 'function_call',
            name: 'exec_command',
            arguments: { cmd: "printf 'sandboxed\\n' > hello.txt && touch .git/fleet-probe" },
            callId: 'call_script_sandbox',
          },
        ],
        [{ type: 'message', text: 'The sandbox refused part of it.' }],
      ]);
      const cmd = withProvider(
        codex.command({ prompt: 'Create hello.txt', yolo: false, model, maxTurns: 5 }),
        server,
      );
      expect(cmd.args).not.toContain('--dangerously-bypass-approvals-and-sandbox');
      expect(cmd.args).toEqual(expect.arrayContaining(['-c', 'sandbox_mode="workspace-write"']));
      const run = await runCodex(cmd, {
        cwd: worktree,
        home,
        codexHome,
        tmp,
        model,
        timeoutMs: 50_000,
      });

      expect(run.timedOut, explain(run)).toBe(false);
      expect(run.code, explain(run)).toBe(0);
      // The OS sandbox let the worktree write through and blocked .git.
      expect(readFileSync(join(worktree, 'hello.txt'), 'utf8')).toBe('sandboxed\n');
      expect(existsSync(probeFile)).toBe(false);

      const sent = toolOutputsSent(server.turnRequests()[1]?.body);
      expect(sent).toHaveLength(1);
      expect(sent[0]?.call_id).toBe('call_script_sandbox');
      expect(String(sent[0]?.output)).toContain('Process exited with code 1');

      // The model got the denial; Codex 0.169.0 prints NO command_execution item for a command
      // the sandbox denied (a command that merely fails is printed, with status "failed"), so
      // Fleet sees no tool_call / tool_result and counts no tool call for it.
      expect(String(sent[0]?.output)).toContain('Read-only file system');
      expect(run.lines.filter((l) => l.includes('command_execution'))).toEqual([]);
      expect(dataOf(run.events, 'tool_call')).toEqual([]);
      expect(dataOf(run.events, 'tool_result')).toEqual([]);
      expect(dataOf(run.events, 'message')).toEqual([
        { role: 'assistant', text: 'The sandbox refused part of it.' },
      ]);
      expect(dataOf(run.events, 'result')).toEqual([{ ok: true, subtype: 'turn.completed' }]);
      expect(run.summary.insights).toMatchObject({ model, turns: 1, toolCalls: 0 });
      expect(run.summary.insights.costUsd).toBeUndefined();
    }, 60_000);

    it('a model Codex has no metadata for (gpt-5): a non-fatal warning item, still a good run', async () => {
      const model = 'gpt-5';
      server = await startOpenAIResponsesServer(helloScript());
      const cmd = withProvider(
        codex.command({ prompt: 'Create hello.txt', yolo: true, model, maxTurns: 5 }),
        server,
      );
      const run = await runCodex(cmd, {
        cwd: worktree,
        home,
        codexHome,
        tmp,
        model,
        timeoutMs: 50_000,
      });

      expect(run.code, explain(run)).toBe(0);
      expect(readFileSync(join(worktree, 'hello.txt'), 'utf8')).toBe(
        'hello from the scripted model\n',
      );
      // Codex prints the warning as an `item.completed` of type `error` before the turn starts;
      // the run goes on and succeeds, so the adapter reports a warning log line, not an error.
      const warning = run.lines.find((l) => l.includes('Model metadata for'));
      expect(JSON.parse(warning ?? '{}')).toMatchObject({
        type: 'item.completed',
        item: { type: 'error' },
      });
      expect(dataOf(run.events, 'error')).toEqual([]);
      expect(dataOf(run.events, 'log')).toEqual([
        {
          stream: 'stderr',
          line: expect.stringContaining('Model metadata for `gpt-5` not found') as string,
          level: 'warning',
          code: 'model_metadata_fallback',
        },
      ]);
      expect(run.summary.ok).toBe(true);
      expect(run.summary.error).toBeNull();
      const { insights } = run.summary;
      expect(insights).toMatchObject({ model, turns: 1, toolCalls: 1, estimated: true });
      // At gpt-5's list prices per million tokens: $1.25 in, $0.125 cached, $10 out.
      expect(insights.costUsd).toBeGreaterThan(0);
      expect(insights.costUsd).toBeCloseTo(
        (insights.tokensIn! * 1.25 + insights.tokensCached! * 0.125 + insights.tokensOut! * 10) /
          1e6,
        12,
      );
    }, 60_000);
  },
);
