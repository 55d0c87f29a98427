import type { JobAction } from './job-stage.js';
import type { RunResult } from './schemas/run.js';

export interface AttemptContext {
  result: RunResult;
  /** Attempts started so far, including the one that just ended. */
  attempts: number;
  maxAttempts: number;
  /** False when the failure cannot be fixed by trying again (bad job file, missing engine). */
  retryable: boolean;
}

/**
 * Decides what an ended attempt does to its job: success succeeds, cancellation cancels, and
 * any other result requeues while attempts are left and the failure is retryable, else fails.
 */
export function attemptOutcome(
  ctx: AttemptContext,
): Extract<JobAction, 'succeed' | 'requeue' | 'fail' | 'cancel'> {
  if (ctx.result === 'success') return 'succeed';
  if (ctx.result === 'cancelled') return 'cancel';
  return ctx.retryable && ctx.attempts < ctx.maxAttempts ? 'requeue' : 'fail';
}
