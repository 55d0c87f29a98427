import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../src/core/index.js';
import { estimateCostUsd } from '../../src/core/index.js';
import type { AgentState, EngineParser } from '../../src/engines/engine.js';
import { pi } from '../../src/engines/pi.js';

function fixture(name: string): string[] {
  const text = readFileSync(new URL(`./fixtures/pi/${name}.jsonl`, import.meta.url), 'utf8');
  return text.split('\n').filter((line) => line !== '');
}

function feed(lines: string[], parser: EngineParser = pi.parser()) {
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

/** The session id of a recording's header line (its first line). */
function sessionOf(name: string): string {
  return (JSON.parse(fixture(name)[0] ?? '{}') as { id: string }).id;
}

/** The states a run went through, in order, without the lines that changed nothing. */
function changes(states: (AgentState | undefined)[]): AgentState[] {
  return states.filter((s): s is AgentState => s !== undefined);
}

// The recordings' model is a models.json entry named like a priced model; every scripted request
// reports 1000 prompt tokens (400 cached) and 50 completion tokens.
const MODEL = 'gpt-4.1';
const REQUEST = { tokensIn: 600, tokensOut: 50, tokensCached: 400 };
const PATH = '/home/dev/project/pi';

describe('pi command', () => {
  it('yolo: JSON mode, the model, every default tool, the prompt last, stdin closed', () => {
    expect(pi.command({ prompt: 'create hello.txt', model: 'fleet/gpt-4.1', yolo: true })).toEqual({
      command: 'pi',
      args: ['--mode', 'json', '--model', 'fleet/gpt-4.1', 'create hello.txt'],
      env: { PI_SKIP_VERSION_CHECK: '1', PI_TELEMETRY: '0' },
      stdin: 'ignore',
    });
  });

  it('without yolo keeps only the read-only tools, and leaves out --model when none is given', () => {
    expect(pi.command({ prompt: 'look around', yolo: false }).args).toEqual([
      '--mode',
      'json',
      '--tools',
      'read,grep,find,ls',
      'look around',
    ]);
  });

  it('resumes a session by id for a follow-up', () => {
    const { args } = pi.command({
      prompt: 'what did you do?',
      yolo: true,
      model: MODEL,
      resumeSessionId: '01a200e1-a4b7-75ba-a869-95b892bcdfd2',
    });
    expect(args).toEqual([
      '--mode',
      'json',
      '--model',
      MODEL,
      '--session',
      '01a200e1-a4b7-75ba-a869-95b892bcdfd2',
      'what did you do?',
    ]);
  });

  it('gives a prompt starting with "-" or "@" a leading space, so pi reads it as the message', () => {
    // pi 0.73.1 exits with "Unknown option: - fix the build" otherwise, and takes "@x" for a file.
    const list = '- fix the build\n- then run the tests';
    expect(pi.command({ prompt: list, yolo: true }).args.at(-1)).toBe(` ${list}`);
    expect(pi.command({ prompt: '--verbose is broken', yolo: true }).args.at(-1)).toBe(
      ' --verbose is broken',
    );
    expect(pi.command({ prompt: '@src/main.ts fails', yolo: true }).args.at(-1)).toBe(
      ' @src/main.ts fails',
    );
    expect(pi.command({ prompt: 'fix it\n- quickly', yolo: true }).args.at(-1)).toBe(
      'fix it\n- quickly',
    );
  });

  it('has no max-turns flag to pass', () => {
    expect(pi.command({ prompt: 'go', yolo: true, maxTurns: 3 }).args).toEqual([
      '--mode',
      'json',
      'go',
    ]);
  });

  it('names its binary and version arguments', () => {
    expect(pi.name).toBe('pi');
    expect(pi.binary).toBe('pi');
    expect(pi.versionArgs).toEqual(['--version']);
  });
});

describe('pi parser on recorded runs', () => {
  it('01-main: the prompt, a write call and its result, the answer, per-request usage', () => {
    const { events, states, summary } = run('01-main');
    const sessionId = sessionOf('01-main');
    expect(events).toEqual([
      { type: 'session', data: { sessionId } },
      { type: 'message', data: { role: 'user', text: 'Create hello.txt' } },
      { type: 'message', data: { role: 'assistant', text: "I'll create hello.txt." } },
      {
        type: 'tool_call',
        data: {
          id: 'call_script_0_1',
          name: 'write',
          input: { path: `${PATH}/hello.txt`, content: 'hello from the scripted model\n' },
        },
      },
      { type: 'usage', data: REQUEST },
      {
        type: 'tool_result',
        data: {
          id: 'call_script_0_1',
          isError: false,
          output: `Successfully wrote 30 bytes to ${PATH}/hello.txt`,
        },
      },
      { type: 'message', data: { role: 'assistant', text: 'Done: hello.txt is written.' } },
      { type: 'usage', data: REQUEST },
      { type: 'result', data: { ok: true, subtype: 'stop' } },
    ]);
    expect(changes(states)).toEqual(['thinking', 'acting', 'thinking', 'exited']);
    // The 21 message_update lines (streamed deltas) say nothing new and give no events.
    expect(states.filter((s) => s === undefined)).toHaveLength(26);
    const tokens = { tokensIn: 1200, tokensOut: 100, tokensCached: 800 };
    // pi priced the requests at 0 (no cost in models.json): the cost is Fleet's estimate.
    expect(summary).toEqual({
      sessionId,
      ok: true,
      error: null,
      insights: {
        model: MODEL,
        ...tokens,
        costUsd: estimateCostUsd({ model: MODEL, ...tokens }),
        estimated: true,
        turns: 2,
        toolCalls: 1,
      },
    });
    expect(summary.insights.costUsd).toBeCloseTo((1200 * 2 + 100 * 8 + 800 * 0.5) / 1e6, 12);
  });

  it('02-resume: the same session id, and only this process’s request counted', () => {
    const { events, summary } = run('02-resume');
    expect(sessionOf('02-resume')).toBe(sessionOf('01-main'));
    expect(events).toEqual([
      { type: 'session', data: { sessionId: sessionOf('01-main') } },
      { type: 'message', data: { role: 'user', text: 'what did you do?' } },
      { type: 'message', data: { role: 'assistant', text: 'I wrote hello.txt.' } },
      { type: 'usage', data: REQUEST },
      { type: 'result', data: { ok: true, subtype: 'stop' } },
    ]);
    expect(summary.insights).toMatchObject({ ...REQUEST, turns: 1, toolCalls: 0 });
  });

  it("03-bash-priced: reasoning, a failing command, and pi's own cost", () => {
    const { events, summary } = run('03-bash-priced');
    // models.json priced the model at $3 / $15 / $0.30 per million (input, output, cache read),
    // unlike Fleet's table for gpt-4.1 ($2 / $8 / $0.50): the cost must be pi's.
    const perRequest = (600 * 3 + 50 * 15 + 400 * 0.3) / 1e6;
    expect(events.map((e) => e.type)).toEqual([
      'session',
      'message',
      'thinking',
      'tool_call',
      'usage',
      'tool_result',
      'message',
      'usage',
      'result',
    ]);
    expect(events[2]).toEqual({ type: 'thinking', data: { text: 'The check needs a shell.' } });
    expect(events[3]).toEqual({
      type: 'tool_call',
      data: { id: 'call_script_0_1', name: 'bash', input: { command: 'echo checking && exit 3' } },
    });
    expect(events[4]?.data).toEqual({ ...REQUEST, costUsd: expect.closeTo(perRequest, 12) });
    expect(events[5]).toEqual({
      type: 'tool_result',
      data: {
        id: 'call_script_0_1',
        isError: true,
        output: 'checking\n\n\nCommand exited with code 3',
      },
    });
    expect(summary.ok).toBe(true);
    expect(summary.insights).toEqual({
      model: MODEL,
      tokensIn: 1200,
      tokensOut: 100,
      tokensCached: 800,
      costUsd: expect.closeTo(2 * perRequest, 12),
      estimated: false,
      turns: 2,
      toolCalls: 1,
    });
  });

  it('04-read-only: a write call without the write tool comes back as an error result', () => {
    const { events, summary } = run('04-read-only');
    expect(events.filter((e) => e.type === 'tool_call' || e.type === 'tool_result')).toEqual([
      {
        type: 'tool_call',
        data: {
          id: 'call_script_0_0',
          name: 'write',
          input: { path: `${PATH}/refused.txt`, content: 'no\n' },
        },
      },
      {
        type: 'tool_result',
        data: { id: 'call_script_0_0', isError: true, output: 'Tool write not found' },
      },
    ]);
    expect(summary.ok).toBe(true);
    expect(summary.insights).toMatchObject({ turns: 2, toolCalls: 1 });
  });

  it('05-fail500-retry: each failed request, the retry, and the final failure (exit 0)', () => {
    const { events, states, summary } = run('05-fail500-retry');
    const first = '500 scripted overload';
    const again = '500 scripted overload again';
    expect(events).toEqual([
      { type: 'session', data: { sessionId: sessionOf('05-fail500-retry') } },
      { type: 'message', data: { role: 'user', text: 'Create hello.txt' } },
      { type: 'error', data: { message: first } },
      { type: 'result', data: { ok: false, subtype: 'error', message: first } },
      { type: 'retry', data: { attempt: 1, maxAttempts: 1, delayMs: 50, message: first } },
      { type: 'error', data: { message: again } },
      { type: 'result', data: { ok: false, subtype: 'error', message: again } },
      { type: 'error', data: { message: again, retriesExhausted: true, attempt: 1 } },
    ]);
    expect(changes(states)).toEqual(['thinking', 'exited', 'waiting', 'thinking', 'exited']);
    // Failed requests used no tokens and cost nothing; they are not turns.
    expect(summary).toEqual({
      sessionId: sessionOf('05-fail500-retry'),
      ok: false,
      error: again,
      insights: {
        model: MODEL,
        tokensIn: 0,
        tokensOut: 0,
        tokensCached: 0,
        costUsd: 0,
        estimated: false,
        turns: 0,
        toolCalls: 0,
      },
    });
  });

  it('06-retry-recovers: a failed result superseded by the retry that worked', () => {
    const { types, summary } = run('06-retry-recovers');
    expect(types).toEqual([
      'session',
      'message',
      'error',
      'result',
      'retry',
      'message',
      'usage',
      'result',
    ]);
    expect(summary.ok).toBe(true);
    expect(summary.error).toBeNull();
    expect(summary.insights).toMatchObject({ ...REQUEST, turns: 1, estimated: true });
  });

  it('a retry pending when the output stops leaves the verdict open', () => {
    const lines = fixture('05-fail500-retry');
    const upToRetry = lines.slice(0, lines.findIndex((l) => l.includes('auto_retry_start')) + 1);
    const { summary } = feed(upToRetry);
    expect(summary.ok).toBeNull();
    expect(summary.error).toBeNull();
  });

  it('07-fail400: a request error pi does not retry', () => {
    const { events, summary } = run('07-fail400');
    expect(events.slice(2)).toEqual([
      { type: 'error', data: { message: '400 scripted bad request' } },
      {
        type: 'result',
        data: { ok: false, subtype: 'error', message: '400 scripted bad request' },
      },
    ]);
    expect(summary.ok).toBe(false);
    expect(summary.error).toBe('400 scripted bad request');
  });

  it.each(['08-sigterm', '09-sigint'])(
    '%s: killed while a tool runs, no verdict, the agent last seen acting',
    (name) => {
      const { types, states, summary } = run(name);
      expect(types).toEqual(['session', 'message', 'tool_call', 'usage']);
      expect(changes(states)).toEqual(['thinking', 'acting']);
      expect(summary.ok).toBeNull();
      expect(summary.error).toBeNull();
      expect(summary.sessionId).toBe(sessionOf(name));
      expect(summary.insights).toMatchObject({ ...REQUEST, turns: 1, toolCalls: 1 });
    },
  );

  it('gives no cost when neither pi nor the price table knows the model', () => {
    // 01-main with the model renamed to one no price table has.
    const lines = fixture('01-main').map((l) => l.replaceAll('"gpt-4.1"', '"scripted-model"'));
    const { summary } = feed(lines);
    expect(summary.insights).toEqual({
      model: 'scripted-model',
      tokensIn: 1200,
      tokensOut: 100,
      tokensCached: 800,
      turns: 2,
      toolCalls: 1,
    });
  });
});

describe('pi parser on lines it does not know', () => {
  it('keeps garbage, non-object JSON, unknown types and incomplete known lines as raw', () => {
    const parser = pi.parser();
    const lines = [
      'Warning: something pi printed',
      '[1,2,3]',
      '"text"',
      '{"no":"type"}',
      '{"type":"compaction_start","reason":"threshold"}',
      '{"type":"queue_update","steering":[],"followUp":[]}',
      '{"type":"session"}',
      '{"type":"message_end"}',
      '{"type":"message_end","message":{"role":"custom","content":"x"}}',
      '{"type":"message_end","message":{"role":"assistant","content":null}}',
      '{"type":"tool_execution_end","result":{}}',
      '{"type":"auto_retry_end","attempt":1}',
    ];
    for (const line of lines)
      expect(parser.parse(line), line).toEqual({ events: [{ type: 'raw', data: { line } }] });
    expect(parser.summary()).toEqual({
      sessionId: null,
      ok: null,
      error: null,
      insights: { turns: 0, toolCalls: 0 },
    });
  });

  it('gives no events for blank lines', () => {
    const parser = pi.parser();
    expect(parser.parse('')).toEqual({ events: [] });
    expect(parser.parse('   ')).toEqual({ events: [] });
  });

  it('keeps what it understands of an assistant message with an unknown block, and the line', () => {
    const line = JSON.stringify({
      type: 'message_end',
      message: {
        role: 'assistant',
        content: [
          { type: 'text', text: 'hello' },
          { type: 'image', data: 'AAAA', mimeType: 'image/png' },
        ],
        model: MODEL,
        usage: { input: 'many', output: -3, cacheRead: 1.5, cost: { total: 'free' } },
        stopReason: 'stop',
      },
    });
    const parser = pi.parser();
    expect(parser.parse(line)).toEqual({
      events: [
        { type: 'message', data: { role: 'assistant', text: 'hello' } },
        { type: 'raw', data: { line } },
      ],
      state: 'thinking',
    });
    // Counts that are not non-negative integers read as 0; nothing was used, nothing is priced.
    expect(parser.summary().insights).toEqual({
      model: MODEL,
      tokensIn: 0,
      tokensOut: 0,
      tokensCached: 0,
      costUsd: 0,
      estimated: false,
      turns: 1,
      toolCalls: 0,
    });
  });

  it('leaves out redacted thinking, whose text is not readable', () => {
    const line = JSON.stringify({
      type: 'message_end',
      message: {
        role: 'assistant',
        content: [{ type: 'thinking', thinking: '', thinkingSignature: 'opaque', redacted: true }],
        stopReason: 'stop',
      },
    });
    expect(pi.parser().parse(line)).toEqual({ events: [], state: 'thinking' });
  });
});
