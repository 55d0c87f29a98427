import { IllegalTransitionError } from './errors.js';
import { ACTIVE_STAGES, TERMINAL_STAGES, type JobStage } from './schemas/job.js';

/**
 * What can happen to a job. `requeue` is an attempt that ended without success while attempts
 * are left (failure, lease lost, timeout); `fail` is the final failure; `dep_failed` fails a job
 * whose dependency will never succeed; `retry` is a person asking a finished job to run again
 * (`reopen` when it must first wait for its dependencies again);
 * `approve` records an approval on a blocked job (it leaves the stage to `unblock`).
 * `settle` and `abandon` close a composite job (a plan), which is never claimed: the control
 * plane settles it when its last phase passes, or abandons it when a phase fails.
 */
export const JOB_ACTIONS = [
  'unblock',
  'approve',
  'claim',
  'start',
  'verify',
  'succeed',
  'requeue',
  'fail',
  'cancel',
  'dep_failed',
  'retry',
  'reopen',
  'settle',
  'abandon',
] as const;
export type JobAction = (typeof JOB_ACTIONS)[number];

const active: readonly JobStage[] = ACTIVE_STAGES;

const TABLE: Record<JobAction, { from: readonly JobStage[]; to: JobStage | 'same' }> = {
  unblock: { from: ['blocked'], to: 'queued' },
  approve: { from: ['blocked'], to: 'same' },
  claim: { from: ['queued'], to: 'claimed' },
  start: { from: ['claimed'], to: 'running' },
  verify: { from: ['running'], to: 'verifying' },
  // Verification is optional, so a job may succeed straight from claimed or running.
  succeed: { from: active, to: 'succeeded' },
  requeue: { from: active, to: 'queued' },
  fail: { from: active, to: 'failed' },
  cancel: { from: ['blocked', 'queued', ...active], to: 'cancelled' },
  dep_failed: { from: ['blocked', 'queued'], to: 'failed' },
  retry: { from: ['failed', 'cancelled'], to: 'queued' },
  // A retried job whose dependencies are not all done yet, or a dependent re-opened by a retry.
  reopen: { from: ['failed', 'cancelled'], to: 'blocked' },
  settle: { from: ['blocked', 'queued'], to: 'succeeded' },
  abandon: { from: ['blocked', 'queued'], to: 'failed' },
};

/** The stages an action may start from. */
export function stagesAllowing(action: JobAction): readonly JobStage[] {
  return TABLE[action].from;
}

export function canTransition(from: JobStage, action: JobAction): boolean {
  return TABLE[action].from.includes(from);
}

/**
 * The stage a job reaches when `action` happens in stage `from`.
 * Throws {@link IllegalTransitionError} when the action is not allowed there: an illegal
 * transition is an error, never a silent no-op.
 *
 * @example transition('queued', 'claim') // 'claimed'
 */
export function transition(from: JobStage, action: JobAction, jobId?: string): JobStage {
  const rule = TABLE[action];
  if (!rule.from.includes(from)) throw new IllegalTransitionError(from, action, jobId);
  return rule.to === 'same' ? from : rule.to;
}

export function isTerminal(stage: JobStage): boolean {
  return (TERMINAL_STAGES as readonly JobStage[]).includes(stage);
}

export function isActive(stage: JobStage): boolean {
  return active.includes(stage);
}
