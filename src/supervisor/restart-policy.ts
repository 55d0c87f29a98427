import { retryDelayMs } from '../core/backoff.js';

/** How a supervisor spaces the restarts of a child that keeps exiting. */
export interface RestartPolicy {
  /** The exponential base: the first restart waits between half of it and all of it. */
  baseMs: number;
  /** No restart waits longer than this. */
  maxMs: number;
  /** A child that ran at least this long before exiting starts over at the first delay. */
  stableMs: number;
}

/** 0.5–1 s for the first restart, doubling up to 15–30 s; reset after a minute of uptime. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  baseMs: 1_000,
  maxMs: 30_000,
  stableMs: 60_000,
};

/**
 * Counts a child's consecutive crashes and says how long to wait before the next start:
 * exponential with jitter (core/backoff), capped, and back to the first step once the child
 * had stayed up for `stableMs`.
 */
export class RestartBackoff {
  private crashes = 0;

  constructor(
    private readonly policy: RestartPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** Records an exit after `uptimeMs` of running and returns the delay before the restart. */
  next(uptimeMs: number): number {
    this.crashes = uptimeMs >= this.policy.stableMs ? 1 : this.crashes + 1;
    return retryDelayMs(
      this.crashes,
      { baseMs: this.policy.baseMs, maxMs: this.policy.maxMs, factor: 2 },
      this.random,
    );
  }
}
