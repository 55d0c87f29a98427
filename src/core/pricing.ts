import type { Insights } from './schemas/run.js';

/** US dollars per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
  /** Cached input tokens (reads from a prompt cache). */
  cachedInput: number;
}

/**
 * List prices used when a CLI reports tokens but no cost (Codex, Gemini). Matched by the
 * longest prefix of the model name (see {@link priceFor}: a variant, never another version).
 * Estimates: a run's cost carries `estimated: true`.
 */
export const PRICES: Record<string, ModelPrice> = {
  'claude-opus': { input: 15, output: 75, cachedInput: 1.5 },
  'claude-sonnet': { input: 3, output: 15, cachedInput: 0.3 },
  'claude-haiku': { input: 0.8, output: 4, cachedInput: 0.08 },
  'gpt-5': { input: 1.25, output: 10, cachedInput: 0.125 },
  'gpt-5-mini': { input: 0.25, output: 2, cachedInput: 0.025 },
  'gpt-4.1': { input: 2, output: 8, cachedInput: 0.5 },
  o3: { input: 2, output: 8, cachedInput: 0.5 },
  'gemini-2.5-pro': { input: 1.25, output: 10, cachedInput: 0.31 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5, cachedInput: 0.075 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4, cachedInput: 0.025 },
};

/**
 * The price for a model name, by longest matching prefix; null when unknown. A prefix matches
 * the whole name or a variant of it (`gpt-5-codex`, `o3-mini`), never another version: the name
 * must not go on with a digit or a dot, so `gpt-5.5` is not priced as `gpt-5` (its price is not
 * in the table, and a wrong estimate is worse than none).
 */
export function priceFor(
  model: string,
  prices: Record<string, ModelPrice> = PRICES,
): ModelPrice | null {
  let best: string | null = null;
  for (const prefix of Object.keys(prices))
    if (matchesModel(model, prefix) && (best === null || prefix.length > best.length))
      best = prefix;
  return best === null ? null : prices[best]!;
}

/** True when `model` is `prefix` or a variant of it, not a later version (`gpt-5` vs `gpt-5.5`). */
function matchesModel(model: string, prefix: string): boolean {
  if (!model.startsWith(prefix)) return false;
  const next = model.charAt(prefix.length);
  return next === '' || !/[\d.]/.test(next);
}

/**
 * Cost of a run from its tokens. `tokensIn` counts uncached input only; cached input is priced
 * apart. Null when the model is not in the table (then no cost is recorded, rather than a wrong one).
 */
export function estimateCostUsd(
  insights: Pick<Insights, 'model' | 'tokensIn' | 'tokensOut' | 'tokensCached'>,
  prices: Record<string, ModelPrice> = PRICES,
): number | null {
  if (insights.model === undefined) return null;
  const p = priceFor(insights.model, prices);
  if (p === null) return null;
  const m = 1_000_000;
  return (
    ((insights.tokensIn ?? 0) * p.input +
      (insights.tokensOut ?? 0) * p.output +
      (insights.tokensCached ?? 0) * p.cachedInput) /
    m
  );
}
