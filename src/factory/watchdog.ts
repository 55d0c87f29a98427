/**
 * Stall supervision: a {@link Watchdog} notices an agent that has gone silent, and
 * {@link parseStall} reads a job manifest's `stall` policy.
 */

/** What to do when an agent has been silent for `afterMs`. */
export type StallPolicy = 'fail' | 'restart' | 'nudge';

/**
 * A job's stall settings (manifest `stall`), with defaults applied.
 *
 * - `fail` (default): stop the agent (its process group, like a timeout) and end the run as
 *   `agent_failed` with the error "stalled: no output for Ns"; changed work is checkpointed
 *   like any failed run.
 * - `restart`: stop the agent and start it again in the same worktree (its work so far is
 *   kept). An engine that reported a session is resumed with {@link RESTART_MESSAGE}; one
 *   without (the shell engine) re-runs the same command. At most `maxRestarts` times; the next
 *   stall fails the run as above.
 * - `nudge`: as `restart`, but a session is resumed with the job's `nudge` message. Engines
 *   without a session are restarted. A true in-process nudge (writing to the agent's stdin
 *   while it runs) needs stream-json input on stdin and is not done: the agent is stopped and
 *   resumed.
 */
export interface StallConfig {
  afterMs: number;
  policy: StallPolicy;
  /** The message that resumes a session under the `nudge` policy. */
  nudge: string;
  /** Restarts (or resumes) allowed over the whole run before a stall fails it. */
  maxRestarts: number;
}

export const DEFAULT_STALL_AFTER_MS = 10 * 60_000;
export const DEFAULT_MAX_RESTARTS = 2;
export const RESTART_MESSAGE = 'You seemed stuck; continue.';
export const DEFAULT_NUDGE =
  'You have been silent for a while. If you are stuck, say why; otherwise continue.';

/**
 * The manifest's `stall` value as a {@link StallConfig}; null when the job has none (no
 * watchdog: stall supervision is opt-in, `stall: {}` gives the defaults: 10 minutes, `fail`).
 * Invalid fields fall back to their defaults.
 *
 * @example
 * parseStall({ afterMs: 60000, policy: 'nudge', nudge: 'Status?' });
 * // { afterMs: 60000, policy: 'nudge', nudge: 'Status?', maxRestarts: 2 }
 */
export function parseStall(value: unknown): StallConfig | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  const positive = (x: unknown): x is number =>
    typeof x === 'number' && Number.isFinite(x) && x > 0;
  return {
    afterMs: positive(v.afterMs) ? v.afterMs : DEFAULT_STALL_AFTER_MS,
    policy: v.policy === 'restart' || v.policy === 'nudge' ? v.policy : 'fail',
    nudge: typeof v.nudge === 'string' && v.nudge.trim() !== '' ? v.nudge : DEFAULT_NUDGE,
    maxRestarts:
      typeof v.maxRestarts === 'number' && Number.isInteger(v.maxRestarts) && v.maxRestarts >= 0
        ? v.maxRestarts
        : DEFAULT_MAX_RESTARTS,
  };
}

/** Time, injectable so tests need not sleep. */
export interface WatchdogClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: WatchdogClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface WatchdogOptions {
  stalledAfterMs: number;
  /** Called once per silence period, with how long it has been silent. */
  onStall: (silentMs: number) => void;
  clock?: WatchdogClock;
}

/**
 * Calls `onStall` when `touch()` has not been called for `stalledAfterMs`, once per silence:
 * after a stall it fires again only after a `touch()` and another full silence. The silence
 * starts at `start()`. `touch()` is cheap (no timer is re-armed per call: the one timer checks
 * the last touch when it fires). `stop()` clears the timer for good; `onStall` is never
 * called after it.
 *
 * @example
 * const dog = new Watchdog({ stalledAfterMs: 300_000, onStall: (ms) => stop(ms) });
 * dog.start(); // …then dog.touch() on every line; dog.stop() when the process ends
 */
export class Watchdog {
  private readonly clock: WatchdogClock;
  private last = 0;
  private timer: unknown = null;
  private fired = false;
  private running = false;
  private stopped = false;

  constructor(private readonly options: WatchdogOptions) {
    if (!(options.stalledAfterMs > 0)) throw new Error('stalledAfterMs must be positive');
    this.clock = options.clock ?? systemClock;
  }

  /** Whether the current silence has been reported as a stall. */
  get stalled(): boolean {
    return this.fired;
  }

  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.last = this.clock.now();
    this.arm(this.options.stalledAfterMs);
  }

  touch(): void {
    if (!this.running) return;
    this.last = this.clock.now();
    this.fired = false;
    if (this.timer === null) this.arm(this.options.stalledAfterMs);
  }

  stop(): void {
    this.stopped = true;
    this.running = false;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.check(), Math.max(1, ms));
  }

  private check(): void {
    this.timer = null;
    if (!this.running) return;
    const silent = this.clock.now() - this.last;
    if (silent < this.options.stalledAfterMs) {
      this.arm(this.options.stalledAfterMs - silent);
      return;
    }
    if (this.fired) return;
    this.fired = true;
    this.options.onStall(silent);
  }
}
