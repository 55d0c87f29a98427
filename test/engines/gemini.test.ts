import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../src/core/index.js';
import { estimateCostUsd } from '../../src/core/index.js';
import type { AgentState, EngineParser } from '../../src/engines/engine.js';
import { gemini } from '../../src/engines/gemini.js';

function fixture(name: string): string[] {
  const text = readFileSync(new URL(`./fixtures/gemini/${name}.jsonl`, import.meta.url), 'utf8');
  return text.split('\n').filter((line) => line !== '');
}

function feed(lines: string[], parser: EngineParser = gemini.parser()) {
  const events: EventInput[] = [];
  const states: (AgentState | undefined)[] = [];
  for (const line of lines) {
    const parsed = parser.parse(line);
    events.push(...parsed.events);
    states.push(parsed.state);
  }
  return { events, states, types: events.map((e) => e.type), summary: parser.summary() };
}

function run(name: string) {
  return feed(fixture(name));
}

const MAIN_SESSION = 'c63ccf99-1704-41dc-b479-1b23069f0452';
const FLASH = 'gemini-2.5-flash';

describe('gemini command', () => {
  it('runs headless with stream-json, yolo, model and the prompt', () => {
    expect(gemini.command({ prompt: 'create hello.txt', model: FLASH, yolo: true })).toEqual({
      command: 'gemini',
      args: ['--output-format', 'stream-json', '--yolo', '-m', FLASH, '--prompt=create hello.txt'],
      env: { GEMINI_CLI_NO_RELAUNCH: 'true', GEMINI_CLI_TRUST_WORKSPACE: 'true' },
      stdin: 'ignore',
    });
  });

  it('leaves out --yolo and -m when not asked for', () => {
    expect(gemini.command({ prompt: 'look around', yolo: false }).args).toEqual([
      '--output-format',
      'stream-json',
      '--prompt=look around',
    ]);
  });

  it('resumes a session for a follow-up', () => {
    const { args } = gemini.command({
      prompt: 'what did you do?',
      yolo: true,
      model: FLASH,
      resumeSessionId: MAIN_SESSION,
    });
    expect(args).toEqual([
      '--output-format',
      'stream-json',
      '--yolo',
      '-m',
      FLASH,
      '--resume',
      MAIN_SESSION,
      '--prompt=what did you do?',
    ]);
  });

  it('attaches the prompt so a leading dash or newlines stay part of it', () => {
    const prompt = '- fix the build\n- then run the tests';
    expect(gemini.command({ prompt, yolo: true }).args.at(-1)).toBe(`--prompt=${prompt}`);
  });

  it('names its binary and version arguments', () => {
    expect(gemini.name).toBe('gemini');
    expect(gemini.binary).toBe('gemini');
    expect(gemini.versionArgs).toEqual(['--version']);
  });
});

describe('gemini parser on recorded runs', () => {
  it('01-main: one message per assistant turn, the tool call and its result', () => {
    const { events, states, summary } = run('01-main');
    const toolId = 'write_file__write_file_1795288316976_0';
    expect(events).toEqual([
      { type: 'session', data: { sessionId: MAIN_SESSION, model: FLASH } },
      { type: 'message', data: { role: 'user', text: 'create hello.txt' } },
      { type: 'message', data: { role: 'assistant', text: "I'll create hello.txt." } },
      {
        type: 'tool_call',
        data: {
          id: toolId,
          name: 'write_file',
          input: {
            file_path: '/home/dev/project/gemini/hello.txt',
            content: 'hello from mock model\n',
          },
        },
      },
      { type: 'tool_result', data: { id: toolId, isError: false } },
      {
        type: 'message',
        data: {
          role: 'assistant',
          text:
            'Done. (tool write_file said: {"output":"Successfully created and wrote to new file: ' +
            '/home/dev/project/gemini/hello.txt. Here is)',
        },
      },
      {
        type: 'usage',
        data: { tokensIn: 11802, tokensOut: 40, tokensCached: 11800, cumulative: true },
      },
      { type: 'result', data: { ok: true } },
    ]);
    expect(states).toEqual([
      'thinking',
      'thinking',
      'thinking',
      'acting',
      'thinking',
      'thinking',
      'thinking',
      undefined,
    ]);
    // stats: input_tokens 23602 = input 11802 (uncached) + cached 11800.
    expect(summary).toEqual({
      sessionId: MAIN_SESSION,
      ok: true,
      error: null,
      insights: {
        model: FLASH,
        tokensIn: 11802,
        tokensOut: 40, // 34 + 6 thinking (total_tokens 23642 = 23602 + 34 + 6)
        tokensCached: 11800,
        costUsd: (11802 * 0.3 + 40 * 2.5 + 11800 * 0.075) / 1e6,
        estimated: true,
        toolCalls: 1,
        // Two runs of model output: before the tool call and after its result.
        turns: 2,
      },
    });
  });

  it.each([
    ['02-resume', 'Echo: what did you do? | history: 5 contents', 'what did you do?', 5987, 5987],
    ['03-resume-latest', 'Echo: and now? | history: 7 contents', 'and now?', 6003, 6003],
  ])('%s: continues the same session', (name, reply, asked, tokensIn, tokensCached) => {
    const { events, summary } = run(name);
    expect(events).toEqual([
      { type: 'session', data: { sessionId: MAIN_SESSION, model: FLASH } },
      { type: 'message', data: { role: 'user', text: asked } },
      { type: 'message', data: { role: 'assistant', text: reply } },
      { type: 'usage', data: { tokensIn, tokensOut: 20, tokensCached, cumulative: true } },
      { type: 'result', data: { ok: true } },
    ]);
    expect(summary.sessionId).toBe(MAIN_SESSION);
    expect(summary.ok).toBe(true);
    expect(summary.insights).toEqual({
      model: FLASH,
      tokensIn,
      tokensOut: 20,
      tokensCached,
      costUsd: estimateCostUsd({ model: FLASH, tokensIn, tokensOut: 20, tokensCached })!,
      estimated: true,
      toolCalls: 0,
      turns: 1,
    });
  });

  it('04-auto-model-bash: reports the main model and no cost for unpriced models', () => {
    const { types, events, summary } = run('04-auto-model-bash');
    expect(types).toEqual([
      'session',
      'message',
      'message',
      'tool_call',
      'tool_result',
      'message',
      'usage',
      'result',
    ]);
    expect(events[0]!.data).toEqual({
      sessionId: 'dcb60926-5977-4b49-8ae4-209759a7ad0b',
      model: 'auto',
    });
    expect(events[3]!.data).toMatchObject({
      name: 'run_shell_command',
      input: { description: 'create file' },
    });
    expect(events[4]!.data).toEqual({
      id: 'run_shell_command__run_shell_command_1795288325288_0',
      isError: false,
      output: '',
    });
    // Router gemini-3.5-flash-lite (876 tokens) and main gemini-3.8-flash (23273): neither is in
    // the price table, so no cost rather than a partial one.
    expect(summary.insights).toEqual({
      model: 'gemini-3.8-flash',
      tokensIn: 12045,
      tokensOut: 60,
      tokensCached: 12044,
      toolCalls: 1,
      turns: 2,
    });
    expect(summary.ok).toBe(true);
  });

  it('05-fail500: the result says the run failed, and why', () => {
    const { events, summary } = run('05-fail500');
    const message =
      '[API Error: {"error":{"code":500,"message":"mock internal error","status":"INTERNAL"}}]';
    // The stats of a run whose only request failed: all tokens 0.
    expect(events.map((e) => e.type)).toEqual(['session', 'message', 'usage', 'result']);
    expect(events[3]).toEqual({
      type: 'result',
      data: { ok: false, subtype: 'unknown', message },
    });
    expect(summary).toEqual({
      sessionId: '5a3d2d40-37a9-4dca-a7e2-8c6d64961cb5',
      ok: false,
      error: message,
      insights: {
        model: FLASH,
        tokensIn: 0,
        tokensOut: 0,
        tokensCached: 0,
        costUsd: 0,
        estimated: true,
        toolCalls: 0,
      },
    });
  });

  it.each([
    ['06-sigint', 'c1d9c389-80ae-42fc-a6b5-28e40a7aa8af', 'sigint.txt'],
    ['07-sigterm', 'c6005731-ead9-4e5d-a798-69c4ab4fd50e', 'sigterm.txt'],
  ])('%s: killed mid-tool, no result, no verdict', (name, sessionId, file) => {
    const { types, events, states, summary } = run(name);
    expect(types).toEqual(['session', 'message', 'message', 'tool_call']);
    expect(events[2]!.data).toEqual({ role: 'assistant', text: `I'll create ${file}.` });
    expect(states.at(-1)).toBe('acting');
    expect(summary).toEqual({
      sessionId,
      ok: null,
      error: null,
      // No stats without a result line: the tool call is counted from the lines.
      insights: { model: FLASH, toolCalls: 1, turns: 1 },
    });
  });

  it('08-sigterm-relaunch: a run the signal did not reach finished normally', () => {
    const { types, summary } = run('08-sigterm-relaunch');
    expect(types).toEqual([
      'session',
      'message',
      'message',
      'tool_call',
      'tool_result',
      'message',
      'usage',
      'result',
    ]);
    expect(summary.ok).toBe(true);
    expect(summary.sessionId).toBe('4a07ccd9-f272-4367-8c29-ced3bb9cdb77');
    expect(summary.insights).toMatchObject({
      tokensIn: 11816,
      tokensOut: 40,
      tokensCached: 11816,
      toolCalls: 1,
      estimated: true,
    });
    expect(summary.insights.costUsd).toBeCloseTo((11816 * 0.3 + 40 * 2.5 + 11816 * 0.075) / 1e6);
  });

  it.each([
    '01-main',
    '02-resume',
    '03-resume-latest',
    '04-auto-model-bash',
    '05-fail500',
    '06-sigint',
    '07-sigterm',
    '08-sigterm-relaunch',
  ])('%s: understands every line and keeps every assistant character', (name) => {
    const lines = fixture(name);
    const { types, events } = feed(lines);
    expect(types).not.toContain('raw');
    const streamed = lines
      .map((l) => JSON.parse(l) as { type: string; role?: string; content?: string })
      .filter((l) => l.type === 'message' && l.role === 'assistant')
      .map((l) => l.content)
      .join('');
    const emitted = events
      .filter((e) => e.type === 'message' && e.data?.role === 'assistant')
      .map((e) => e.data?.text)
      .join('');
    expect(emitted).toBe(streamed);
  });
});

describe('gemini parser on other lines', () => {
  it('keeps lines it does not understand as raw, and never throws', () => {
    const garbage = [
      'not json at all',
      '{"type":"mystery","x":1}',
      '[1,2,3]',
      'null',
      '42',
      '{"type":"init"}',
      '{"type":"message","role":"system","content":"?"}',
      '{"type":"tool_use","tool_name":"x"}',
      '{"type":"result","status":"maybe"}',
      '{"truncated": ',
    ];
    const parser = gemini.parser();
    for (const line of garbage)
      expect(parser.parse(line)).toEqual({ events: [{ type: 'raw', data: { line } }] });
    expect(parser.parse('')).toEqual({ events: [] });
    expect(parser.summary()).toEqual({
      insights: { toolCalls: 0 },
      sessionId: null,
      ok: null,
      error: null,
    });
  });

  it('a stray line does not split an assistant turn', () => {
    const { events } = feed([
      '{"type":"message","role":"assistant","content":"Hel","delta":true}',
      'warning: something odd',
      '{"type":"message","role":"assistant","content":"lo","delta":true}',
      '{"type":"result","status":"success","stats":{}}',
    ]);
    expect(events).toEqual([
      { type: 'raw', data: { line: 'warning: something odd' } },
      { type: 'message', data: { role: 'assistant', text: 'Hello' } },
      { type: 'result', data: { ok: true } },
    ]);
  });

  it('marks failed tools and stays acting until parallel tools have all reported', () => {
    const { events, states, summary } = feed([
      '{"type":"tool_use","tool_name":"read_file","tool_id":"a","parameters":{"path":"x"}}',
      '{"type":"tool_use","tool_name":"read_file","tool_id":"b","parameters":{"path":"y"}}',
      '{"type":"tool_result","tool_id":"a","status":"error","error":{"type":"not_found","message":"no x"}}',
      '{"type":"tool_result","tool_id":"b","status":"success","output":"y!"}',
    ]);
    expect(events.slice(2)).toEqual([
      { type: 'tool_result', data: { id: 'a', isError: true, output: 'no x' } },
      { type: 'tool_result', data: { id: 'b', isError: false, output: 'y!' } },
    ]);
    expect(states).toEqual(['acting', 'acting', 'acting', 'thinking']);
    expect(summary.insights.toolCalls).toBe(2);
  });

  it('reports error lines; an error-severity one explains a run that ended without result', () => {
    const { events, summary } = feed([
      '{"type":"error","severity":"warning","message":"Loop detected, stopping execution"}',
      '{"type":"error","severity":"error","message":"Maximum session turns exceeded"}',
    ]);
    expect(events).toEqual([
      {
        type: 'error',
        data: { message: 'Loop detected, stopping execution', severity: 'warning' },
      },
      { type: 'error', data: { message: 'Maximum session turns exceeded', severity: 'error' } },
    ]);
    expect(summary.ok).toBeNull();
    expect(summary.error).toBe('Maximum session turns exceeded');
  });

  it('prices each model of a multi-model run and sums them', () => {
    const { summary } = feed([
      '{"type":"init","session_id":"s","model":"auto"}',
      JSON.stringify({
        type: 'result',
        status: 'success',
        stats: {
          input_tokens: 3000,
          output_tokens: 300,
          cached: 1000,
          input: 2000,
          tool_calls: 0,
          models: {
            'gemini-2.5-flash-lite': { total_tokens: 150, input_tokens: 100, output_tokens: 50 },
            'gemini-2.5-pro': {
              total_tokens: 3150,
              input_tokens: 2900,
              output_tokens: 250,
              cached: 1000,
              input: 1900,
            },
          },
        },
      }),
    ]);
    expect(summary.insights.model).toBe('gemini-2.5-pro');
    // flash-lite has its own price (longest prefix wins over gemini-2.5-flash).
    const lite = (100 * 0.1 + 50 * 0.4) / 1e6;
    const pro = (1900 * 1.25 + 250 * 10 + 1000 * 0.31) / 1e6;
    expect(summary.insights.costUsd).toBeCloseTo(lite + pro, 12);
    expect(summary.insights).toMatchObject({
      tokensIn: 2000,
      tokensOut: 300,
      tokensCached: 1000,
      estimated: true,
    });
  });

  it('derives uncached input from input_tokens - cached when `input` is missing', () => {
    const { summary } = feed([
      '{"type":"init","session_id":"s","model":"gemini-2.5-flash"}',
      '{"type":"result","status":"success","stats":{"input_tokens":500,"output_tokens":7,"cached":200}}',
    ]);
    expect(summary.insights).toMatchObject({ tokensIn: 300, tokensCached: 200, tokensOut: 7 });
    expect(summary.insights.costUsd).toBeCloseTo((300 * 0.3 + 7 * 2.5 + 200 * 0.075) / 1e6, 12);
  });

  it('a whole (non-delta) assistant message is its own event', () => {
    const { events } = feed([
      '{"type":"message","role":"assistant","content":"partial ","delta":true}',
      '{"type":"message","role":"assistant","content":"Whole."}',
    ]);
    expect(events).toEqual([
      { type: 'message', data: { role: 'assistant', text: 'partial ' } },
      { type: 'message', data: { role: 'assistant', text: 'Whole.' } },
    ]);
  });
});
