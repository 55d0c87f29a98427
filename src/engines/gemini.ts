import { estimateCostUsd } from '../core/index.js';
import { isRecord, parseJsonLine, rawLine, str, type JsonRecord } from './json-line.js';
import type { EventInput, Insights } from '../core/index.js';
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
 * Gemini CLI (`@google/gemini-cli`, observed at 0.61.0) run headless with
 * `--output-format stream-json`.
 *
 * @example
 * gemini.command({ prompt: 'fix the build', model: 'gemini-2.5-flash', yolo: true });
 * // gemini --output-format stream-json --yolo -m gemini-2.5-flash --prompt=fix the build
 */
export const gemini: Engine = {
  name: 'gemini',
  binary: 'gemini',
  versionArgs: ['--version'],
  command: geminiCommand,
  parser: createGeminiParser,
};

function geminiCommand(input: EngineRunInput): EngineCommand {
  const args = ['--output-format', 'stream-json'];
  // Without --yolo the CLI keeps its default approval mode. Headless, nobody can answer a
  // prompt, so its policy engine turns every "ask the user" into "deny": tools that need
  // approval (run_shell_command, write_file, replace) are refused and only read-only tools run.
  if (input.yolo) args.push('--yolo');
  if (input.model !== undefined) args.push('-m', input.model);
  // A session id, or `latest` (both observed). Usage after a resume counts only this process's
  // requests, not the earlier ones (02-resume reports one request's tokens).
  if (input.resumeSessionId !== undefined) args.push('--resume', input.resumeSessionId);
  // `--prompt=` rather than `-p <prompt>` (the same option, long name): given a next argument
  // that starts with "-" (a Markdown list: "- fix the build"), 0.61.0 takes it for a flag and
  // exits with "Not enough arguments following: p". Attached with "=", the value is taken
  // verbatim, newlines included (checked against the real CLI).
  // input.maxTurns is not passed: this version has no flag for it (only the settings file's
  // model.maxSessionTurns).
  args.push(`--prompt=${input.prompt}`);
  return {
    command: 'gemini',
    args,
    env: {
      // Otherwise the CLI relaunches itself as a child process and a SIGTERM sent to the parent
      // never reaches the agent (AGENT-CLIS.md).
      GEMINI_CLI_NO_RELAUNCH: 'true',
      // Folder trust is on by default in 0.61.0: headless in a folder nobody trusted
      // interactively (a fresh worktree), it exits with "Gemini CLI is not running in a trusted
      // directory", and an untrusted folder also downgrades --yolo to the default mode. The job
      // chose this workspace, so trust it. The variable rather than `--skip-trust`: the CLI
      // refuses unknown arguments, so a version without that flag would not start at all.
      GEMINI_CLI_TRUST_WORKSPACE: 'true',
    },
    stdin: 'ignore',
  };
}

interface Tokens {
  tokensIn?: number;
  tokensOut?: number;
  tokensCached?: number;
}

/**
 * Parses stream-json lines: `init`, `message` (role user | assistant, assistant text arriving as
 * `delta` chunks), `tool_use`, `tool_result`, `error` {severity, message} and `result` {status,
 * stats, error?}.
 *
 * Assistant deltas are joined into one `message` event per model turn, emitted when the turn
 * ends (the next structured line: a tool call, a result, …). One event per delta would spread a
 * sentence over many events in the job's permanent log and make Gemini's transcript unlike the
 * other engines' (Claude Code prints whole content blocks); live views still see the agent
 * `thinking` on every delta. The cost: text streamed after the last tool call of a run killed
 * before its `result` is not emitted (the interface has no end-of-stream hook).
 *
 * The CLI prints no per-request usage and no turn count: the `result` line's `stats` become one
 * `usage` event (the process's totals, `cumulative: true`), and `turns` counts model requests
 * from the lines, one per run of model output (text or tool calls) after the prompt or after
 * tool results: a lower bound, since a request that produced nothing printable is not seen.
 */
function createGeminiParser(): EngineParser {
  let sessionId: string | null = null;
  let initModel: string | undefined;
  let pending = '';
  const openTools = new Set<string>();
  let toolUses = 0;
  let turns = 0;
  /** Whether the model's output since the last prompt or tool result began a turn already. */
  let inTurn = false;
  let result: JsonRecord | null = null;
  let lastError: string | null = null;

  function flush(events: EventInput[]): EventInput[] {
    if (pending === '') return events;
    const message: EventInput = { type: 'message', data: { role: 'assistant', text: pending } };
    pending = '';
    return [message, ...events];
  }

  /** Model output (text or a tool call) after a prompt or a tool result: a new model turn. */
  function modelOutput(): void {
    if (!inTurn) turns++;
    inTurn = true;
  }

  function parse(line: string): ParsedLine {
    return parseJsonLine(line, (value) => handle(value, line));
  }

  function handle(value: JsonRecord, line: string): ParsedLine {
    switch (value.type) {
      case 'init': {
        const id = str(value.session_id);
        if (id === undefined) return rawLine(line);
        sessionId = id;
        initModel = str(value.model);
        inTurn = false;
        const data: JsonRecord = { sessionId: id };
        if (initModel !== undefined) data.model = initModel;
        return { events: flush([{ type: 'session', data }]), state: 'thinking' };
      }
      case 'message': {
        const text = str(value.content);
        if (text === undefined || (value.role !== 'assistant' && value.role !== 'user'))
          return rawLine(line);
        if (value.role === 'assistant') modelOutput();
        else inTurn = false;
        if (value.role === 'assistant' && value.delta === true) {
          pending += text;
          return { events: [], state: 'thinking' };
        }
        return {
          events: flush([{ type: 'message', data: { role: value.role, text } }]),
          state: 'thinking',
        };
      }
      case 'tool_use': {
        const id = str(value.tool_id);
        const name = str(value.tool_name);
        if (id === undefined || name === undefined) return rawLine(line);
        toolUses++;
        modelOutput();
        openTools.add(id);
        const input = isRecord(value.parameters) ? value.parameters : {};
        return {
          events: flush([{ type: 'tool_call', data: { id, name, input } }]),
          state: 'acting',
        };
      }
      case 'tool_result': {
        const id = str(value.tool_id);
        if (id === undefined) return rawLine(line);
        openTools.delete(id);
        inTurn = false;
        const data: JsonRecord = { id, isError: value.status !== 'success' };
        const output =
          str(value.output) ?? (isRecord(value.error) ? str(value.error.message) : undefined);
        if (output !== undefined) data.output = output;
        // Parallel tool calls: the agent acts until the last of them has reported.
        const state: AgentState = openTools.size > 0 ? 'acting' : 'thinking';
        return { events: flush([{ type: 'tool_result', data }]), state };
      }
      case 'error': {
        const message = str(value.message);
        if (message === undefined) return rawLine(line);
        const severity = str(value.severity);
        if (severity !== 'warning') lastError = message;
        const data: JsonRecord = { message };
        if (severity !== undefined) data.severity = severity;
        return { events: flush([{ type: 'error', data }]) };
      }
      case 'result': {
        if (value.status !== 'success' && value.status !== 'error') return rawLine(line);
        result = value;
        const data: JsonRecord = { ok: value.status === 'success' };
        if (value.status === 'error') {
          const error = isRecord(value.error) ? value.error : {};
          const subtype = str(error.type);
          if (subtype !== undefined) data.subtype = subtype;
          data.message = str(error.message) ?? 'the CLI reported an error without a message';
        }
        const events: EventInput[] = [{ type: 'result', data }];
        // The run's totals (cumulative, as Codex's): the CLI prints no per-request usage.
        const tokens = isRecord(value.stats) ? tokensOf(value.stats) : {};
        if (Object.keys(tokens).length > 0)
          events.unshift({ type: 'usage', data: { ...tokens, cumulative: true } });
        return { events: flush(events) };
      }
      default:
        return rawLine(line);
    }
  }

  function summary(): EngineSummary {
    const stats = result !== null && isRecord(result.stats) ? result.stats : null;
    const insights: Insights = {};
    const model = stats === null ? initModel : (mainModel(stats) ?? initModel);
    if (model !== undefined) insights.model = model;
    if (stats !== null) {
      Object.assign(insights, tokensOf(stats));
      const cost = estimateCost(stats, model);
      if (cost !== undefined) {
        insights.costUsd = cost;
        insights.estimated = true;
      }
    }
    // Counted from the lines when no `result` came (the run was killed).
    insights.toolCalls = count(stats?.tool_calls) ?? toolUses;
    if (turns > 0) insights.turns = turns;

    let ok: boolean | null = null;
    let error: string | null = lastError;
    if (result !== null) {
      ok = result.status === 'success';
      if (!ok) {
        const e = isRecord(result.error) ? result.error : {};
        error = str(e.message) ?? lastError ?? 'the CLI reported an error without a message';
      } else error = null;
    }
    return { insights, sessionId, ok, error };
  }

  return { parse, summary };
}

/**
 * Token counts of a `stats` object (the run's totals, or one entry of `stats.models`).
 * `input_tokens` includes the cached tokens and `input` is the uncached rest (01-main: 23602 =
 * 11802 + 11800); Fleet's `tokensIn` is the uncached part, as `estimateCostUsd` expects.
 * `output_tokens` leaves out thinking, which Gemini bills as output: it shows only in
 * `total_tokens` (03-resume-latest: 12026 = 12006 in + 17 out + 3 thinking), so Fleet's
 * `tokensOut` adds the difference.
 */
function tokensOf(stats: JsonRecord): Tokens {
  const tokens: Tokens = {};
  const cached = count(stats.cached);
  const inputTotal = count(stats.input_tokens);
  const uncached =
    count(stats.input) ??
    (inputTotal === undefined ? undefined : Math.max(0, inputTotal - (cached ?? 0)));
  if (uncached !== undefined) tokens.tokensIn = uncached;
  const out = count(stats.output_tokens);
  const total = count(stats.total_tokens);
  const thinking =
    total === undefined || inputTotal === undefined || out === undefined
      ? 0
      : Math.max(0, total - inputTotal - out);
  if (out !== undefined) tokens.tokensOut = out + thinking;
  if (cached !== undefined) tokens.tokensCached = cached;
  return tokens;
}

/**
 * The model that did the work. Without `-m` the session starts as `auto` and a small router
 * model picks the main one; `stats.models` then lists both (04-auto-model-bash), and the one
 * with the most tokens is the agent's model.
 */
function mainModel(stats: JsonRecord): string | undefined {
  if (!isRecord(stats.models)) return undefined;
  let best: string | undefined;
  let bestTokens = -1;
  for (const [name, s] of Object.entries(stats.models)) {
    if (!isRecord(s)) continue;
    const tokens = count(s.total_tokens) ?? 0;
    if (tokens > bestTokens) [best, bestTokens] = [name, tokens];
  }
  return best;
}

/**
 * Cost from the price table, per model when `stats.models` breaks the run down (the router
 * model is priced apart from the main one). Undefined when any model is not in the table: no
 * cost is better than a cost that leaves part of the run out.
 */
function estimateCost(stats: JsonRecord, model: string | undefined): number | undefined {
  const perModel = isRecord(stats.models)
    ? Object.entries(stats.models).filter((e): e is [string, JsonRecord] => isRecord(e[1]))
    : [];
  if (perModel.length === 0) return estimateCostUsd({ model, ...tokensOf(stats) }) ?? undefined;
  let total = 0;
  for (const [name, s] of perModel) {
    const cost = estimateCostUsd({ model: name, ...tokensOf(s) });
    if (cost === null) return undefined;
    total += cost;
  }
  return total;
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}
