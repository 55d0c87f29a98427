import { visibleWidth } from './colour.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * A duration for people, rounded to its two largest units: `850ms`, `4.2s`, `42s`, `3m05s`,
 * `2h03m`, `3d4h`.
 */
export function humanDuration(ms: number): string {
  const t = Math.max(0, Math.round(ms));
  if (t < SECOND) return `${t}ms`;
  if (t < 10 * SECOND) return `${(Math.floor(t / 100) / 10).toFixed(1)}s`;
  if (t < MINUTE) return `${Math.floor(t / SECOND)}s`;
  if (t < HOUR) return `${Math.floor(t / MINUTE)}m${pad2(Math.floor((t % MINUTE) / SECOND))}s`;
  if (t < DAY) return `${Math.floor(t / HOUR)}h${pad2(Math.floor((t % HOUR) / MINUTE))}m`;
  return `${Math.floor(t / DAY)}d${Math.floor((t % DAY) / HOUR)}h`;
}

/** How long ago (or until) `at`, coarsely: `just now`, `12s ago`, `3m ago`, `in 2h`. */
export function relativeTime(at: number, now: number = Date.now()): string {
  const delta = now - at;
  if (Math.abs(delta) < 2 * SECOND) return 'just now';
  const span = coarse(Math.abs(delta));
  return delta > 0 ? `${span} ago` : `in ${span}`;
}

function coarse(ms: number): string {
  if (ms < MINUTE) return `${Math.floor(ms / SECOND)}s`;
  if (ms < HOUR) return `${Math.floor(ms / MINUTE)}m`;
  if (ms < DAY) return `${Math.floor(ms / HOUR)}h`;
  return `${Math.floor(ms / DAY)}d`;
}

/** US dollars: `$0.0123` under a dollar, `$4.56` from one; `-` when unknown. */
export function formatCost(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return '-';
  if (usd === 0) return '$0';
  return usd < 1 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

/** A token count: `950`, `12.3k`, `123k`, `1.2M`. */
export function formatTokens(n: number): string {
  if (n < 1_000) return String(n);
  if (n < 100_000) return `${trim1(n / 1_000)}k`;
  if (n < 1_000_000) return `${Math.round(n / 1_000)}k`;
  return `${trim1(n / 1_000_000)}M`;
}

/** A byte count: `512 B`, `12.3 KB`, `4.5 MB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${trim1(n / 1024)} KB`;
  return `${trim1(n / (1024 * 1024))} MB`;
}

/** One decimal, without a trailing `.0`. */
function trim1(n: number): string {
  return (Math.floor(n * 10) / 10).toFixed(1).replace(/\.0$/, '');
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** The text cut to `max` characters, ending in `…` when cut. */
export function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/**
 * Rows under a header in aligned columns, two spaces apart, the last column not padded.
 * Cells may hold colour codes; widths count what shows.
 */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return align([head, ...rows]).join('\n') + '\n';
}

/** Rows as lines of aligned columns, two spaces apart (see {@link table}). */
export function align(rows: readonly (readonly string[])[]): string[] {
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) =>
    Math.max(0, ...rows.map((r) => visibleWidth(r[i] ?? ''))),
  );
  return rows.map((cells) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - visibleWidth(c))))
      .join('  ')
      .trimEnd(),
  );
}

/** `label  value` lines with the labels padded to one width (for `show`). */
export function fields(entries: readonly (readonly [string, string])[], indent = '  '): string {
  const width = Math.max(...entries.map(([label]) => label.length));
  return entries.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}\n`).join('');
}
