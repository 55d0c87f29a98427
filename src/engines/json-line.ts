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
