import type { EventInput, Insights } from '../../core/index.js';
import type { AgentState, EngineParser, EngineSummary, ParsedLine } from '../engine.js';
import { assistantBlocks, userBlocks } from './blocks.js';
import { count, isRecord, parseJsonLine, rawLine, str, type JsonRecord } from '../json-line.js';
import { mainModel, readResult } from './result.js';
import { UsageTally, claudeUsage } from './usage.js';

/** The model name the CLI puts on messages it writes itself (an API error), not the model's. */
const SYNTHETIC_MODEL = '<synthetic>';

/**
 * A parser for `claude -p --output-format stream-json --verbose` output (observed with 2.1.197,
 * fixtures in test/engines/fixtures/claude).
 *
 * Lines → events:
 * - `system/init` → session {sessionId, model, tools}; state thinking (the first request is on
 *   its way). Each user turn of a `--input-format stream-json` process starts with its own init.
 * - `system/api_retry` → retry {attempt, status, message}; state waiting.
 * - `system/thinking_tokens` (a running estimate, one line per streamed chunk of thinking) and
 *   `system/status` "requesting" → no event, state thinking: they say the model is working, and
 *   the thinking text itself arrives whole in an assistant line; an event per tick would only
 *   bloat the job's permanent log.
 * - `assistant` (one line per content block, each repeating its message's usage) → thinking,
 *   message or tool_call per block; state acting after a tool_use (until every open tool call
 *   has its result), else thinking. A synthetic API-error message ("API Error: 500 …") → error.
 * - usage: one usage event per model request, de-duplicated by message id. Without partial
 *   messages it comes with the message's first line, whose `output_tokens` is the count at the
 *   start of the stream (usually 1): the result line has the true totals. With
 *   `--include-partial-messages` it waits for the stream's `message_delta`, which carries the
 *   final output count.
 * - `user` → tool_result per tool result (state as above) and message (role user) for text the
 *   CLI adds, such as "[Request interrupted by user]".
 * - `stream_event` (raw SSE events with `--include-partial-messages`) → no events, except the one
 *   usage event above: a delta per event would multiply the log for text that the assistant
 *   lines repeat whole. `message_start` sets the state to thinking.
 * - `result` → result {ok, subtype, message, permissionDenials?} (see `readResult`); state
 *   exited. Its totals go to the tally (see `UsageTally`).
 * - a line of any other type or subtype, JSON that is not an object, a known line missing what
 *   it needs, and any non-JSON line → raw {line}. Blank lines say nothing and give no event.
 *
 * `state` is returned only when a line changes it. The parser never throws.
 */
export function createClaudeCodeParser(): EngineParser {
  let state: AgentState = 'starting';
  let sessionId: string | null = null;
  let initModel: string | undefined;
  let usageModel: string | undefined;
  let verdict: { ok: boolean; error: string | null } | null = null;
  const tally = new UsageTally();
  const toolUses = new Set<string>();
  const openTools = new Set<string>();
  /** Message ids whose usage is recorded, and those whose usage event went out. */
  const requests = new Set<string>();
  const usageSent = new Set<string>();
  /** Message ids announced by a `message_start` stream event: their usage event waits. */
  const streamed = new Set<string>();
  const streamUsage = new Map<string, JsonRecord>();
  let streaming: string | undefined;

  function parsed(events: EventInput[], next?: AgentState): ParsedLine {
    if (next === undefined || next === state) return { events };
    state = next;
    return { events, state };
  }

  function toolState(): AgentState {
    return openTools.size > 0 ? 'acting' : 'thinking';
  }

  function usageEvent(id: string): EventInput[] {
    const tokens = tally.requestTokens(id);
    if (tokens === undefined || usageSent.has(id)) return [];
    usageSent.add(id);
    return [{ type: 'usage', data: { ...tokens } }];
  }

  function system(value: JsonRecord, line: string): ParsedLine {
    switch (value.subtype) {
      case 'init': {
        const id = str(value.session_id);
        if (id === undefined) return rawLine(line);
        sessionId = id;
        initModel = str(value.model) ?? initModel;
        // A new user turn: its verdict is not known until its own result line.
        verdict = null;
        const data: JsonRecord = { sessionId: id };
        if (initModel !== undefined) data.model = initModel;
        if (Array.isArray(value.tools))
          data.tools = value.tools.filter((t) => str(t) !== undefined);
        return parsed([{ type: 'session', data }], 'thinking');
      }
      case 'api_retry': {
        const data: JsonRecord = { attempt: count(value.attempt) };
        if (typeof value.error_status === 'number') data.status = value.error_status;
        const message = str(value.error);
        if (message !== undefined) data.message = message;
        return parsed([{ type: 'retry', data }], 'waiting');
      }
      case 'thinking_tokens':
        return parsed([], 'thinking');
      case 'status':
        return value.status === 'requesting' ? parsed([], 'thinking') : rawLine(line);
      default:
        return rawLine(line);
    }
  }

  function assistant(value: JsonRecord, line: string): ParsedLine {
    const message = value.message;
    if (!isRecord(message) || !Array.isArray(message.content)) return rawLine(line);
    const isError = str(value.error) !== undefined;
    const blocks = assistantBlocks(message.content, isError);
    // A line made only of blocks this adapter does not know says nothing about the state.
    const understood = blocks.events.length > 0 || !blocks.unknown;
    const events = blocks.events;
    for (const id of blocks.toolIds) {
      toolUses.add(id);
      openTools.add(id);
    }
    // Usage without a message id cannot be told apart from its repeats, so it is not counted.
    const id = str(message.id);
    if (id !== undefined && message.model !== SYNTHETIC_MODEL && isRecord(message.usage)) {
      if (!requests.has(id)) {
        requests.add(id);
        tally.request(id, claudeUsage(message.usage));
      }
      if (!streamed.has(id)) events.push(...usageEvent(id));
    }
    if (blocks.unknown) events.push({ type: 'raw', data: { line } });
    return parsed(events, isError || !understood ? undefined : toolState());
  }

  function user(value: JsonRecord, line: string): ParsedLine {
    if (!isRecord(value.message)) return rawLine(line);
    const blocks = userBlocks(value.message.content);
    for (const id of blocks.toolIds) openTools.delete(id);
    const events = blocks.events;
    const understood = events.length > 0 || !blocks.unknown;
    if (blocks.unknown) events.push({ type: 'raw', data: { line } });
    return parsed(events, understood ? toolState() : undefined);
  }

  function streamEvent(value: JsonRecord, line: string): ParsedLine {
    const event = value.event;
    if (!isRecord(event)) return rawLine(line);
    if (event.type === 'message_start') {
      const message = isRecord(event.message) ? event.message : {};
      const id = str(message.id);
      streaming = id;
      if (id !== undefined && isRecord(message.usage) && !requests.has(id)) {
        requests.add(id);
        streamed.add(id);
        streamUsage.set(id, { ...message.usage });
        tally.request(id, claudeUsage(message.usage));
      }
      return parsed([], 'thinking');
    }
    if (event.type === 'message_delta' && streaming !== undefined && streamed.has(streaming)) {
      const id = streaming;
      const usage = streamUsage.get(id);
      // The delta's counts are the message's totals so far (the final output count); a field it
      // leaves out or sends as null keeps its message_start value.
      if (usage !== undefined && isRecord(event.usage)) {
        for (const [k, v] of Object.entries(event.usage)) if (v !== null) usage[k] = v;
        tally.request(id, claudeUsage(usage));
      }
      return parsed(usageEvent(id));
    }
    if (event.type === 'message_stop' && streaming !== undefined) {
      streamUsage.delete(streaming);
      streaming = undefined;
    }
    return parsed([]);
  }

  function result(value: JsonRecord, line: string): ParsedLine {
    const verdictLine = readResult(value);
    if (verdictLine === undefined) return rawLine(line);
    tally.result(value);
    usageModel = mainModel(value.modelUsage) ?? usageModel;
    sessionId = str(value.session_id) ?? sessionId;
    openTools.clear();
    streaming = undefined;
    verdict = { ok: verdictLine.ok, error: verdictLine.error };
    return parsed([{ type: 'result', data: verdictLine.data }], 'exited');
  }

  function handle(value: JsonRecord, line: string): ParsedLine {
    switch (value.type) {
      case 'system':
        return system(value, line);
      case 'assistant':
        return assistant(value, line);
      case 'user':
        return user(value, line);
      case 'stream_event':
        return streamEvent(value, line);
      case 'result':
        return result(value, line);
      default:
        return rawLine(line);
    }
  }

  function parse(line: string): ParsedLine {
    return parseJsonLine(line, (value) => handle(value, line));
  }

  function summary(): EngineSummary {
    const insights: Insights = {};
    const model = initModel ?? usageModel;
    if (model !== undefined) insights.model = model;
    Object.assign(insights, tally.insights());
    insights.toolCalls = toolUses.size;
    return { insights, sessionId, ok: verdict?.ok ?? null, error: verdict?.error ?? null };
  }

  return { parse, summary };
}
