import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventInput, Insights } from '../../src/core/index.js';
import { claudeCode } from '../../src/engines/claude-code.js';
import {
  ENGINE_EVENT_TYPES,
  type AgentState,
  type EngineParser,
  type ParsedLine,
} from '../../src/engines/index.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'claude');
/** Transcripts printed by Claude Code 2.1.197 (requests.jsonl is what it sent, not output). */
const TRANSCRIPTS = readdirSync(FIXTURES)
  .filter((f) => /^\d\d-.*\.jsonl$/.test(f))
  .sort();

type Json = Record<string, unknown>;

function fixture(name: string): string[] {
  return readFileSync(join(FIXTURES, name), 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

function feed(lines: string[], parser: EngineParser = claudeCode.parser()) {
  const parsed: ParsedLine[] = lines.map((l) => parser.parse(l));
  const events = parsed.flatMap((p) => p.events);
  return {
    parser,
    parsed,
    events,
    types: events.map((e) => e.type),
    of: (type: string) => events.filter((e) => e.type === type).map((e) => e.data as Json),
    /** The state changes, in order. */
    states: parsed.flatMap((p) => (p.state === undefined ? [] : [p.state])),
    summary: parser.summary(),
  };
}

function resultLines(name: string): Json[] {
  return fixture(name)
    .map((l) => JSON.parse(l) as Json)
    .filter((v) => v.type === 'result');
}

/** What the summary must say, worked out from a result line by the documented mapping. */
function expectedTotals(result: Json) {
  const u = result.usage as Record<string, number>;
  return {
    tokensIn: u.input_tokens! + u.cache_creation_input_tokens!,
    tokensOut: u.output_tokens!,
    tokensCached: u.cache_read_input_tokens!,
    turns: result.num_turns,
    costUsd: result.total_cost_usd,
    estimated: false,
  };
}

describe('claudeCode engine', () => {
  it('names its binary and how to print its version', () => {
    expect(claudeCode.name).toBe('claude-code');
    expect(claudeCode.binary).toBe('claude');
    expect(claudeCode.versionArgs).toEqual(['--version']);
  });
});

describe('claudeCode.command', () => {
  const QUIET = {
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_ERROR_REPORTING: '1',
  };

  it('yolo: skips permissions, with IS_SANDBOX so it works as root', () => {
    expect(claudeCode.command({ prompt: 'fix the build', yolo: true })).toEqual({
      command: 'claude',
      args: [
        '-p',
        '--output-format',
        'stream-json',
        '--verbose',
        '--dangerously-skip-permissions',
        '--',
        'fix the build',
      ],
      env: { ...QUIET, IS_SANDBOX: '1' },
      stdin: 'ignore',
    });
  });

  it('not yolo: dontAsk, a permission mode that denies instead of waiting for an answer', () => {
    const cmd = claudeCode.command({ prompt: 'fix the build', yolo: false });
    expect(cmd).toEqual({
      command: 'claude',
      args: [
        '-p',
        '--output-format',
        'stream-json',
        '--verbose',
        '--permission-mode',
        'dontAsk',
        '--',
        'fix the build',
      ],
      env: QUIET,
      stdin: 'ignore',
    });
    expect(cmd.args).not.toContain('--dangerously-skip-permissions');
    expect(cmd.env).not.toHaveProperty('IS_SANDBOX');
  });

  it('passes model, max turns and the session to resume, before the prompt', () => {
    const cmd = claudeCode.command({
      prompt: 'and now the tests',
      model: 'claude-sonnet-4-5',
      maxTurns: 7,
      yolo: true,
      resumeSessionId: '75c9a468-77e8-4a28-9d37-79fbcab045c6',
    });
    expect(cmd.args).toEqual([
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--model',
      'claude-sonnet-4-5',
      '--max-turns',
      '7',
      '--dangerously-skip-permissions',
      '--resume',
      '75c9a468-77e8-4a28-9d37-79fbcab045c6',
      '--',
      'and now the tests',
    ]);
  });

  it('leaves out what was not asked for', () => {
    const { args } = claudeCode.command({ prompt: 'x', yolo: false });
    for (const flag of ['--model', '--max-turns', '--resume']) expect(args).not.toContain(flag);
  });

  it('keeps a prompt that looks like a flag one argument, after --', () => {
    const prompt = '- fix the build\n- --model is not a flag here';
    const { args } = claudeCode.command({ prompt, yolo: false });
    expect(args.slice(-2)).toEqual(['--', prompt]);
    expect(args.filter((a) => a === prompt)).toHaveLength(1);
  });
});

describe('claudeCode.parser on every recorded transcript', () => {
  it('finds the transcripts', () => {
    expect(TRANSCRIPTS).toHaveLength(9);
  });

  describe.each(TRANSCRIPTS)('%s', (name) => {
    const run = feed(fixture(name));

    it('understands every line: no raw events', () => {
      expect(run.of('raw')).toEqual([]);
    });

    it('emits only engine event types, as valid, JSON-safe EventInputs', () => {
      for (const e of run.events) {
        expect(ENGINE_EVENT_TYPES).toContain(e.type);
        expect(EventInput.parse(e)).toEqual(e);
        expect(JSON.parse(JSON.stringify(e))).toEqual(e);
      }
    });

    it('opens with the session from the init line, and keeps its id', () => {
      const init = JSON.parse(fixture(name)[0]!) as Json;
      expect(run.events[0]).toMatchObject({
        type: 'session',
        data: { sessionId: init.session_id, model: init.model, tools: init.tools },
      });
      expect(run.summary.sessionId).toBe(init.session_id);
    });

    it('summarizes into valid insights', () => {
      expect(Insights.parse(run.summary.insights)).toEqual(run.summary.insights);
    });

    it('counts one usage event per model request, never per line', () => {
      const ids = new Set(
        fixture(name)
          .map((l) => JSON.parse(l) as Json)
          .filter((v) => v.type === 'assistant')
          .map((v) => v.message as Json)
          .filter((m) => m.model !== '<synthetic>')
          .map((m) => m.id),
      );
      expect(run.of('usage')).toHaveLength(ids.size);
    });

    it('ends exited when, and only when, the CLI printed a result', () => {
      const results = resultLines(name);
      expect(run.of('result')).toHaveLength(results.length);
      if (results.length > 0) expect(run.states.at(-1)).toBe('exited');
      else expect(run.states).not.toContain('exited');
    });
  });
});

describe('claudeCode.parser, scenario by scenario', () => {
  it('01-main: thinking, text, a tool call and its result, then the result', () => {
    const run = feed(fixture('01-main.jsonl'));
    expect(run.types).toEqual([
      'session',
      'thinking',
      'usage',
      'message',
      'tool_call',
      'tool_result',
      'message',
      'usage',
      'result',
    ]);
    expect(run.of('session')[0]).toMatchObject({
      sessionId: '75c9a468-77e8-4a28-9d37-79fbcab045c6',
      model: 'claude-opus-4-8[1m]',
    });
    expect(run.of('session')[0]!.tools).toHaveLength(24);
    expect(run.of('thinking')).toEqual([{ text: 'Mock reasoning: I should write the file.' }]);
    expect(run.of('message')[0]).toEqual({ role: 'assistant', text: "I'll create hello.txt." });
    expect(run.of('tool_call')).toEqual([
      {
        id: 'toolu_mock_1',
        name: 'Write',
        input: {
          file_path: '/home/dev/project/claude/hello.txt',
          content: 'hello from mock model\n',
        },
      },
    ]);
    expect(run.of('tool_result')).toEqual([
      {
        id: 'toolu_mock_1',
        isError: false,
        output:
          'File created successfully at: /home/dev/project/claude/hello.txt (file state is current in your context — no need to Read it back)',
      },
    ]);
    // msg_mock_2 spans three lines, each repeating its usage: it is counted once.
    expect(run.of('usage')).toEqual([
      { tokensIn: 9397 + 100, tokensOut: 1, tokensCached: 9497 },
      { tokensIn: 9467 + 100, tokensOut: 1, tokensCached: 9567 },
    ]);
    expect(run.of('result')).toEqual([
      {
        ok: true,
        subtype: 'success',
        message:
          'Done. (tool said: "File created successfully at: /home/dev/project/claude/hello.txt (file state )',
      },
    ]);
  });

  it('01-main: the state moves thinking → acting → thinking → exited, line by line', () => {
    const run = feed(fixture('01-main.jsonl'));
    // init, thinking_tokens, thinking, text, tool_use, tool_result, text, result
    expect(run.parsed.map((p) => p.state)).toEqual<(AgentState | undefined)[]>([
      'thinking',
      undefined,
      undefined,
      undefined,
      'acting',
      'thinking',
      undefined,
      'exited',
    ]);
  });

  it('01-main: the summary is the result line, tokens mapped, the tool call counted', () => {
    const { summary } = feed(fixture('01-main.jsonl'));
    expect(summary).toEqual({
      insights: {
        model: 'claude-opus-4-8[1m]',
        tokensIn: 18864 + 200,
        tokensOut: 34,
        tokensCached: 19064,
        costUsd: 0.10595200000000002,
        estimated: false,
        turns: 2,
        toolCalls: 1,
      },
      sessionId: '75c9a468-77e8-4a28-9d37-79fbcab045c6',
      ok: true,
      error: null,
    });
  });

  it('02-resume: the resumed run reports the same session and only its own request', () => {
    const run = feed(fixture('02-resume.jsonl'));
    expect(run.types).toEqual(['session', 'message', 'usage', 'result']);
    expect(run.summary.sessionId).toBe(feed(fixture('01-main.jsonl')).summary.sessionId);
    expect(run.summary.ok).toBe(true);
    expect(run.summary.insights).toEqual({
      model: 'claude-opus-4-8',
      ...expectedTotals(resultLines('02-resume.jsonl')[0]!),
      toolCalls: 0,
    });
    expect(run.summary.insights).toMatchObject({ tokensIn: 9592, tokensOut: 17, turns: 1 });
  });

  it('03-partial-bash: stream events add no events beyond one usage per request', () => {
    const lines = fixture('03-partial-bash.jsonl');
    const run = feed(lines);
    expect(lines).toHaveLength(26);
    expect(run.types).toEqual([
      'session',
      'message',
      'tool_call',
      'usage',
      'tool_result',
      'message',
      'usage',
      'result',
    ]);
    lines.forEach((line, i) => {
      const v = JSON.parse(line) as Json;
      const isDelta = v.type === 'stream_event' && (v.event as Json).type === 'message_delta';
      if (v.type === 'stream_event' && !isDelta) expect(run.parsed[i]!.events).toEqual([]);
      if (isDelta) expect(run.parsed[i]!.events.map((e) => e.type)).toEqual(['usage']);
      if (v.type === 'system' && v.subtype === 'status') expect(run.parsed[i]!.events).toEqual([]);
    });
    expect(run.of('tool_call')[0]).toEqual({
      id: 'toolu_mock_5',
      name: 'Bash',
      input: {
        command: "printf '%s' 'hello from mock model\n' > /home/dev/project/claude/bash.txt",
        description: 'create file',
      },
    });
    expect(run.of('tool_result')[0]).toEqual({
      id: 'toolu_mock_5',
      isError: false,
      output: '(Bash completed with no output)',
    });
    expect(run.states).toEqual(['thinking', 'acting', 'thinking', 'exited']);
  });

  it('03-partial-bash: with message_delta counts, the usage events add up to the result', () => {
    const run = feed(fixture('03-partial-bash.jsonl'));
    const sum = (k: string) => run.of('usage').reduce((n, u) => n + (u[k] as number), 0);
    const { tokensIn, tokensOut, tokensCached } = expectedTotals(
      resultLines('03-partial-bash.jsonl')[0]!,
    );
    expect({
      tokensIn: sum('tokensIn'),
      tokensOut: sum('tokensOut'),
      tokensCached: sum('tokensCached'),
    }).toEqual({ tokensIn, tokensOut, tokensCached });
    expect(run.of('usage')[0]).toEqual({ tokensIn: 9498, tokensOut: 17, tokensCached: 9497 });
    expect(run.summary.insights).toEqual({
      model: 'claude-opus-4-8[1m]',
      ...expectedTotals(resultLines('03-partial-bash.jsonl')[0]!),
      toolCalls: 1,
    });
  });

  it('04-stdin-multiturn: two turns in one process add up; the cost is the last, not a sum', () => {
    const run = feed(fixture('04-stdin-multiturn.jsonl'));
    expect(run.types).toEqual([
      'session',
      'message',
      'usage',
      'tool_call',
      'tool_result',
      'message',
      'usage',
      'result',
      'session',
      'message',
      'usage',
      'result',
    ]);
    expect(run.states).toEqual(['thinking', 'acting', 'thinking', 'exited', 'thinking', 'exited']);
    const [first, second] = resultLines('04-stdin-multiturn.jsonl');
    const a = expectedTotals(first!);
    const b = expectedTotals(second!);
    // The last result's modelUsage is the process's running total: the sums must match it.
    const modelUsage = (second!.modelUsage as Record<string, Record<string, number>>)[
      'claude-opus-4-8[1m]'
    ]!;
    expect(run.summary.insights).toEqual({
      model: 'claude-opus-4-8[1m]',
      tokensIn: modelUsage.inputTokens! + modelUsage.cacheCreationInputTokens!,
      tokensOut: modelUsage.outputTokens!,
      tokensCached: modelUsage.cacheReadInputTokens!,
      costUsd: 0.159141,
      estimated: false,
      turns: 3,
      toolCalls: 1,
    });
    expect(run.summary.insights.tokensIn).toBe(a.tokensIn + b.tokensIn);
    expect(run.summary.insights.costUsd).toBe(second!.total_cost_usd);
    expect(run.summary.ok).toBe(true);
  });

  it('05-maxturns: fails with the subtype and the CLI reason; insights still counted', () => {
    const run = feed(fixture('05-maxturns.jsonl'));
    expect(run.types).toEqual([
      'session',
      'message',
      'usage',
      'tool_call',
      'tool_result',
      'result',
    ]);
    expect(run.of('result')).toEqual([
      { ok: false, subtype: 'error_max_turns', message: 'Reached maximum number of turns (1)' },
    ]);
    expect(run.summary).toEqual({
      insights: {
        model: 'claude-opus-4-8[1m]',
        tokensIn: 9497,
        tokensOut: 17,
        tokensCached: 9496,
        costUsd: 0.05278300000000001,
        estimated: false,
        turns: 2,
        toolCalls: 1,
      },
      sessionId: 'c3f30709-4a1e-4e6e-b0ec-67be3ed7b1fb',
      ok: false,
      error: 'error_max_turns: Reached maximum number of turns (1)',
    });
  });

  it('06-fail500: a retry (waiting), the API error, and a failure although the subtype says success', () => {
    const run = feed(fixture('06-fail500.jsonl'));
    expect(run.types).toEqual(['session', 'retry', 'error', 'result']);
    expect(run.of('retry')).toEqual([{ attempt: 1, status: 500, message: 'server_error' }]);
    expect(run.parsed[1]!.state).toBe('waiting');
    expect(run.states).toEqual(['thinking', 'waiting', 'exited']);
    const apiError =
      'API Error: 500 status code (no body). This is a server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway (127.0.0.1:8787).';
    expect(run.of('error')).toEqual([{ message: apiError }]);
    expect(run.of('result')).toEqual([{ ok: false, subtype: 'success', message: apiError }]);
    // The CLI's synthetic message is not a model request: no usage, no turn of its own.
    expect(run.of('usage')).toEqual([]);
    expect(run.summary).toEqual({
      insights: {
        model: 'claude-opus-4-8[1m]',
        tokensIn: 0,
        tokensOut: 0,
        tokensCached: 0,
        costUsd: 0,
        estimated: false,
        turns: 1,
        toolCalls: 0,
      },
      sessionId: '49304782-51f7-45be-a2e2-52f77a13a983',
      ok: false,
      error: apiError,
    });
  });

  it('07-sigint: the interruption is a user message and the run fails during execution', () => {
    const run = feed(fixture('07-sigint.jsonl'));
    expect(run.types).toEqual(['session', 'message', 'result']);
    expect(run.of('message')).toEqual([{ role: 'user', text: '[Request interrupted by user]' }]);
    expect(run.of('result')[0]).toMatchObject({ ok: false, subtype: 'error_during_execution' });
    expect(run.summary.ok).toBe(false);
    expect(run.summary.error).toMatch(/^error_during_execution: /);
    expect(run.summary.insights).toMatchObject({ costUsd: 0, turns: 2, toolCalls: 0 });
  });

  it('08-sigterm: no result line, so no verdict; insights are what was seen', () => {
    const run = feed(fixture('08-sigterm.jsonl'));
    expect(run.types).toEqual(['session']);
    expect(run.states).toEqual(['thinking']);
    expect(run.summary).toEqual({
      insights: { model: 'claude-opus-4-8[1m]', toolCalls: 0 },
      sessionId: 'f4885cc4-2a96-471e-b3c3-354538b5232f',
      ok: null,
      error: null,
    });
  });

  it('killed mid-run (01-main without its result): tokens and turns from the requests seen, no cost', () => {
    const lines = fixture('01-main.jsonl');
    const run = feed(lines.slice(0, -1));
    expect(run.summary.ok).toBeNull();
    expect(run.summary.error).toBeNull();
    expect(run.summary.insights).toEqual({
      model: 'claude-opus-4-8[1m]',
      tokensIn: 9497 + 9567,
      tokensOut: 2,
      tokensCached: 9497 + 9567,
      turns: 2,
      toolCalls: 1,
    });
    expect(run.states.at(-1)).toBe('thinking');
  });

  it('killed while a tool runs: the state is acting and the call is counted', () => {
    const run = feed(fixture('01-main.jsonl').slice(0, 5));
    expect(run.states.at(-1)).toBe('acting');
    expect(run.summary.insights.toolCalls).toBe(1);
    expect(run.summary.ok).toBeNull();
  });

  it('09-unknown-model: the model is the one the CLI was given, the cost the CLI computed', () => {
    const run = feed(fixture('09-unknown-model.jsonl'));
    expect(run.types).toEqual(['session', 'message', 'usage', 'result']);
    expect(run.summary).toEqual({
      insights: {
        model: 'mock-model',
        ...expectedTotals(resultLines('09-unknown-model.jsonl')[0]!),
        toolCalls: 0,
      },
      sessionId: 'c9db9266-c427-499c-935a-ab4312b3d14b',
      ok: true,
      error: null,
    });
    expect(run.summary.insights.costUsd).toBe(0.052679);
  });
});

describe('claudeCode.parser, lines it does not understand', () => {
  const GARBAGE = [
    'not json at all',
    '{"type":"assistant",',
    '42',
    'null',
    '[]',
    '"a string"',
    'Error: something went wrong\r',
    '\u0000\u0001binary',
    'x'.repeat(100_000),
    '{}',
    '{"type":"mystery","payload":1}',
    '{"type":"system","subtype":"compact_boundary"}',
    '{"type":"system","subtype":"status","status":"compacting"}',
    '{"type":"system","subtype":"init"}',
    '{"type":"assistant"}',
    '{"type":"assistant","message":{"content":"not an array"}}',
    '{"type":"user","message":{}}',
    '{"type":"user","message":"hello"}',
    '{"type":"stream_event"}',
    '{"type":"result"}',
    '{"type":"assistant","message":{"id":"m","content":[{"type":"tool_use"}]}}',
    '{"type":"assistant","message":{"id":"m","content":[{"type":"server_tool_use","id":"s"}]}}',
  ];

  it.each(GARBAGE.map((line) => [line.slice(0, 60), line]))(
    'keeps %j as one raw event, state untouched',
    (_label, line) => {
      const parser = claudeCode.parser();
      let parsed: ParsedLine | undefined;
      expect(() => (parsed = parser.parse(line))).not.toThrow();
      expect(parsed).toEqual({ events: [{ type: 'raw', data: { line } }] });
    },
  );

  it('gives nothing for blank lines', () => {
    const parser = claudeCode.parser();
    for (const line of ['', '   ', '\r', '\t']) expect(parser.parse(line)).toEqual({ events: [] });
  });

  it('garbage between real lines changes neither the real events nor the summary', () => {
    const lines = fixture('01-main.jsonl');
    const clean = feed(lines);
    const mixed = feed(lines.flatMap((l, i) => [l, GARBAGE[i % GARBAGE.length]!]));
    expect(mixed.events.filter((e) => e.type !== 'raw')).toEqual(clean.events);
    expect(mixed.of('raw')).toHaveLength(lines.length);
    expect(mixed.summary).toEqual(clean.summary);
    expect(mixed.states).toEqual(clean.states);
  });

  it('a summary before any line is empty but valid', () => {
    expect(claudeCode.parser().summary()).toEqual({
      insights: { toolCalls: 0 },
      sessionId: null,
      ok: null,
      error: null,
    });
  });

  it('keeps the known blocks of a line and the line itself when one block is unknown', () => {
    const line = JSON.stringify({
      type: 'assistant',
      message: {
        id: 'msg_x',
        model: 'claude-opus-4-8',
        content: [
          { type: 'text', text: 'searching' },
          { type: 'web_search_tool_result', content: [] },
        ],
        usage: { input_tokens: 1, output_tokens: 1 },
      },
    });
    expect(claudeCode.parser().parse(line).events).toEqual([
      { type: 'message', data: { role: 'assistant', text: 'searching' } },
      { type: 'usage', data: { tokensIn: 1, tokensOut: 1, tokensCached: 0 } },
      { type: 'raw', data: { line } },
    ]);
  });
});

describe('claudeCode.parser, details', () => {
  const assistant = (id: string, block: Json) =>
    JSON.stringify({
      type: 'assistant',
      message: {
        id,
        model: 'claude-opus-4-8',
        content: [block],
        usage: {
          input_tokens: 10,
          cache_creation_input_tokens: 5,
          cache_read_input_tokens: 20,
          output_tokens: 3,
        },
      },
    });
  const toolResult = (id: string, content: unknown, isError = false) =>
    JSON.stringify({
      type: 'user',
      message: {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: id, content, is_error: isError }],
      },
    });

  it('stays acting until every parallel tool call has its result', () => {
    const run = feed([
      assistant('m1', { type: 'tool_use', id: 't1', name: 'Read', input: { file_path: 'a' } }),
      assistant('m1', { type: 'tool_use', id: 't2', name: 'Read', input: { file_path: 'b' } }),
      toolResult('t1', 'a'),
      toolResult('t2', 'b'),
    ]);
    expect(run.parsed.map((p) => p.state)).toEqual(['acting', undefined, undefined, 'thinking']);
    expect(run.of('usage')).toEqual([{ tokensIn: 15, tokensOut: 3, tokensCached: 20 }]);
    expect(run.summary.insights.toolCalls).toBe(2);
  });

  it('counts a tool_use line printed twice once', () => {
    const line = assistant('m1', { type: 'tool_use', id: 't1', name: 'Bash', input: {} });
    const run = feed([line, line]);
    expect(run.of('tool_call')).toHaveLength(2);
    expect(run.summary.insights.toolCalls).toBe(1);
    expect(run.of('usage')).toHaveLength(1);
  });

  it('joins the text parts of a tool result given as blocks, and keeps its error flag', () => {
    const run = feed([
      toolResult('t1', [
        { type: 'text', text: 'line one' },
        { type: 'image', source: {} },
        { type: 'text', text: 'line two' },
      ]),
      toolResult('t2', [], true),
    ]);
    expect(run.of('tool_result')).toEqual([
      { id: 't1', isError: false, output: 'line one\nline two' },
      { id: 't2', isError: true },
    ]);
  });

  it('skips empty thinking (a redacted block keeps only its signature)', () => {
    const run = feed([assistant('m1', { type: 'thinking', thinking: '', signature: 'sig' })]);
    expect(run.types).toEqual(['usage']);
    expect(run.states).toEqual(['thinking']);
  });

  it('reports the tool calls dontAsk refused (recorded with 2.1.197, not yolo)', () => {
    const denied =
      "Permission to use Bash has been denied because Claude Code is running in don't ask mode.";
    const run = feed([
      assistant('msg_1', {
        type: 'tool_use',
        id: 'toolu_1',
        name: 'Bash',
        input: { command: 'echo hi > rel-1.txt', description: 'touch' },
      }),
      toolResult('toolu_1', denied, true),
      JSON.stringify({
        type: 'result',
        subtype: 'success',
        is_error: false,
        num_turns: 2,
        result: 'Done.',
        session_id: '60843a36-0ba3-4db4-aaac-206fb52cc8c1',
        total_cost_usd: 0.00021,
        usage: {
          input_tokens: 20,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          output_tokens: 10,
        },
        permission_denials: [
          {
            tool_name: 'Bash',
            tool_use_id: 'toolu_1',
            tool_input: { command: 'echo hi > rel-1.txt', description: 'touch' },
          },
        ],
        terminal_reason: 'completed',
      }),
    ]);
    expect(run.of('tool_result')).toEqual([{ id: 'toolu_1', isError: true, output: denied }]);
    expect(run.of('result')).toEqual([
      {
        ok: true,
        subtype: 'success',
        message: 'Done.',
        permissionDenials: [{ id: 'toolu_1', name: 'Bash' }],
      },
    ]);
    expect(run.summary.sessionId).toBe('60843a36-0ba3-4db4-aaac-206fb52cc8c1');
  });

  it('a new init after a result starts a turn whose verdict is not known yet', () => {
    const lines = fixture('04-stdin-multiturn.jsonl');
    const firstResult = lines.findIndex((l) => l.startsWith('{"type":"result"'));
    const run = feed(lines.slice(0, firstResult + 3));
    expect(run.summary.ok).toBeNull();
    // The second turn's request (seen, not yet reported) adds to the first turn's totals.
    const first = expectedTotals(resultLines('04-stdin-multiturn.jsonl')[0]!);
    expect(run.summary.insights).toMatchObject({
      tokensIn: first.tokensIn + 9584,
      turns: (first.turns as number) + 1,
      costUsd: first.costUsd,
    });
  });

  it('a line of only unknown blocks keeps its usage but leaves the state alone', () => {
    const line = JSON.stringify({
      type: 'assistant',
      message: {
        id: 'msg_y',
        model: 'claude-opus-4-8',
        content: [{ type: 'server_tool_use', id: 'srv_1', name: 'web_search', input: {} }],
        usage: { input_tokens: 2, output_tokens: 1 },
      },
    });
    expect(claudeCode.parser().parse(line)).toEqual({
      events: [
        { type: 'usage', data: { tokensIn: 2, tokensOut: 1, tokensCached: 0 } },
        { type: 'raw', data: { line } },
      ],
    });
  });

  it("takes a streamed request's final counts from message_delta, keeping fields it leaves null", () => {
    const stream = (event: Json) => JSON.stringify({ type: 'stream_event', event });
    const start = {
      type: 'message_start',
      message: {
        id: 'msg_s',
        usage: { input_tokens: 10, cache_read_input_tokens: 7, output_tokens: 1 },
      },
    };
    const run = feed([
      stream(start),
      assistant('msg_s', { type: 'text', text: 'hi' }),
      stream({
        type: 'message_delta',
        delta: { stop_reason: 'end_turn' },
        usage: { input_tokens: null, output_tokens: 40 },
      }),
      stream({ type: 'message_stop' }),
    ]);
    expect(run.types).toEqual(['message', 'usage']);
    expect(run.of('usage')).toEqual([{ tokensIn: 10, tokensOut: 40, tokensCached: 7 }]);
    expect(run.summary.insights).toMatchObject({ tokensIn: 10, tokensOut: 40, turns: 1 });
  });

  it("takes the model from the result's modelUsage when no init line was seen", () => {
    const result = fixture('01-main.jsonl').at(-1)!;
    const { summary } = feed([result]);
    expect(summary.insights.model).toBe('claude-opus-4-8[1m]');
    expect(summary.sessionId).toBe('75c9a468-77e8-4a28-9d37-79fbcab045c6');
  });

  it('gives each parser its own state', () => {
    const lines = fixture('01-main.jsonl');
    const a = claudeCode.parser();
    const b = claudeCode.parser();
    for (const l of lines) a.parse(l);
    expect(b.summary().sessionId).toBeNull();
    expect(a.summary().ok).toBe(true);
  });
});
