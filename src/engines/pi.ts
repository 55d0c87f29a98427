import { estimateCostUsd, type EventInput, type Insights } from '../core/index.js';
import { count, isRecord, parseJsonLine, rawLine, str, type JsonRecord } from './json-line.js';
import type {
  AgentState,
  Engine,
  EngineCommand,
  EngineParser,
  EngineRunInput,
  EngineSummary,
  ParsedLine,
} from './engine.js';

/**
 * Pi (`@mariozechner/pi-coding-agent`, observed at 0.73.1) run headless with `--mode json`.
 * Observed facts (flags, line shapes, resume, retries, signals) are in `docs/engines-pi.md`.
 *
 * @example
 * pi.command({ prompt: 'fix the build', model: 'anthropic/claude-sonnet-4-5', yolo: true });
 * // pi --mode json --model anthropic/claude-sonnet-4-5 fix the build
 */
export const pi: Engine = {
  name: 'pi',
  binary: 'pi',
  // Printed on stderr: in a non-interactive mode pi routes console output away from stdout.
  versionArgs: ['--version'],
  command: piCommand,
  parser: () => createPiParser(),
};

/** The tools a run without yolo keeps: pi's read-only set (no bash, edit or write). */
export const PI_READ_ONLY_TOOLS = ['read', 'grep', 'find', 'ls'] as const;

/**
 * The command line for one headless run:
 *
 *   pi --mode json [--model M] [--tools read,grep,find,ls] [--session SESSION_ID] PROMPT
 *
 * - `--mode json` is pi's print mode (one prompt, then exit) with every session event as a JSON
 *   line on stdout. Stdin is closed: in this mode pi would read piped stdin into the prompt.
 * - `--model` takes an id or `provider/id` (a provider from pi's built-ins or the user's
 *   `models.json`), resolved by pi; an unknown one is an error on stderr with exit 1.
 * - Permissions: pi never asks (it has no permission prompts), so a yolo run gets every built-in
 *   tool it enables by default (read, bash, edit, write). Without yolo nobody may approve
 *   changes, as with the other engines: the run keeps only the read-only tools, and a call to
 *   another tool comes back to the model as an error result ("Tool write not found").
 * - A follow-up resumes with `--session SESSION_ID`, the id of the `session` header line. Pi
 *   looks the id up among the sessions of the current directory first: the resumed run must
 *   start in the same cwd. From another directory pi asks on the terminal whether to fork the
 *   session, and with stdin closed it prints nothing on stdout and exits 0.
 * - The prompt is the last argument. Pi has no `--` and parses every argument: one starting
 *   with "-" is an unknown option (exit 1) and one starting with "@" names a file to attach, so
 *   such a prompt gets a leading space, which reaches the model as part of the text. One
 *   argument is at most 128 KiB on Linux (MAX_ARG_STRLEN). Like interactive input, a prompt
 *   starting with "/" may expand a prompt template or skill the user has defined.
 * - `maxTurns` is not passed: pi has no such flag.
 * - Environment: no update check and no install telemetry (pi makes those requests only in
 *   interactive mode in 0.73.1; the variables keep it that way).
 */
function piCommand(input: EngineRunInput): EngineCommand {
  const args = ['--mode', 'json'];
  if (input.model !== undefined) args.push('--model', input.model);
  if (!input.yolo) args.push('--tools', PI_READ_ONLY_TOOLS.join(','));
  if (input.resumeSessionId !== undefined) args.push('--session', input.resumeSessionId);
  args.push(/^[-@]/.test(input.prompt) ? ` ${input.prompt}` : input.prompt);
  return {
    command: 'pi',
    args,
    env: { PI_SKIP_VERSION_CHECK: '1', PI_TELEMETRY: '0' },
    stdin: 'ignore',
  };
}

/** One model request's tokens in Fleet's terms, and what pi says it cost. */
interface RequestUsage {
  model: string | undefined;
  tokensIn: number;
  tokensOut: number;
  tokensCached: number;
  /** `usage.cost.total`: 0 when pi has no price for the model. */
  piCost: number;
}

/**
 * Maps pi's usage (`input`, `output`, `cacheRead`, `cacheWrite`: four counts, none inside
 * another). Fleet's `tokensIn` is input not served from the cache, so it is `input +
 * cacheWrite`; `tokensCached` is `cacheRead` (as for Claude Code).
 */
function requestUsage(message: JsonRecord): RequestUsage | undefined {
  const usage = message.usage;
  if (!isRecord(usage)) return undefined;
  const cost = isRecord(usage.cost) ? usage.cost.total : undefined;
  return {
    model: str(message.model),
    tokensIn: count(usage.input) + count(usage.cacheWrite),
    tokensOut: count(usage.output),
    tokensCached: count(usage.cacheRead),
    piCost: typeof cost === 'number' && Number.isFinite(cost) && cost > 0 ? cost : 0,
  };
}

/** The text of a message's content: a string, or its text blocks joined. */
function textOf(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  const texts = content.filter(isRecord).flatMap((b) => (b.type === 'text' ? [str(b.text)] : []));
  return texts.every((t) => t !== undefined) ? texts.join('') : undefined;
}

/**
 * A parser for `pi --mode json` output (0.73.1; fixtures in test/engines/fixtures/pi).
 *
 * Lines → events:
 * - `session` (the header: `{id, version, cwd}`) → session {sessionId}; state starting.
 * - `agent_start`, `turn_start`, `message_start` of an assistant message, `message_update`
 *   (streamed deltas; each repeats the partial message, and the message's `message_end` carries
 *   it whole) → no event, state thinking.
 * - `message_end` of a user message → message {role: user, text}. Of an assistant message (one
 *   per model request) → per content block thinking {text}, message {role: assistant, text} or
 *   tool_call {id, name, input}; then usage {tokensIn, tokensOut, tokensCached, costUsd?} when it
 *   used any tokens; then error {message} when the request failed (`stopReason` error or aborted:
 *   pi prints a failed request as an assistant message with `errorMessage`). State acting when
 *   it called tools, else thinking.
 * - `tool_execution_start` / `_update` → no event (the call was announced with its message),
 *   state acting; `tool_execution_end` → tool_result {id, output, isError}, state thinking once
 *   no tool runs. `message_*` of the `toolResult` message repeat it and give no event.
 * - `turn_end` (repeats the turn's messages) → no event.
 * - `agent_end` → result {ok, subtype: the last request's stopReason, message?}; state exited.
 * - `auto_retry_start` {attempt, maxAttempts, delayMs, errorMessage} → retry; state waiting.
 *   Pi decides to retry after `agent_end`, so a failed `result` can be followed by a retry and
 *   then a new `agent_start` … `result`. `auto_retry_end` with `success: false` → error (retries
 *   exhausted); with `success: true` → no event.
 * - a line of any other type (compaction, queue updates, extension messages), JSON that is not
 *   an object, a known line missing what it needs, and any non-JSON line → raw {line}.
 *
 * Summary: the verdict is the last `result` (none while a retry is pending), `turns` counts model
 * requests that did not fail, `toolCalls` the tool calls the model made. Pi prints no run
 * totals: tokens are summed over the assistant messages, which are per request (after a
 * `--session` resume only this process's requests count). Cost is pi's own (`usage.cost`, from
 * its price list or the user's `models.json`); for a request pi priced at 0 but that used tokens
 * (a model without a price in pi), it is estimated from Fleet's price table and the run's cost is
 * marked `estimated`; if that model is not in the table either, the run gets no cost.
 * `state` is returned only when a line changes it. The parser never throws.
 */
export function createPiParser(): EngineParser {
  let state: AgentState = 'starting';
  let sessionId: string | null = null;
  let model: string | undefined;
  const requests: RequestUsage[] = [];
  let turns = 0;
  let toolCalls = 0;
  const openTools = new Set<string>();
  /** The last assistant message's stopReason and error, for the next `agent_end`. */
  let last: { stopReason: string; error: string | undefined } | null = null;
  let verdict: { ok: boolean; error: string | null } | null = null;

  function parsed(events: EventInput[], next?: AgentState): ParsedLine {
    if (next === undefined || next === state) return { events };
    state = next;
    return { events, state };
  }

  function toolState(): AgentState {
    return openTools.size > 0 ? 'acting' : 'thinking';
  }

  function assistantEnd(message: JsonRecord, line: string): ParsedLine {
    if (!Array.isArray(message.content)) return rawLine(line);
    const stopReason = str(message.stopReason) ?? 'stop';
    const failed = stopReason === 'error' || stopReason === 'aborted';
    const events: EventInput[] = [];
    let unknown = false;
    let calls = 0;
    for (const block of message.content) {
      if (!isRecord(block)) {
        unknown = true;
        continue;
      }
      const text = block.type === 'text' ? str(block.text) : undefined;
      const thinking = block.type === 'thinking' ? str(block.thinking) : undefined;
      const id = block.type === 'toolCall' ? str(block.id) : undefined;
      const name = block.type === 'toolCall' ? str(block.name) : undefined;
      if (text !== undefined) {
        if (text !== '') events.push({ type: 'message', data: { role: 'assistant', text } });
      } else if (thinking !== undefined) {
        // Redacted thinking holds no readable text (the payload is in its signature).
        if (thinking !== '' && block.redacted !== true)
          events.push({ type: 'thinking', data: { text: thinking } });
      } else if (id !== undefined && name !== undefined) {
        calls++;
        const input = isRecord(block.arguments) ? block.arguments : {};
        events.push({ type: 'tool_call', data: { id, name, input } });
      } else unknown = true;
    }
    toolCalls += calls;
    if (!failed) turns++;
    model = str(message.model) ?? model;
    const usage = requestUsage(message);
    if (usage !== undefined) {
      requests.push(usage);
      if (usage.tokensIn + usage.tokensOut + usage.tokensCached > 0) {
        const data: JsonRecord = {
          tokensIn: usage.tokensIn,
          tokensOut: usage.tokensOut,
          tokensCached: usage.tokensCached,
        };
        if (usage.piCost > 0) data.costUsd = usage.piCost;
        events.push({ type: 'usage', data });
      }
    }
    const error = failed
      ? (str(message.errorMessage) ?? `the model request ended with "${stopReason}"`)
      : undefined;
    if (error !== undefined) events.push({ type: 'error', data: { message: error } });
    last = { stopReason, error };
    if (unknown) events.push({ type: 'raw', data: { line } });
    return parsed(events, calls > 0 ? 'acting' : 'thinking');
  }

  function messageEnd(value: JsonRecord, line: string): ParsedLine {
    const message = value.message;
    if (!isRecord(message)) return rawLine(line);
    switch (message.role) {
      case 'assistant':
        return assistantEnd(message, line);
      case 'user': {
        const text = textOf(message.content);
        if (text === undefined) return rawLine(line);
        return parsed([{ type: 'message', data: { role: 'user', text } }], 'thinking');
      }
      case 'toolResult':
        // The tool_execution_end before it said the same.
        return parsed([]);
      default:
        return rawLine(line);
    }
  }

  function toolEnd(value: JsonRecord, line: string): ParsedLine {
    const id = str(value.toolCallId);
    if (id === undefined) return rawLine(line);
    openTools.delete(id);
    const data: JsonRecord = { id, isError: value.isError === true };
    const output = isRecord(value.result) ? textOf(value.result.content) : undefined;
    if (output !== undefined) data.output = output;
    return parsed([{ type: 'tool_result', data }], toolState());
  }

  function agentEnd(): ParsedLine {
    openTools.clear();
    const ok = last === null || last.error === undefined;
    const error = last?.error ?? null;
    verdict = { ok, error };
    const data: JsonRecord = { ok };
    if (last !== null) data.subtype = last.stopReason;
    if (error !== null) data.message = error;
    last = null;
    return parsed([{ type: 'result', data }], 'exited');
  }

  function handle(value: JsonRecord, line: string): ParsedLine {
    switch (value.type) {
      case 'session': {
        const id = str(value.id);
        if (id === undefined) return rawLine(line);
        sessionId = id;
        return parsed([{ type: 'session', data: { sessionId: id } }], 'starting');
      }
      case 'agent_start':
        verdict = null;
        return parsed([], 'thinking');
      case 'turn_start':
        return parsed([], 'thinking');
      case 'message_start':
      case 'message_update': {
        if (!isRecord(value.message)) return rawLine(line);
        return parsed([], value.message.role === 'assistant' ? 'thinking' : undefined);
      }
      case 'message_end':
        return messageEnd(value, line);
      case 'tool_execution_start':
      case 'tool_execution_update': {
        const id = str(value.toolCallId);
        if (id === undefined) return rawLine(line);
        openTools.add(id);
        return parsed([], 'acting');
      }
      case 'tool_execution_end':
        return toolEnd(value, line);
      case 'turn_end':
        return isRecord(value.message) ? parsed([]) : rawLine(line);
      case 'agent_end':
        return agentEnd();
      case 'auto_retry_start': {
        // The failed result just printed is not the last word: pi tries again.
        verdict = null;
        const data: JsonRecord = { attempt: count(value.attempt) };
        if (typeof value.maxAttempts === 'number') data.maxAttempts = value.maxAttempts;
        if (typeof value.delayMs === 'number') data.delayMs = value.delayMs;
        const message = str(value.errorMessage);
        if (message !== undefined) data.message = message;
        return parsed([{ type: 'retry', data }], 'waiting');
      }
      case 'auto_retry_end': {
        if (typeof value.success !== 'boolean') return rawLine(line);
        if (value.success) return parsed([]);
        const message = str(value.finalError) ?? 'the model request failed after retries';
        verdict = { ok: false, error: message };
        return parsed([
          {
            type: 'error',
            data: { message, retriesExhausted: true, attempt: count(value.attempt) },
          },
        ]);
      }
      default:
        return rawLine(line);
    }
  }

  function parse(line: string): ParsedLine {
    return parseJsonLine(line, (value) => handle(value, line));
  }

  function summary(): EngineSummary {
    const insights: Insights = { turns, toolCalls };
    if (model !== undefined) insights.model = model;
    if (requests.length > 0) {
      insights.tokensIn = requests.reduce((n, r) => n + r.tokensIn, 0);
      insights.tokensOut = requests.reduce((n, r) => n + r.tokensOut, 0);
      insights.tokensCached = requests.reduce((n, r) => n + r.tokensCached, 0);
      const cost = runCost(requests);
      if (cost !== undefined) {
        insights.costUsd = cost.usd;
        insights.estimated = cost.estimated;
      }
    }
    return {
      insights,
      sessionId,
      ok: verdict?.ok ?? null,
      error: verdict?.error ?? null,
    };
  }

  return { parse, summary };
}

/**
 * The run's cost: pi's own per request, or for a request pi priced at 0 although it used tokens,
 * Fleet's estimate. Undefined when such a request's model is not in Fleet's table either: no
 * cost is better than one that leaves part of the run out.
 */
function runCost(requests: RequestUsage[]): { usd: number; estimated: boolean } | undefined {
  let usd = 0;
  let estimated = false;
  for (const r of requests) {
    if (r.piCost > 0 || r.tokensIn + r.tokensOut + r.tokensCached === 0) {
      usd += r.piCost;
      continue;
    }
    const guess = estimateCostUsd(r);
    if (guess === null) return undefined;
    usd += guess;
    estimated = true;
  }
  return { usd, estimated };
}
