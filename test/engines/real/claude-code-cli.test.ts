import { existsSync, readFileSync, rmSync } from 'node:fs';
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

import { claudeCode } from '../../../src/engines/claude-code.js';
import type { EngineCommand } from '../../../src/engines/index.js';
import {
  SCRIPT_USAGE,
  startAnthropicServer,
  type AnthropicServer,
  type Script,
} from '../../helpers/model-servers/anthropic.js';

/**
 * The real Claude Code CLI (the `@anthropic-ai/claude-code` dev dependency) run headless with
 * our adapter's command line against a scripted model server on 127.0.0.1: the tools really run
 * in a temporary git repository, and its stdout goes through our parser.
 */

const probe = probeCli(
  claudeCode,
  'Claude Code',
  'dev dependency @anthropic-ai/claude-code and its platform package',
);

/** Keeps the CLI offline apart from the scripted server, and fast when something fails. */
const QUIET = {
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_ERROR_REPORTING: '1',
  CLAUDE_CODE_MAX_RETRIES: '0',
};

/**
 * Runs the CLI against the scripted server with a minimal environment (no ANTHROPIC_* or
 * CLAUDE* of the test runner).
 */
function runClaude(
  cmd: EngineCommand,
  opts: { cwd: string; home: string; tmp: string; server: AnthropicServer; timeoutMs: number },
): Promise<Run> {
  return runCli(cmd, claudeCode.parser(), {
    cwd: opts.cwd,
    timeoutMs: opts.timeoutMs,
    env: {
      PATH,
      HOME: opts.home,
      TMPDIR: opts.tmp,
      LANG: 'C.UTF-8',
      ...QUIET,
      ...cmd.env,
      ANTHROPIC_BASE_URL: opts.server.url,
      ANTHROPIC_API_KEY: 'test',
    },
  });
}

/** The tool_result blocks in the last user message of a recorded /v1/messages body. */
function toolResultsSent(body: unknown): Record<string, unknown>[] {
  const messages = (body as { messages?: unknown }).messages;
  if (!Array.isArray(messages)) return [];
  const last = messages[messages.length - 1] as { role?: string; content?: unknown } | undefined;
  if (last?.role !== 'user' || !Array.isArray(last.content)) return [];
  return (last.content as Record<string, unknown>[]).filter((b) => b.type === 'tool_result');
}

describe.skipIf(!probe.ok)(
  `Claude Code CLI (real binary${probe.ok ? ` ${probe.version}` : ''}, scripted model server)`,
  () => {
    let root: string;
    let worktree: string;
    let home: string;
    let tmp: string;
    let server: AnthropicServer | undefined;

    beforeEach(() => {
      ({ root, worktree, home, tmp } = makeSandbox('fleet-claude-real-'));
    });

    afterEach(async () => {
      await server?.close();
      server = undefined;
      rmSync(root, { recursive: true, force: true });
    });

    it('yolo: runs the scripted Write, and the adapter captures events, tokens, cost and turns', async () => {
      const content = 'hello from the scripted model\n';
      const file = join(worktree, 'hello.txt');
      const script: Script = [
        [
          { type: 'text', text: "I'll create hello.txt." },
          { type: 'tool_use', name: 'Write', input: { file_path: file, content } },
        ],
        [{ type: 'text', text: 'done' }],
      ];
      server = await startAnthropicServer(script);
      const cmd = claudeCode.command({
        prompt: 'Create hello.txt',
        yolo: true,
        model: 'claude-sonnet-4-5',
        maxTurns: 5,
      });
      const run = await runClaude(cmd, { cwd: worktree, home, tmp, server, timeoutMs: 25_000 });

      expect(run.code, explain(run)).toBe(0);
      expect(existsSync(file)).toBe(true);
      expect(readFileSync(file, 'utf8')).toBe(content);
      expect(gitStatus(worktree)).toBe('?? hello.txt');

      // The server played both turns, and the second request carried the Write's result.
      expect(server.turnsPlayed).toBe(2);
      expect(server.overruns).toBe(0);
      // Quiet offline: nothing but the connectivity check and the two model requests.
      expect(server.requests.filter((r) => r.handled !== 'head' && r.handled !== 'turn')).toEqual(
        [],
      );
      const [first, second] = server.turnRequests();
      expect(toolResultsSent(first?.body)).toEqual([]);
      const sent = toolResultsSent(second?.body);
      expect(sent).toHaveLength(1);
      expect(sent[0]?.tool_use_id).toBe('toolu_script_0_1');
      expect(sent[0]?.is_error ?? false).toBe(false);

      // Events, in the order the CLI printed them.
      const types = run.events.map((e) => e.type);
      expect(types).not.toContain('raw');
      expect(types).not.toContain('error');
      expect(types[0]).toBe('session');
      expect(types[types.length - 1]).toBe('result');
      const [session] = dataOf(run.events, 'session');
      expect(session?.sessionId).toEqual(expect.any(String));
      expect(session?.model).toBe('claude-sonnet-4-5');
      const calls = dataOf(run.events, 'tool_call');
      expect(calls).toEqual([
        { id: 'toolu_script_0_1', name: 'Write', input: { file_path: file, content } },
      ]);
      const results = dataOf(run.events, 'tool_result');
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ id: 'toolu_script_0_1', isError: false });
      expect(String(results[0]?.output)).toContain('hello.txt');
      expect(types.indexOf('tool_call')).toBeLessThan(types.indexOf('tool_result'));
      expect(dataOf(run.events, 'message')).toEqual([
        { role: 'assistant', text: "I'll create hello.txt." },
        { role: 'assistant', text: 'done' },
      ]);
      expect(dataOf(run.events, 'result')).toEqual([
        { ok: true, subtype: 'success', message: 'done' },
      ]);
      expect(dataOf(run.events, 'usage')).toHaveLength(2);

      // Totals: two requests, each with SCRIPT_USAGE.
      const u = SCRIPT_USAGE;
      const resultLine = JSON.parse(run.lines[run.lines.length - 1] ?? '{}') as {
        total_cost_usd?: number;
        num_turns?: number;
      };
      const { summary } = run;
      expect(summary.ok).toBe(true);
      expect(summary.error).toBeNull();
      expect(summary.sessionId).toBe(session?.sessionId);
      expect(summary.insights).toMatchObject({
        model: 'claude-sonnet-4-5',
        tokensIn: 2 * (u.input_tokens + u.cache_creation_input_tokens),
        tokensOut: 2 * u.output_tokens,
        tokensCached: 2 * u.cache_read_input_tokens,
        turns: 2,
        toolCalls: 1,
        estimated: false,
      });
      expect(resultLine.num_turns).toBe(2);
      expect(summary.insights.costUsd).toBeGreaterThan(0);
      expect(summary.insights.costUsd).toBe(resultLine.total_cost_usd);
      // The CLI prices the tokens itself, at Sonnet 4.5's list prices per million tokens: $3 in,
      // $3.75 cache write, $0.30 cache read, $15 out.
      const perTurn =
        (u.input_tokens * 3 +
          u.cache_creation_input_tokens * 3.75 +
          u.cache_read_input_tokens * 0.3 +
          u.output_tokens * 15) /
        1e6;
      expect(summary.insights.costUsd).toBeCloseTo(2 * perTurn, 12);
    }, 30_000);

    it('without yolo (dontAsk): the CLI refuses the Bash call, reports the denial and exits', async () => {
      const marker = join(worktree, 'pwned.txt');
      const script: Script = [
        [{ type: 'tool_use', name: 'Bash', input: { command: `echo hi > ${marker}` } }],
        [{ type: 'text', text: 'I was not allowed to run it.' }],
      ];
      server = await startAnthropicServer(script);
      const cmd = claudeCode.command({
        prompt: 'Run a command',
        yolo: false,
        model: 'claude-sonnet-4-5',
        maxTurns: 5,
      });
      expect(cmd.args).toEqual(expect.arrayContaining(['--permission-mode', 'dontAsk']));
      const run = await runClaude(cmd, { cwd: worktree, home, tmp, server, timeoutMs: 50_000 });

      expect(run.timedOut, explain(run)).toBe(false);
      expect(run.code, explain(run)).toBe(0);
      expect(existsSync(marker)).toBe(false);
      expect(gitStatus(worktree)).toBe('');

      // The model got the refusal as an error tool_result.
      const sent = toolResultsSent(server.turnRequests()[1]?.body);
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({ tool_use_id: 'toolu_script_0_0', is_error: true });

      expect(dataOf(run.events, 'tool_call')).toEqual([
        { id: 'toolu_script_0_0', name: 'Bash', input: { command: `echo hi > ${marker}` } },
      ]);
      const results = dataOf(run.events, 'tool_result');
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({ id: 'toolu_script_0_0', isError: true });
      const [result] = dataOf(run.events, 'result');
      expect(result).toMatchObject({
        ok: true,
        message: 'I was not allowed to run it.',
        permissionDenials: [{ id: 'toolu_script_0_0', name: 'Bash' }],
      });
      expect(run.summary.insights).toMatchObject({ turns: 2, toolCalls: 1, estimated: false });
    }, 60_000);
  },
);
