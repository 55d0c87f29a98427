import { estimateCostUsd, type EventInput, type Insights } from '../../core/index.js';
import type { EngineParser, EngineSummary, ParsedLine } from '../engine.js';
import { mapItem } from './items.js';
import { count, isRecord, parseJsonLine, rawLine, str, type JsonRecord } from '../json-line.js';

/** Token counts in Fleet's terms, from one `turn.completed` usage object. */
export interface CodexUsage {
  /** Uncached input: `input_tokens` minus `cached_input_tokens` (Codex counts cached in both). */
  tokensIn: number;
  /** `output_tokens`, which already includes the reasoning tokens. */
  tokensOut: number;
  tokensCached: number;
  /** `reasoning_output_tokens`, a part of `tokensOut`; informational, never added again. */
  tokensReasoning: number;
}

/**
 * Maps Codex's usage object. `output_tokens` is the Responses API's output count, which includes
 * the reasoning tokens (the recorded requests show `total = input + output` with reasoning inside
 * `output`), so adding `reasoning_output_tokens` would count them twice.
 * `cache_write_input_tokens` stays inside `input_tokens` and is priced as plain input.
 */
export function codexUsage(usage: JsonRecord): CodexUsage {
  const input = count(usage.input_tokens);
  const cached = Math.min(count(usage.cached_input_tokens), input);
  return {
    tokensIn: input - cached,
    tokensOut: count(usage.output_tokens),
    tokensCached: cached,
    tokensReasoning: count(usage.reasoning_output_tokens),
  };
}

export interface CodexParserOptions {
  /**
   * The model the run was started with (`EngineRunInput.model`). Codex does not print it, and
   * cost can only be estimated when it is known and priced.
   */
  model?: string;
}

const RECONNECT = /reconnecting/i;
const ATTEMPT = /(\d+)\s*\/\s*\d+/;

/**
 * A parser for `codex exec --json` output.
 *
 * Usage: Codex prints a usage object on each `turn.completed`, and it is CUMULATIVE over the
 * thread, not per request: after `resume` it includes every earlier run of that thread. The
 * parser reports it as it is. Each `usage` event carries the thread totals at that turn (with
 * `cumulative: true`), and `summary().insights` the last totals seen, so a resumed run's tokens
 * and estimated cost are the thread's totals so far. To get one run's own share, subtract the
 * insights of the run it resumed (same `sessionId`); never add the runs of one thread together.
 * `turns` counts the `turn.completed` lines of this process only (one per `codex exec`).
 *
 * Verdict: `turn.completed` → `ok: true`, `turn.failed` → `ok: false` with its message, each also
 * emitted as a `result` event. A process killed mid-turn (SIGINT, SIGTERM) prints neither, so
 * `ok` stays null.
 *
 * Top-level `error` lines: Codex prints its stream reconnects ("Reconnecting... 2/5") as `error`
 * lines; those become `retry` (state `waiting`). Any other top-level `error` is the fatal error
 * that the following `turn.failed` repeats; it becomes one `error` event, and the `turn.failed`
 * with the same message adds only the `result`.
 */
export function createCodexParser(options: CodexParserOptions = {}): EngineParser {
  let sessionId: string | null = null;
  let ok: boolean | null = null;
  let error: string | null = null;
  let usage: CodexUsage | null = null;
  let turns = 0;
  let toolCalls = 0;
  let retries = 0;
  let lastTopLevelError: string | null = null;
  const announced = new Set<string>();

  function handle(line: string, msg: JsonRecord): ParsedLine {
    switch (msg.type) {
      case 'thread.started': {
        const id = str(msg.thread_id);
        if (id === undefined) return rawLine(line);
        sessionId = id;
        return { events: [{ type: 'session', data: { sessionId: id } }] };
      }
      case 'turn.started':
        lastTopLevelError = null;
        return { events: [], state: 'thinking' };
      case 'item.started':
      case 'item.completed': {
        if (!isRecord(msg.item)) return rawLine(line);
        const phase = msg.type === 'item.started' ? 'started' : 'completed';
        const out = mapItem(phase, msg.item, announced);
        if (out === null) return rawLine(line);
        toolCalls += out.toolCalls;
        return out.state === undefined
          ? { events: out.events }
          : { events: out.events, state: out.state };
      }
      case 'turn.completed': {
        turns += 1;
        ok = true;
        error = null;
        const events: EventInput[] = [];
        if (isRecord(msg.usage)) {
          usage = codexUsage(msg.usage);
          events.push({ type: 'usage', data: { ...usage, cumulative: true } });
        }
        events.push({ type: 'result', data: { ok: true, subtype: 'turn.completed' } });
        return { events };
      }
      case 'turn.failed': {
        const message =
          (isRecord(msg.error) ? str(msg.error.message) : undefined) ??
          lastTopLevelError ??
          'turn failed';
        ok = false;
        error = message;
        const events: EventInput[] = [];
        if (message !== lastTopLevelError) events.push({ type: 'error', data: { message } });
        events.push({ type: 'result', data: { ok: false, subtype: 'turn.failed', message } });
        return { events };
      }
      case 'error': {
        const message = str(msg.message);
        if (message === undefined) return rawLine(line);
        if (RECONNECT.test(message)) {
          retries += 1;
          const n = ATTEMPT.exec(message);
          const attempt = n ? Number(n[1]) : retries;
          return { events: [{ type: 'retry', data: { attempt, message } }], state: 'waiting' };
        }
        lastTopLevelError = message;
        return { events: [{ type: 'error', data: { message } }] };
      }
      default:
        return rawLine(line);
    }
  }

  return {
    parse(line: string): ParsedLine {
      return parseJsonLine(line, (msg) => handle(line, msg));
    },

    summary(): EngineSummary {
      const insights: Insights = { turns, toolCalls };
      if (options.model) insights.model = options.model;
      if (usage !== null) {
        insights.tokensIn = usage.tokensIn;
        insights.tokensOut = usage.tokensOut;
        insights.tokensCached = usage.tokensCached;
        const cost = estimateCostUsd(insights);
        if (cost !== null) {
          insights.costUsd = cost;
          insights.estimated = true;
        }
      }
      return { insights, sessionId, ok, error };
    },
  };
}
