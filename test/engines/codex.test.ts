import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventInput, InvalidInputError, Insights } from '../../src/core/index.js';
import {
  codex,
  codexProviderArgs,
  codexUsage,
  createCodexParser,
} from '../../src/engines/codex.js';
import {
  ENGINE_EVENT_TYPES,
  type EngineParser,
  type EngineSummary,
  type ParsedLine,
} from '../../src/engines/engine.js';

const FIXTURES = new URL('./fixtures/codex/', import.meta.url);

function fixture(name: string): string[] {
  return readFileSync(new URL(name, FIXTURES), 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

/** The model the CLI asked the mock server for, from requests.jsonl. */
function recordedModel(): string {
  const models = new Set(
    fixture('requests.jsonl')
      .map((l) => JSON.parse(l) as { model?: string })
      .flatMap((r) => (r.model === undefined ? [] : [r.model])),
  );
  expect(models.size).toBe(1);
  return [...models][0]!;
}
const MODEL = recordedModel();

interface Run {
  parsed: ParsedLine[];
  events: EventInput[];
  types: string[];
  summary: EngineSummary;
}

function run(name: string, parser: EngineParser = codex.parser({ model: MODEL })): Run {
  const parsed = fixture(name).map((l) => parser.parse(l));
  const events = parsed.flatMap((p) => p.events);
  return { parsed, events, types: events.map((e) => e.type), summary: parser.summary() };
}

function usageOf(name: string): Record<string, number> {
  const line = fixture(name)
    .map((l) => JSON.parse(l) as { type: string; usage?: Record<string, number> })
    .find((m) => m.type === 'turn.completed');
  return line!.usage!;
}

function expectValidEvents(events: EventInput[]): void {
  for (const e of events) {
    expect(ENGINE_EVENT_TYPES).toContain(e.type);
    expect(() => EventInput.parse(e)).not.toThrow();
  }
}

describe('codex engine', () => {
  it('names its binary and version args', () => {
    expect(codex.name).toBe('codex');
    expect(codex.binary).toBe('codex');
    expect(codex.versionArgs).toEqual(['--version']);
  });

  describe('command', () => {
    it('yolo: bypasses approvals and sandbox, prompt last, stdin closed', () => {
      expect(codex.command({ prompt: 'fix the bug', yolo: true, model: 'gpt-5.5' })).toEqual({
        command: 'codex',
        args: [
          'exec',
          '--json',
          '--skip-git-repo-check',
          '--dangerously-bypass-approvals-and-sandbox',
          '-m',
          'gpt-5.5',
          'fix the bug',
        ],
        env: {},
        stdin: 'ignore',
      });
    });

    it('not yolo: workspace-write sandbox that never asks for approval, no -m without a model', () => {
      const cmd = codex.command({ prompt: 'fix the bug', yolo: false });
      expect(cmd.args).toEqual([
        'exec',
        '--json',
        '--skip-git-repo-check',
        '-c',
        'approval_policy="never"',
        '-c',
        'sandbox_mode="workspace-write"',
        'fix the bug',
      ]);
      expect(cmd.args).not.toContain('--dangerously-bypass-approvals-and-sandbox');
      expect(cmd.args).not.toContain('-m');
      expect(cmd.stdin).toBe('ignore');
    });

    it('follow-up: resume THREAD_ID "message" after the options, same -m', () => {
      const cmd = codex.command({
        prompt: 'and now the tests',
        yolo: true,
        model: 'gpt-5.5',
        resumeSessionId: '01a1ff85-849b-7c01-bed3-5fa6b640ea71',
      });
      expect(cmd.args).toEqual([
        'exec',
        '--json',
        '--skip-git-repo-check',
        '--dangerously-bypass-approvals-and-sandbox',
        '-m',
        'gpt-5.5',
        'resume',
        '01a1ff85-849b-7c01-bed3-5fa6b640ea71',
        'and now the tests',
      ]);
    });

    it('ends options with -- before a prompt that starts with a dash', () => {
      const cmd = codex.command({ prompt: '- add tests\n- fix lint', yolo: false });
      expect(cmd.args.slice(-2)).toEqual(['--', '- add tests\n- fix lint']);
      const resumed = codex.command({ prompt: '--help me', yolo: true, resumeSessionId: 't1' });
      expect(resumed.args.slice(-4)).toEqual(['resume', 't1', '--', '--help me']);
    });

    it('ignores maxTurns (codex exec has no such limit) and passes no env', () => {
      const cmd = codex.command({ prompt: 'p', yolo: true, maxTurns: 3 });
      expect(cmd.args.join(' ')).not.toMatch(/turn/);
      expect(cmd.env).toEqual({});
    });
  });

  describe('codexProviderArgs', () => {
    it('returns the -c flags of a custom Responses provider', () => {
      expect(
        codexProviderArgs({
          name: 'mock',
          baseUrl: 'http://127.0.0.1:8080/v1',
          envKey: 'MOCK_API_KEY',
        }),
      ).toEqual([
        '-c',
        'model_provider="mock"',
        '-c',
        'model_providers.mock.name="mock"',
        '-c',
        'model_providers.mock.base_url="http://127.0.0.1:8080/v1"',
        '-c',
        'model_providers.mock.wire_api="responses"',
        '-c',
        'model_providers.mock.env_key="MOCK_API_KEY"',
      ]);
    });

    it('quotes values as TOML strings', () => {
      const args = codexProviderArgs({ name: 'p', baseUrl: 'http://h/"x"\\', envKey: 'K' });
      expect(args).toContain('model_providers.p.base_url="http://h/\\"x\\"\\\\"');
    });

    it('rejects a name that is not a TOML key and a bad env var name', () => {
      expect(() => codexProviderArgs({ name: 'a.b', baseUrl: 'http://h', envKey: 'K' })).toThrow(
        InvalidInputError,
      );
      expect(() => codexProviderArgs({ name: 'ok', baseUrl: '', envKey: 'K' })).toThrow(/baseUrl/);
      expect(() => codexProviderArgs({ name: 'ok', baseUrl: 'http://h', envKey: '1X' })).toThrow(
        /envKey/,
      );
    });
  });

  describe('codexUsage', () => {
    it('subtracts cached from input and keeps reasoning inside output', () => {
      expect(
        codexUsage({
          input_tokens: 100,
          cached_input_tokens: 40,
          output_tokens: 20,
          reasoning_output_tokens: 5,
        }),
      ).toEqual({ tokensIn: 60, tokensOut: 20, tokensCached: 40, tokensReasoning: 5 });
    });

    it('reads missing or bad fields as 0 and never goes negative', () => {
      expect(codexUsage({ input_tokens: 'x', cached_input_tokens: 50, output_tokens: -1 })).toEqual(
        { tokensIn: 0, tokensOut: 0, tokensCached: 0, tokensReasoning: 0 },
      );
    });
  });
});

describe('codex parser on recorded transcripts', () => {
  it('uses the model the recorded runs asked for', () => {
    expect(MODEL).toBe('gpt-5.5');
  });

  it('01-main: reasoning, message, a bash command, final message, thread totals', () => {
    const r = run('01-main.jsonl');
    expect(r.types).toEqual([
      'session',
      'thinking',
      'message',
      'tool_call',
      'tool_result',
      'message',
      'usage',
      'result',
    ]);
    expectValidEvents(r.events);
    expect(r.parsed.map((p) => p.state)).toEqual([
      undefined, // thread.started
      'thinking', // turn.started
      'thinking', // reasoning
      'thinking', // agent_message
      'acting', // command started
      'thinking', // command completed
      'thinking', // agent_message
      undefined, // turn.completed
    ]);
    expect(r.events[0]!.data).toEqual({ sessionId: '01a1ff85-849b-7c01-bed3-5fa6b640ea71' });
    expect(r.events[1]!.data).toEqual({
      text: '**Planning** Mock reasoning: I should write the file.',
    });
    expect(r.events[2]!.data).toEqual({ role: 'assistant', text: "I'll create hello.txt." });
    const command = `/bin/bash -lc "printf '%s\\\\n' 'hello from mock model' > hello.txt"`;
    expect(r.events[3]!.data).toEqual({ id: 'item_2', name: 'bash', input: { command } });
    expect(r.events[4]!.data).toEqual({ id: 'item_2', output: '', isError: false, exitCode: 0 });
    expect(r.events[6]!.data).toEqual({
      tokensIn: 7001,
      tokensOut: 34,
      tokensCached: 7001,
      tokensReasoning: 10,
      cumulative: true,
    });
    expect(r.events[7]!.data).toEqual({ ok: true, subtype: 'turn.completed' });

    const u = usageOf('01-main.jsonl');
    // gpt-5.5 is not in the price table: tokens are kept, cost stays unknown (no estimate).
    expect(r.summary).toEqual({
      insights: {
        model: 'gpt-5.5',
        tokensIn: u.input_tokens! - u.cached_input_tokens!,
        tokensOut: u.output_tokens,
        tokensCached: u.cached_input_tokens,
        turns: 1,
        toolCalls: 1,
      },
      sessionId: '01a1ff85-849b-7c01-bed3-5fa6b640ea71',
      ok: true,
      error: null,
    });
    expect(Insights.safeParse(r.summary.insights).success).toBe(true);
  });

  it('02-apply-patch: file_change becomes an apply_patch call and result', () => {
    const r = run('02-apply-patch.jsonl');
    expect(r.types).toEqual(['session', 'tool_call', 'tool_result', 'message', 'usage', 'result']);
    expectValidEvents(r.events);
    const changes = [{ path: '/home/dev/project/codex/patch.txt', kind: 'add' }];
    expect(r.events[1]!.data).toEqual({ id: 'item_0', name: 'apply_patch', input: { changes } });
    expect(r.events[2]!.data).toEqual({
      id: 'item_0',
      output: 'add /home/dev/project/codex/patch.txt',
      isError: false,
    });
    expect(r.parsed[2]!.state).toBe('acting');
    expect(r.parsed[3]!.state).toBe('thinking');
    expect(r.summary.sessionId).toBe('01a1ff85-892a-7170-bed3-783319e116b5');
    expect(r.summary.ok).toBe(true);
    expect(r.summary.insights).toMatchObject({
      tokensIn: 13924 - 6962,
      tokensOut: 34,
      tokensCached: 6962,
      turns: 1,
      toolCalls: 1,
    });
    expect(r.summary.insights.costUsd).toBeUndefined();
  });

  it('03-resume: same thread id; usage is the thread total including the first run', () => {
    const main = run('01-main.jsonl');
    const r = run('03-resume.jsonl');
    expect(r.types).toEqual(['session', 'message', 'usage', 'result']);
    expect(r.events[1]!.data).toEqual({
      role: 'assistant',
      text: 'Echo: what did you do? | history: 10 input items',
    });
    expect(r.summary.sessionId).toBe(main.summary.sessionId);
    const u = usageOf('03-resume.jsonl');
    expect(r.summary.insights).toEqual({
      model: 'gpt-5.5',
      tokensIn: u.input_tokens! - u.cached_input_tokens!, // 10599
      tokensOut: 51,
      tokensCached: 10598,
      turns: 1,
      toolCalls: 0,
    });
    // Cumulative: this run's own share is the difference from the run it resumed.
    expect(r.summary.insights.tokensIn! - main.summary.insights.tokensIn!).toBe(3598);
    expect(r.summary.insights.tokensOut! - main.summary.insights.tokensOut!).toBe(17);
  });

  it('04-resume-last: totals keep growing over the thread', () => {
    const r = run('04-resume-last.jsonl');
    expect(r.types).toEqual(['session', 'message', 'usage', 'result']);
    expect(r.summary.sessionId).toBe('01a1ff85-849b-7c01-bed3-5fa6b640ea71');
    expect(r.summary.insights).toMatchObject({
      tokensIn: 28472 - 14235,
      tokensOut: 68,
      tokensCached: 14235,
      turns: 1,
    });
    expect(r.summary.ok).toBe(true);
  });

  it('05-fail500: one error event, a failed result, ok false with the message, no usage', () => {
    const r = run('05-fail500.jsonl');
    const message = 'We’re currently experiencing high demand, which may cause temporary errors.';
    expect(r.types).toEqual(['session', 'error', 'result']);
    expect(r.events[1]!.data).toEqual({ message });
    expect(r.events[2]!.data).toEqual({ ok: false, subtype: 'turn.failed', message });
    expectValidEvents(r.events);
    expect(r.summary).toEqual({
      insights: { model: 'gpt-5.5', turns: 0, toolCalls: 0 },
      sessionId: '01a1ff85-90a5-7a52-a097-e3797de3ebff',
      ok: false,
      error: message,
    });
  });

  it.each([
    ['06-sigint.jsonl', '01a1ff85-92be-77c1-9bd5-2c32df5ffebf'],
    ['07-sigterm.jsonl', '01a1ff85-a283-7ef2-b6d3-125a0bdb2110'],
  ])('%s: killed mid-turn, no final event, so ok is null', (name, sessionId) => {
    const r = run(name);
    expect(r.types).toEqual(['session']);
    expect(r.parsed.at(-1)!.state).toBe('thinking');
    expect(r.summary).toEqual({
      insights: { model: 'gpt-5.5', turns: 0, toolCalls: 0 },
      sessionId,
      ok: null,
      error: null,
    });
  });

  it('without a model, or with an unpriced one, tokens are kept and cost stays undefined', () => {
    for (const parser of [codex.parser(), createCodexParser({ model: 'mock-model-1' })]) {
      const r = run('01-main.jsonl', parser);
      expect(r.summary.insights.tokensIn).toBe(7001);
      expect(r.summary.insights.costUsd).toBeUndefined();
      expect(r.summary.insights.estimated).toBeUndefined();
    }
    expect(codex.parser().summary().insights.model).toBeUndefined();
    expect(createCodexParser({ model: 'mock-model-1' }).summary().insights.model).toBe(
      'mock-model-1',
    );
  });
});

describe('codex parser on other lines', () => {
  const p = (): EngineParser => codex.parser({ model: 'gpt-5' });

  it('keeps non-JSON, non-object and unknown lines as raw', () => {
    const parser = p();
    for (const line of [
      'not json at all',
      '{"type":"thread.started"', // truncated
      '42',
      'null',
      '["type"]',
      '{"no":"type"}',
      '{"type":7}',
      '{"type":"session.configured","model":"x"}',
      '{"type":"item.updated","item":{"id":"i","type":"todo_list","items":[]}}',
      '{"type":"item.completed","item":{"id":"i","type":"todo_list","items":[]}}',
      '{"type":"item.completed","item":"nope"}',
      '{"type":"item.completed","item":{"type":"agent_message","text":"no id"}}',
      '{"type":"thread.started","thread_id":5}',
      '{"type":"error"}',
    ]) {
      expect(parser.parse(line)).toEqual({ events: [{ type: 'raw', data: { line } }] });
    }
    expect(parser.summary()).toEqual({
      insights: { model: 'gpt-5', turns: 0, toolCalls: 0 },
      sessionId: null,
      ok: null,
      error: null,
    });
  });

  it('ignores blank lines', () => {
    expect(p().parse('')).toEqual({ events: [] });
    expect(p().parse('   ')).toEqual({ events: [] });
  });

  it('maps reconnect errors to retry (waiting) with the attempt from the message', () => {
    const parser = p();
    const a = parser.parse('{"type":"error","message":"Reconnecting... 2/5"}');
    expect(a).toEqual({
      events: [{ type: 'retry', data: { attempt: 2, message: 'Reconnecting... 2/5' } }],
      state: 'waiting',
    });
    const b = parser.parse('{"type":"error","message":"stream disconnected; reconnecting"}');
    expect(b.events[0]!.data).toMatchObject({ attempt: 2 });
    expect(parser.summary().ok).toBeNull();
  });

  it('turn.failed with a new message emits its own error', () => {
    const parser = p();
    parser.parse('{"type":"error","message":"first"}');
    const r = parser.parse('{"type":"turn.failed","error":{"message":"second"}}');
    expect(r.events.map((e) => e.type)).toEqual(['error', 'result']);
    expect(parser.summary()).toMatchObject({ ok: false, error: 'second' });
    const bare = p();
    bare.parse('{"type":"turn.failed"}');
    expect(bare.summary()).toMatchObject({ ok: false, error: 'turn failed' });
  });

  it('maps a failing command: non-zero or missing exit code is an error', () => {
    const parser = p();
    const item = (status: string, exit: number | null) =>
      JSON.stringify({
        type: 'item.completed',
        item: {
          id: 'c1',
          type: 'command_execution',
          command: 'false',
          aggregated_output: 'boom\n',
          exit_code: exit,
          status,
        },
      });
    // Completed without a started line: both call and result.
    const r = parser.parse(item('failed', 1));
    expect(r.events).toEqual([
      { type: 'tool_call', data: { id: 'c1', name: 'bash', input: { command: 'false' } } },
      { type: 'tool_result', data: { id: 'c1', output: 'boom\n', isError: true, exitCode: 1 } },
    ]);
    const declined = parser.parse(item('declined', null).replace('"c1"', '"c2"'));
    expect(declined.events[1]!.data).toMatchObject({ isError: true, exitCode: null });
    expect(parser.summary().insights.toolCalls).toBe(2);
  });

  it('maps error items, failed patches, MCP calls and web searches', () => {
    const parser = p();
    expect(
      parser.parse('{"type":"item.completed","item":{"id":"e","type":"error","message":"warn"}}'),
    ).toEqual({ events: [{ type: 'error', data: { message: 'warn' } }] });

    const patch = parser.parse(
      JSON.stringify({
        type: 'item.completed',
        item: {
          id: 'f',
          type: 'file_change',
          changes: [{ path: 'a.ts', kind: 'update' }],
          status: 'failed',
        },
      }),
    );
    expect(patch.events.map((e) => e.type)).toEqual(['tool_call', 'tool_result']);
    expect(patch.events[1]!.data).toEqual({ id: 'f', output: 'update a.ts', isError: true });

    const mcp = {
      id: 'm',
      type: 'mcp_tool_call',
      server: 'fs',
      tool: 'read',
      arguments: { path: '/x' },
      result: null,
      error: null,
      status: 'in_progress',
    };
    expect(parser.parse(JSON.stringify({ type: 'item.started', item: mcp }))).toEqual({
      events: [
        { type: 'tool_call', data: { id: 'm', name: 'mcp__fs__read', input: { path: '/x' } } },
      ],
      state: 'acting',
    });
    const done = parser.parse(
      JSON.stringify({
        type: 'item.completed',
        item: {
          ...mcp,
          result: { content: [{ type: 'text', text: 'hello' }] },
          status: 'completed',
        },
      }),
    );
    expect(done.events).toEqual([
      { type: 'tool_result', data: { id: 'm', output: 'hello', isError: false } },
    ]);

    const search = parser.parse(
      '{"type":"item.completed","item":{"id":"w","type":"web_search","query":"vitest"}}',
    );
    expect(search.events.map((e) => e.type)).toEqual(['tool_call', 'tool_result']);
    expect(search.events[0]!.data).toEqual({
      id: 'w',
      name: 'web_search',
      input: { query: 'vitest' },
    });
    expect(parser.summary().insights.toolCalls).toBe(3);
  });

  it('counts every turn.completed and keeps the last (cumulative) usage', () => {
    const parser = p();
    const turn = (i: number, c: number, o: number) =>
      JSON.stringify({
        type: 'turn.completed',
        usage: { input_tokens: i, cached_input_tokens: c, output_tokens: o },
      });
    parser.parse(turn(1000, 0, 10));
    parser.parse(turn(2500, 1000, 30));
    expect(parser.summary().insights).toEqual({
      model: 'gpt-5',
      turns: 2,
      toolCalls: 0,
      tokensIn: 1500,
      tokensOut: 30,
      tokensCached: 1000,
      costUsd: (1500 * 1.25 + 30 * 10 + 1000 * 0.125) / 1e6,
      estimated: true,
    });
  });

  it('never throws and always returns known event types, whatever the line', () => {
    const jsonish = fc.oneof(
      fc.string(),
      fc.json(),
      fc
        .record({
          type: fc.constantFrom(
            'thread.started',
            'turn.started',
            'turn.completed',
            'turn.failed',
            'item.started',
            'item.completed',
            'item.updated',
            'error',
          ),
          thread_id: fc.anything(),
          message: fc.anything(),
          error: fc.anything(),
          usage: fc.anything(),
          item: fc.oneof(
            fc.anything(),
            fc.record({
              id: fc.oneof(fc.string(), fc.anything()),
              type: fc.constantFrom(
                'reasoning',
                'agent_message',
                'command_execution',
                'file_change',
                'mcp_tool_call',
                'web_search',
                'error',
                'todo_list',
              ),
              text: fc.anything(),
              command: fc.anything(),
              exit_code: fc.anything(),
              changes: fc.anything(),
              server: fc.anything(),
              tool: fc.anything(),
              arguments: fc.anything(),
              result: fc.anything(),
              query: fc.anything(),
            }),
          ),
        })
        .map((o) => JSON.stringify(o) ?? ''),
    );
    fc.assert(
      fc.property(fc.array(jsonish, { maxLength: 20 }), (lines) => {
        const parser = p();
        for (const line of lines) {
          const out = parser.parse(line);
          for (const e of out.events) expect(ENGINE_EVENT_TYPES).toContain(e.type);
        }
        const s = parser.summary();
        expect(Insights.safeParse(s.insights).success).toBe(true);
      }),
    );
  });
});
