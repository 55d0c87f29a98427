import {
  type BackoffPolicy,
  type Checkpoint,
  type RunResult,
  attemptOutcome,
  retryDelayMs,
} from '../../core/index.js';
import type { CompleteInput } from '../port.js';
import type { JobsTable } from './tables.js';

/** How an attempt ended, as a verb (complete, fail, reap, cancel) reports it. */
export interface AttemptEnd {
  result: RunResult;
  error: string | null;
  retryable: boolean;
  report?: Partial<CompleteInput>;
  /** Epoch recorded on the stage event; null when the control plane acts (reaper, cancel). */
  writerEpoch: number | null;
  /** Stage reason for a cancellation. */
  reason?: string;
}

/** What both dialects write when an attempt ends; each applies it with its own SQL. */
export interface AttemptEndPlan {
  action: 'succeed' | 'requeue' | 'fail' | 'cancel';
  /** The run's closing columns, JSON as text. */
  run: {
    result: RunResult;
    exit: string | null;
    verifyResult: string | null;
    insights: string | null;
    output: string | null;
  };
  /** Job columns besides the stage (which the action decides) and the checkpoint. */
  set: Partial<JobsTable>;
  /** A checkpoint to store, null to clear it, undefined to keep the current one. */
  checkpoint: Checkpoint | null | undefined;
}

/**
 * Decides the end of an attempt: the job's next action (core's `attemptOutcome`), its retry
 * time with backoff, its reason and error, and what the run records.
 */
export function planAttemptEnd(
  row: Pick<JobsTable, 'attempts' | 'max_attempts'>,
  end: AttemptEnd,
  now: number,
  backoff: BackoffPolicy,
  random: () => number,
): AttemptEndPlan {
  const action = attemptOutcome({
    result: end.result,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    retryable: end.retryable,
  });
  const report = end.report ?? {};
  const output =
    end.error === null ? report.output : { ...(report.output ?? {}), error: end.error };
  const set: Partial<JobsTable> = { lease_holder: null, lease_expires_at: null };
  if (end.error !== null) set.last_error = end.error;
  if (action === 'requeue') {
    set.run_at = now + retryDelayMs(row.attempts, backoff, random);
    set.stage_reason = end.result;
  } else {
    set.finished_at = now;
    set.stage_reason =
      action === 'cancel' ? (end.reason ?? 'cancelled') : action === 'fail' ? end.result : null;
  }
  return {
    action,
    run: {
      result: end.result,
      exit: jsonOrNull(report.exit),
      verifyResult: jsonOrNull(report.verifyResult),
      insights: jsonOrNull(report.insights),
      output: jsonOrNull(output),
    },
    set,
    checkpoint: report.checkpoint,
  };
}

export function jsonOrNull(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}
