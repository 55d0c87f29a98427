import type { ParsedLine } from './engine.js';

/** Narrowing helpers for the untrusted JSON lines an agent CLI prints on stdout. */

export type JsonRecord = Record<string, unknown>;

export function isRecord(v: unknown): v is JsonRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A non-negative integer count; anything else reads as 0. */
export function count(v: unknown): number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 0;
}

/**
 * Reads one output line: `null` for a blank line (no events), the object for a JSON object,
 * and `'raw'` for anything else (not JSON, or JSON that is not an object), which parsers keep
 * as a `raw` event.
 */
export function readJsonLine(line: string): JsonRecord | 'raw' | null {
  if (line.trim() === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'raw';
  }
  return isRecord(value) ? value : 'raw';
}

/** A line kept as it came, as a `raw` event: one the parser does not understand. */
export function rawLine(line: string): ParsedLine {
  return { events: [{ type: 'raw', data: { line } }] };
}

/**
 * The front of every engine's line parser: a blank line gives no events; a line that is not a
 * JSON object with a string `type` is kept as `raw`; any other goes to `handle`. A handler that
 * throws (only a bug could: every field is narrowed) keeps the line as `raw` too, so a parser
 * never throws and the run's supervision goes on.
 */
export function parseJsonLine(
  line: string,
  handle: (value: JsonRecord & { type: string }) => ParsedLine,
): ParsedLine {
  const value = readJsonLine(line);
  if (value === null) return { events: [] };
  if (value === 'raw' || typeof value.type !== 'string') return rawLine(line);
  try {
    return handle(value as JsonRecord & { type: string });
  } catch {
    return rawLine(line);
  }
}
