import { InvalidInputError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof UNIT_MS;

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
const EXAMPLES = 'e.g. 500ms, 30s, 4h, 1h30m';

/**
 * Milliseconds in a duration written as numbers with units: `500ms`, `30s`, `5m`, `4h`, `2d`,
 * `1.5h`, `1h30m`. Units are `ms`, `s`, `m`, `h` and `d`; each may appear once, largest first.
 * A bare number is refused (seconds or milliseconds?), as are negative values, fractions of a
 * millisecond and anything else; the error says which part is wrong.
 *
 * @example parseDuration('30s') // 30_000
 */
export function parseDuration(text: string): number {
  const fail = (why: string): never => {
    throw new InvalidInputError('duration', [{ path: '', message: `"${text}" ${why}` }]);
  };
  if (text.trim() === '') fail(`is empty; write a number and a unit (${EXAMPLES})`);
  if (/^[+-]?\d+(\.\d+)?$/.test(text))
    fail(
      `has no unit; write ${text.replace(/^\+/, '')}s or ${text.replace(/^\+/, '')}ms (${EXAMPLES})`,
    );
  if (text.startsWith('-')) fail('is negative; a duration is zero or more');

  let total = 0;
  let at = 0;
  let previous: Unit | null = null;
  while (at < text.length) {
    PART.lastIndex = at;
    const match = PART.exec(text);
    if (match === null) {
      const rest = text.slice(at);
      fail(
        at === 0
          ? `is not a duration; write a number and a unit: ms, s, m, h or d (${EXAMPLES})`
          : `has "${rest}" after "${text.slice(0, at)}", which is not a number and a unit (ms, s, m, h or d)`,
      );
    }
    const [part, amount, unit] = match as unknown as [string, string, Unit];
    if (previous !== null && UNIT_MS[unit] >= UNIT_MS[previous])
      fail(
        `repeats or reorders units ("${unit}" after "${previous}"); write the largest unit first`,
      );
    total += Number(amount) * UNIT_MS[unit];
    previous = unit;
    at += part.length;
  }
  // Round away float noise (0.1h is 360000.00000000006 ms), then insist on whole milliseconds.
  const ms = Math.round(total * 1e6) / 1e6;
  if (!Number.isInteger(ms)) fail('is not a whole number of milliseconds');
  if (!Number.isSafeInteger(ms)) fail('is too long');
  return ms;
}

/** The shortest exact spelling of a duration, for messages: 90000 → `1m30s`, 1500 → `1s500ms`. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`not a duration: ${ms}`);
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const n = Math.floor(rest / UNIT_MS[unit]);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * UNIT_MS[unit];
  }
  return out;
}
