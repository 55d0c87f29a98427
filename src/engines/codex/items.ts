import type { EventInput } from '../../core/index.js';
import type { AgentState } from '../engine.js';
import { isRecord, str, type JsonRecord } from '../json-line.js';

/** A tool as Fleet shows it: the call, and (once the item completed) its result. */
interface ToolView {
  name: string;
  input: JsonRecord;
  /** Present on `item.completed` only. */
  result?: { output?: string; isError: boolean; extra?: JsonRecord };
}

/** What one `item.started` / `item.completed` meant, or null when the item is not understood. */
export interface ItemOutcome {
  events: EventInput[];
  state?: AgentState;
  /** Tool calls newly announced by this line (for the `toolCalls` count). */
  toolCalls: number;
}

/**
 * Maps one Codex item. Text items (reasoning, agent_message) are emitted once, on
 * `item.completed`, which carries the final text. Tool items emit `tool_call` when they start and
 * `tool_result` when they complete; an item seen only completed (web_search, or a file_change
 * whose start was not printed) gets both at once. `announced` holds the ids of tool calls already
 * emitted and is updated here.
 */
export function mapItem(
  phase: 'started' | 'completed',
  item: JsonRecord,
  announced: Set<string>,
): ItemOutcome | null {
  const id = str(item.id);
  const type = str(item.type);
  if (id === undefined || type === undefined) return null;

  switch (type) {
    case 'reasoning':
    case 'agent_message': {
      if (phase === 'started') return { events: [], state: 'thinking', toolCalls: 0 };
      const text = str(item.text);
      if (text === undefined) return null;
      const event: EventInput =
        type === 'reasoning'
          ? { type: 'thinking', data: { text } }
          : { type: 'message', data: { role: 'assistant', text } };
      return { events: [event], state: 'thinking', toolCalls: 0 };
    }
    case 'error': {
      const message = str(item.message);
      if (message === undefined) return null;
      return phase === 'completed'
        ? { events: [errorItemEvent(message)], toolCalls: 0 }
        : { events: [], toolCalls: 0 };
    }
  }

  const tool = toolView(type, item, phase);
  if (tool === null) return null;
  const events: EventInput[] = [];
  let toolCalls = 0;
  if (!announced.has(id)) {
    announced.add(id);
    toolCalls = 1;
    events.push({ type: 'tool_call', data: { id, name: tool.name, input: tool.input } });
  }
  if (phase === 'started') return { events, state: 'acting', toolCalls };
  const r = tool.result ?? { isError: false };
  events.push({
    type: 'tool_result',
    data: {
      id,
      ...(r.output !== undefined ? { output: r.output } : {}),
      isError: r.isError,
      ...r.extra,
    },
  });
  return { events, state: 'thinking', toolCalls };
}

/**
 * Codex's notice for a model missing from its built-in metadata table (gpt-5, gpt-5.1, a custom
 * provider's model), printed as an `error` item although the run goes on, e.g.
 * "Model metadata for `gpt-5.1` not found. Defaulting to fallback metadata; this can degrade
 * performance and cause issues." (codex-cli 0.169.0; older versions end after "metadata.").
 */
const METADATA_FALLBACK =
  /^Model metadata for `[^`]*` not found\. Defaulting to fallback metadata\b/;

/**
 * An `error` item's event: the metadata fallback notice is a warning, kept as a `log` line (as
 * Codex prints it on stderr without `--json`), anything else an `error`.
 */
function errorItemEvent(message: string): EventInput {
  return METADATA_FALLBACK.test(message)
    ? {
        type: 'log',
        data: {
          stream: 'stderr',
          line: message,
          level: 'warning',
          code: 'model_metadata_fallback',
        },
      }
    : { type: 'error', data: { message } };
}

function toolView(type: string, item: JsonRecord, phase: 'started' | 'completed'): ToolView | null {
  const done = phase === 'completed';
  const status = str(item.status);
  switch (type) {
    case 'command_execution': {
      const command = str(item.command);
      if (command === undefined) return null;
      const exitCode = typeof item.exit_code === 'number' ? item.exit_code : null;
      return {
        name: 'bash',
        input: { command },
        ...(done && {
          result: {
            output: str(item.aggregated_output) ?? '',
            // A declined or killed command has no exit code: that is an error too.
            isError: exitCode !== 0,
            extra: { exitCode },
          },
        }),
      };
    }
    case 'file_change': {
      if (!Array.isArray(item.changes)) return null;
      const changes = item.changes.filter(isRecord);
      const output = changes.map((c) => `${str(c.kind) ?? '?'} ${str(c.path) ?? '?'}`).join('\n');
      return {
        name: 'apply_patch',
        input: { changes },
        ...(done && { result: { output, isError: status === 'failed' } }),
      };
    }
    case 'mcp_tool_call': {
      const server = str(item.server);
      const toolName = str(item.tool);
      if (server === undefined || toolName === undefined) return null;
      const error = isRecord(item.error) ? str(item.error.message) : undefined;
      return {
        name: `mcp__${server}__${toolName}`,
        input: isRecord(item.arguments) ? item.arguments : {},
        ...(done && {
          result: {
            output: error ?? mcpText(item.result),
            isError: error !== undefined || status === 'failed',
          },
        }),
      };
    }
    case 'web_search': {
      const query = str(item.query);
      if (query === undefined) return null;
      return { name: 'web_search', input: { query }, ...(done && { result: { isError: false } }) };
    }
    default:
      return null;
  }
}

/** The text blocks of an MCP result, joined; its JSON when it has none. */
function mcpText(result: unknown): string | undefined {
  if (!isRecord(result)) return undefined;
  const blocks = Array.isArray(result.content) ? result.content.filter(isRecord) : [];
  const texts = blocks.map((b) => str(b.text)).filter((t) => t !== undefined);
  return texts.length > 0 ? texts.join('\n') : JSON.stringify(result);
}
