/** How long to wait between reconnect attempts. */
export interface ReconnectBackoff {
  /** The first delay; doubles with each consecutive failure. Default 250 ms. */
  minDelayMs?: number;
  /** Default 5 s. */
  maxDelayMs?: number;
}

/**
 * The delay before the reconnect that follows `failures` consecutive failed attempts (0 for
 * the first reconnect after a drop): exponential, capped, then jittered into [½, 1] of itself
 * so factories that lost the same server do not all come back at the same instant.
 */
export function reconnectDelayMs(
  failures: number,
  backoff: ReconnectBackoff = {},
  random: () => number = Math.random,
): number {
  const min = backoff.minDelayMs ?? 250;
  const max = Math.max(min, backoff.maxDelayMs ?? 5_000);
  const base = Math.min(max, min * 2 ** Math.min(Math.max(0, failures), 30));
  return Math.round(base * (0.5 + random() / 2));
}
