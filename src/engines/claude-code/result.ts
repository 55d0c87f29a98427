import { isRecord, str, type JsonRecord } from '../json-line.js';

/** What a `result` line says about the run (its totals are the tally's business). */
export interface ResultVerdict {
  ok: boolean;
  /** Why it failed, for people; null when ok. */
  error: string | null;
  /** The `result` event's data: {ok, subtype?, message?, permissionDenials?}. */
  data: JsonRecord;
}

/**
 * Reads a `result` line; undefined when it has neither `is_error` nor `subtype`. `ok` is
 * `!is_error`, not the subtype: an HTTP 500 that outlasted the retries ends with subtype
 * `success` and `is_error: true` (06-fail500). The message is the CLI's `result` text, else its
 * `errors` (05-maxturns: "Reached maximum number of turns (1)"). Tool calls the permission mode
 * refused are listed as `permissionDenials` [{id, name}] (only when there are some): without
 * yolo, they are why a run did less than asked.
 */
export function readResult(line: JsonRecord): ResultVerdict | undefined {
  const subtype = str(line.subtype);
  if (typeof line.is_error !== 'boolean' && subtype === undefined) return undefined;
  const ok = typeof line.is_error === 'boolean' ? !line.is_error : subtype === 'success';
  const errors = Array.isArray(line.errors) ? line.errors.filter((e) => str(e) !== undefined) : [];
  const message = str(line.result) ?? (errors.length > 0 ? errors.join('; ') : undefined);

  const data: JsonRecord = { ok };
  if (subtype !== undefined) data.subtype = subtype;
  if (message !== undefined) data.message = message;
  const denials = permissionDenials(line.permission_denials);
  if (denials.length > 0) data.permissionDenials = denials;
  return { ok, error: ok ? null : failure(subtype, message), data };
}

/**
 * Why a run failed, for people: the subtype when it says more than `success` (which an API error
 * carries too), then the CLI's own words.
 */
function failure(subtype: string | undefined, message: string | undefined): string {
  const parts = [subtype === 'success' ? undefined : subtype, message].filter(
    (p): p is string => p !== undefined && p !== '',
  );
  return parts.length > 0 ? parts.join(': ') : 'the CLI reported an error without a message';
}

/** The model with the largest cost in a result's `modelUsage` (subagents may use others). */
export function mainModel(modelUsage: unknown): string | undefined {
  if (!isRecord(modelUsage)) return undefined;
  let best: string | undefined;
  let bestCost = -1;
  for (const [name, u] of Object.entries(modelUsage)) {
    const cost = isRecord(u) && typeof u.costUSD === 'number' ? u.costUSD : 0;
    if (cost > bestCost) [best, bestCost] = [name, cost];
  }
  return best;
}

/** The tool calls the permission mode refused, as {id, name}. */
function permissionDenials(denials: unknown): JsonRecord[] {
  if (!Array.isArray(denials)) return [];
  return denials.flatMap((d) => {
    if (!isRecord(d)) return [];
    const id = str(d.tool_use_id);
    const name = str(d.tool_name);
    return id === undefined || name === undefined ? [] : [{ id, name }];
  });
}
