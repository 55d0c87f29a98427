export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 10 * 60_000, factor: 2 };

/**
 * Delay before retry number `attempt` (1 = the first retry): exponential, capped, with "equal
 * jitter" so retries of many jobs that failed together spread out but never come back sooner
 * than half the exponential delay. `random` returns a number in [0, 1).
 *
 * @example retryDelayMs(3, DEFAULT_BACKOFF, Math.random) // between 2000 and 4000
 */
export function retryDelayMs(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * policy.factor ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
