import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  ConflictError,
  InvalidInputError,
  isTerminal,
  type JobSpecInput,
  nextRunAt,
  NotFoundError,
  type Schedule,
  type SchedulePatch,
} from '../core/index.js';
import type { Store } from '../store/index.js';
import type { EventHub } from './event-hub.js';
import { notifyEnqueued } from './notify-enqueued.js';

/** How often the leader looks for due schedules by default. */
export const SCHEDULER_INTERVAL_MS = 1_000;

export interface SchedulerOptions {
  store: Store;
  hub: EventHub;
  logger: Logger;
  /** Milliseconds since the epoch; default `Date.now`. */
  clock?: () => number;
  /**
   * The zone cron rules without their own `tz` are read in; default this process's (the
   * server's) time zone.
   */
  timeZone?: string;
}

export interface SchedulerLoopOptions extends SchedulerOptions {
  /** Pause between passes; default {@link SCHEDULER_INTERVAL_MS}. */
  intervalMs?: number;
  /** Aborting stops the loop after the pass in progress, if any. */
  signal: AbortSignal;
  /** Fire only while this holds (this replica leads); default: always. */
  isLeader?: () => boolean;
}

/** What one pass did with one due schedule. */
export type FiringOutcome =
  | { scheduleId: string; action: 'fired'; jobId: string }
  | { scheduleId: string; action: 'skipped_overlap'; jobId: string }
  | { scheduleId: string; action: 'skipped_conflict' }
  | { scheduleId: string; action: 'failed'; error: Error };

/**
 * Fires due schedules until `signal` aborts: a pass right at start (a schedule missed while
 * the server was down fires then, once), then one every `intervalMs`. Only the leader fires;
 * the other replicas tick idly and take over on the tick after they win the lock. Two leaders
 * for a moment cannot fire a schedule twice: each firing's job carries the idempotency key
 * `schedule:<id>:<scheduled time>`, and the schedule is advanced under its rev.
 */
export async function runSchedulerLoop(options: SchedulerLoopOptions): Promise<void> {
  const { logger, signal } = options;
  const isLeader = options.isLeader ?? (() => true);
  const intervalMs = options.intervalMs ?? SCHEDULER_INTERVAL_MS;
  while (!signal.aborted) {
    if (isLeader()) {
      try {
        await fireDueSchedules(options);
      } catch (err) {
        logger.error({ err }, 'looking for due schedules failed; trying again next tick');
      }
    }
    try {
      await sleep(intervalMs, undefined, { signal });
    } catch {
      // Aborted: the loop condition ends it.
    }
  }
}

/**
 * One scheduler pass: fires every schedule due now (across tenants, paused ones excluded).
 * A schedule that fails is logged and left due, so the next pass tries it again; the others
 * still fire.
 */
export async function fireDueSchedules(options: SchedulerOptions): Promise<FiringOutcome[]> {
  const now = (options.clock ?? Date.now)();
  const due = await options.store.listDueSchedules(now);
  const outcomes: FiringOutcome[] = [];
  for (const schedule of due) outcomes.push(await fireOne(options, schedule, now));
  return outcomes;
}

async function fireOne(
  options: SchedulerOptions,
  schedule: Schedule,
  now: number,
): Promise<FiringOutcome> {
  const { store, hub } = options;
  const log = options.logger.child({ scheduleId: schedule.id, tenant: schedule.tenant });
  const scheduledAt = schedule.nextRunAt!;
  // From now, not from the missed time: however long the server was down, one firing.
  const next = nextRunAt(schedule.rule, now, options.timeZone);
  try {
    const running = await unfinishedPrevious(store, schedule);
    if (running !== null) {
      await advance(store, schedule, { nextRunAt: next });
      log.info(
        { jobId: running, scheduledAt, nextRunAt: next },
        'previous job still unfinished and overlap not allowed; firing skipped',
      );
      return { scheduleId: schedule.id, action: 'skipped_overlap', jobId: running };
    }
    const results = await store.enqueue([
      {
        // Checked when the schedule was made; enqueue checks it again (InvalidInputError).
        ...(schedule.template as Omit<JobSpecInput, 'tenant'>),
        tenant: schedule.tenant,
        idempotencyKey: `schedule:${schedule.id}:${scheduledAt}`,
      },
    ]);
    notifyEnqueued(hub, schedule.tenant, results);
    const jobId = results[0]!.job.id;
    await advance(store, schedule, { lastRunAt: now, lastJobId: jobId, nextRunAt: next });
    log.info({ jobId, scheduledAt, nextRunAt: next }, 'schedule fired');
    return { scheduleId: schedule.id, action: 'fired', jobId };
  } catch (err) {
    if (err instanceof ConflictError || err instanceof NotFoundError) {
      log.debug({ scheduledAt }, 'schedule fired by another leader, or deleted, meanwhile');
      return { scheduleId: schedule.id, action: 'skipped_conflict' };
    }
    if (err instanceof InvalidInputError) return badTemplate(store, schedule, next, err, log);
    log.error({ err, scheduledAt }, 'firing a schedule failed; trying again next tick');
    return { scheduleId: schedule.id, action: 'failed', error: err as Error };
  }
}

/** The previous firing's job when it has not finished yet and overlap is not allowed. */
async function unfinishedPrevious(store: Store, schedule: Schedule): Promise<string | null> {
  if (schedule.allowOverlap || schedule.lastJobId === null) return null;
  const job = await store.getJob(schedule.tenant, schedule.lastJobId);
  return job !== null && !isTerminal(job.stage) ? job.id : null;
}

/**
 * Moves the schedule on, under the rev it was read at. When the rev moved but the schedule is
 * still due at the same time (a person paused it meanwhile), this firing is still the one to
 * record; when it moved on, another leader fired it and the ConflictError stands.
 */
async function advance(store: Store, schedule: Schedule, patch: SchedulePatch): Promise<Schedule> {
  const { tenant, id } = schedule;
  try {
    return await store.updateSchedule(tenant, id, schedule.rev, patch);
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    const fresh = await store.getSchedule(tenant, id);
    if (fresh === null || fresh.nextRunAt !== schedule.nextRunAt) throw err;
    return store.updateSchedule(tenant, id, fresh.rev, patch);
  }
}

/**
 * A template the store refuses will be refused on every try: move on to the next time rather
 * than fail each tick, and say loudly why nothing ran.
 */
async function badTemplate(
  store: Store,
  schedule: Schedule,
  next: number | null,
  err: InvalidInputError,
  log: Logger,
): Promise<FiringOutcome> {
  log.error(
    { err, issues: err.issues, nextRunAt: next },
    'schedule template is not a valid job; firing skipped — fix it by replacing the schedule',
  );
  try {
    await advance(store, schedule, { nextRunAt: next });
  } catch (advanceErr) {
    log.error({ err: advanceErr }, 'advancing a schedule with a bad template failed');
  }
  return { scheduleId: schedule.id, action: 'failed', error: err };
}
