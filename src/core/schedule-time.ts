import { Cron } from 'croner';
import { formatDuration } from './duration.js';
import { InvalidInputError, type InputIssue } from './errors.js';
import type { ScheduleRule } from './schemas/schedule.js';

/**
 * When a schedule with `rule` fires next, strictly after `after` (ms since the epoch), or null
 * when it never fires again. A cron rule reads its expression in the rule's own `tz`, else in
 * `timeZone`, else in this process's time zone; `every` fires `everyMs` after `after`; `at`
 * fires at its instant if that is still ahead, else never.
 *
 * The scheduler passes the time of the firing as `after`, never the missed time: a server that
 * was down for a day fires a missed schedule once, then carries on from now.
 *
 * @example nextRunAt({ kind: 'every', everyMs: 60_000 }, 0) // 60_000
 */
export function nextRunAt(rule: ScheduleRule, after: number, timeZone?: string): number | null {
  return nextRunTimes(rule, after, 1, timeZone)[0] ?? null;
}

/** The next `count` times `rule` fires after `after` (fewer when it stops), for previews. */
export function nextRunTimes(
  rule: ScheduleRule,
  after: number,
  count: number,
  timeZone?: string,
): number[] {
  switch (rule.kind) {
    case 'at':
      return rule.at > after && count > 0 ? [rule.at] : [];
    case 'every':
      return Array.from({ length: count }, (_, i) => after + (i + 1) * rule.everyMs);
    case 'cron':
      return cronOf(rule.expr, rule.tz ?? timeZone)
        .nextRuns(count, new Date(after))
        .map((d) => d.getTime());
  }
}

/**
 * What is wrong with a rule beyond its shape: a cron expression croner cannot read or that
 * never matches a date, a time zone that is not an IANA name. Paths are relative to the rule
 * (`expr`, `tz`); an empty list means the rule is good.
 */
export function ruleIssues(rule: ScheduleRule): InputIssue[] {
  if (rule.kind !== 'cron') return [];
  if (rule.tz !== undefined && !isTimeZone(rule.tz))
    return [
      {
        path: 'tz',
        message: `"${rule.tz}" is not a time zone; use an IANA name such as Europe/Paris or UTC`,
      },
    ];
  let cron: Cron;
  try {
    cron = cronOf(rule.expr, rule.tz);
  } catch (err) {
    return [{ path: 'expr', message: cronMessage(rule.expr, err) }];
  }
  if (cron.nextRun() === null)
    return [{ path: 'expr', message: `"${rule.expr}" never matches a date` }];
  return [];
}

/** Throws an {@link InvalidInputError} naming `prefix`-ed fields when {@link ruleIssues} finds any. */
export function checkRule(rule: ScheduleRule, what = 'schedule rule', prefix = 'rule'): void {
  const issues = ruleIssues(rule);
  if (issues.length > 0)
    throw new InvalidInputError(
      what,
      issues.map((i) => ({ ...i, path: prefix === '' ? i.path : `${prefix}.${i.path}` })),
    );
}

/** A rule in a few words, for tables and logs: `cron 0 3 * * * (Europe/Paris)`, `every 1h`. */
export function describeRule(rule: ScheduleRule): string {
  switch (rule.kind) {
    case 'cron':
      return `cron ${rule.expr}${rule.tz === undefined ? '' : ` (${rule.tz})`}`;
    case 'every':
      return `every ${formatDuration(rule.everyMs)}`;
    case 'at':
      return `at ${new Date(rule.at).toISOString()}`;
  }
}

function cronOf(expr: string, timeZone: string | undefined): Cron {
  // Paused and without a function: croner only computes times, it never starts a timer.
  return new Cron(expr, {
    paused: true,
    ...(timeZone === undefined ? {} : { timezone: timeZone }),
  });
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function cronMessage(expr: string, err: unknown): string {
  const why = (err instanceof Error ? err.message : String(err)).replace(/^CronPattern: /, '');
  return `"${expr}" is not a cron expression (${why}); write five fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * *"`;
}
