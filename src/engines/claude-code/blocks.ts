import type { EventInput } from '../../core/index.js';
import { isRecord, str, type JsonRecord } from '../json-line.js';

/** The Fleet events of one line's content blocks. */
export interface MappedBlocks {
  events: EventInput[];
  /** Ids of the tool_use blocks (assistant) or of the tool_result blocks (user). */
  toolIds: string[];
  /** A block of a type this adapter does not know was left out (the caller keeps the line raw). */
  unknown: boolean;
}

/**
 * An assistant message's content: `thinking` → thinking, `text` → message (or `error` when the
 * line is the CLI's synthetic API-error message, which carries a top-level `error`), `tool_use`
 * → tool_call. Empty thinking or text (a redacted thinking block keeps only its signature) says
 * nothing and is skipped; `redacted_thinking` likewise.
 */
export function assistantBlocks(content: unknown[], isError: boolean): MappedBlocks {
  const out: MappedBlocks = { events: [], toolIds: [], unknown: false };
  for (const block of content) {
    if (!isRecord(block)) {
      out.unknown = true;
      continue;
    }
    switch (block.type) {
      case 'thinking': {
        const text = str(block.thinking);
        if (text) out.events.push({ type: 'thinking', data: { text } });
        break;
      }
      case 'redacted_thinking':
        break;
      case 'text': {
        const text = str(block.text);
        if (!text) break;
        out.events.push(
          isError
            ? { type: 'error', data: { message: text } }
            : { type: 'message', data: { role: 'assistant', text } },
        );
        break;
      }
      case 'tool_use': {
        const id = str(block.id);
        const name = str(block.name);
        if (id === undefined || name === undefined) {
          out.unknown = true;
          break;
        }
        const input = isRecord(block.input) ? block.input : {};
        out.events.push({ type: 'tool_call', data: { id, name, input } });
        out.toolIds.push(id);
        break;
      }
      default:
        out.unknown = true;
    }
  }
  return out;
}

/**
 * A user message's content: the CLI's tool results (`tool_result` → tool_result) and text the
 * CLI adds on the user's behalf ("[Request interrupted by user]" → message, role user). Images
 * in a tool result are left out of its text output; other block types are unknown.
 */
export function userBlocks(content: unknown): MappedBlocks {
  const out: MappedBlocks = { events: [], toolIds: [], unknown: false };
  if (typeof content === 'string') {
    if (content) out.events.push({ type: 'message', data: { role: 'user', text: content } });
    return out;
  }
  if (!Array.isArray(content)) {
    out.unknown = true;
    return out;
  }
  for (const block of content) {
    if (!isRecord(block)) {
      out.unknown = true;
    } else if (block.type === 'tool_result') {
      const id = str(block.tool_use_id);
      if (id === undefined) {
        out.unknown = true;
        continue;
      }
      const data: JsonRecord = { id, isError: block.is_error === true };
      const output = resultText(block.content);
      if (output !== undefined) data.output = output;
      out.events.push({ type: 'tool_result', data });
      out.toolIds.push(id);
    } else if (block.type === 'text') {
      const text = str(block.text);
      if (text) out.events.push({ type: 'message', data: { role: 'user', text } });
      else if (text === undefined) out.unknown = true;
    } else {
      out.unknown = true;
    }
  }
  return out;
}

/** A tool result's content: a string, or blocks whose text parts are joined by newlines. */
function resultText(content: unknown): string | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  const texts = content.flatMap((b) => (isRecord(b) && typeof b.text === 'string' ? [b.text] : []));
  return texts.length > 0 ? texts.join('\n') : undefined;
}
