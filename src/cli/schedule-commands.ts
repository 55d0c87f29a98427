import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { FleetClient, ScheduleSubmission } from '../client/index.js';
import {
  JobFileError,
  type JobDraft,
  type Schedule,
  type ScheduleRule,
  describeRule,
  nextRunTimes,
  parseJobFile,
  parseDuration,
  ruleIssues,
} from '../core/index.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './io.js';
import { relativeTime, table } from './output/format.js';
import { type ConnectionOptions, calling, connect, connectionFlags } from './server-connection.js';

interface AddOptions extends ConnectionOptions {
  cron?: string;
  tz?: string;
  every?: string;
  at?: string;
  name?: string;
  allowOverlap?: boolean;
  paused?: boolean;
  json?: boolean;
}

interface LsOptions extends ConnectionOptions {
  json?: boolean;
}

/** How many upcoming run times `fleet schedule add` shows. */
const PREVIEW = 3;
const ISO_DATE_TIME =
  /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** `fleet schedule add|ls|rm|pause|resume`: jobs submitted on a cron, an interval, or once. */
export function registerScheduleCommands(program: Command, io: CliIo): void {
  const schedule = program
    .command('schedule')
    .description('submit a job on a schedule: a cron expression, an interval, or once');

  connectionFlags(schedule.command('add'))
    .description('schedule the job of FILE (a job file that makes one job)')
    .argument('<file>', 'a job file: Markdown with a YAML header')
    .option('--cron <expr>', 'a cron expression, e.g. "0 3 * * *" (3 am every day)')
    .option('--tz <zone>', "time zone of --cron, e.g. Europe/Paris (default: the server's)")
    .option('--every <duration>', 'an interval, e.g. 30s, 15m, 4h')
    .option('--at <time>', 'once, at an ISO date-time, e.g. 2026-12-01T09:00 or …T09:00Z')
    .option('--name <name>', "unique in the tenant (default: the job's key, else the file name)")
    .option('--allow-overlap', 'fire even while the previous firing is unfinished')
    .option('--paused', 'create it paused (start it with fleet schedule resume)')
    .option('--json', 'print JSON')
    .action(async (file: string, o: AddOptions) => {
      const rule = ruleFromFlags(o, Date.now());
      const draft = readOneJob(file, io);
      const spec: ScheduleSubmission = {
        name: o.name ?? draft.key ?? basename(file).replace(/\.[^.]*$/, ''),
        rule,
        template: templateOf(draft, file),
        allowOverlap: o.allowOverlap === true,
        paused: o.paused === true,
      };
      const created = await calling(() => connect(o, io).createSchedule(spec));
      if (o.json) return io.out(`${JSON.stringify(created)}\n`);
      io.out(`created schedule ${created.name} (${created.id}): ${describeRule(created.rule)}\n`);
      io.out(preview(created));
    });

  connectionFlags(schedule.command('ls'))
    .description('list schedules with their next and last runs')
    .option('--json', 'print JSON')
    .action(async (o: LsOptions) => {
      const schedules = await calling(() => connect(o, io).listSchedules());
      if (o.json) return io.out(`${JSON.stringify(schedules)}\n`);
      if (schedules.length === 0)
        return io.out('no schedules — add one with fleet schedule add --every 1h FILE\n');
      const now = Date.now();
      const rows = schedules.map((s) => [
        s.id,
        s.name,
        describeRule(s.rule),
        s.nextRunAt === null
          ? '-'
          : `${localTime(s.nextRunAt)} (${relativeTime(s.nextRunAt, now)})`,
        s.lastRunAt === null ? '-' : relativeTime(s.lastRunAt, now),
        s.lastJobId ?? '-',
        state(s),
      ]);
      io.out(table(['ID', 'NAME', 'RULE', 'NEXT RUN', 'LAST RUN', 'LAST JOB', 'STATE'], rows));
    });

  connectionFlags(schedule.command('rm'))
    .description('delete a schedule (the jobs it submitted stay)')
    .argument('<schedule>', 'its id or name (see fleet schedule ls)')
    .action(async (ref: string, o: ConnectionOptions) => {
      const client = connect(o, io);
      const target = await findSchedule(client, ref);
      await calling(() => client.deleteSchedule(target.id));
      io.out(`deleted schedule ${target.name} (${target.id}); the jobs it submitted stay\n`);
    });

  for (const paused of [true, false]) {
    connectionFlags(schedule.command(paused ? 'pause' : 'resume'))
      .description(
        paused
          ? 'stop a schedule from firing until resumed'
          : 'let a paused schedule fire again, from now on (paused time is not caught up)',
      )
      .argument('<schedule>', 'its id or name (see fleet schedule ls)')
      .action(async (ref: string, o: ConnectionOptions) => {
        const client = connect(o, io);
        const target = await findSchedule(client, ref);
        const s = await calling(() => client.pauseSchedule(target.id, paused));
        const next = s.nextRunAt === null ? 'no next run' : `next run ${localTime(s.nextRunAt)}`;
        io.out(`${paused ? 'paused' : 'resumed'} schedule ${s.name} (${s.id}); ${next}\n`);
      });
  }
}

/** The rule the flags describe: exactly one of --cron, --every, --at. */
export function ruleFromFlags(o: AddOptions, now: number): ScheduleRule {
  const given = (['cron', 'every', 'at'] as const).filter((f) => o[f] !== undefined);
  if (given.length === 0)
    throw new CliError('say when it runs: pass one of --cron EXPR, --every DURATION or --at TIME');
  if (given.length > 1)
    throw new CliError(
      `${given.map((f) => `--${f}`).join(' and ')} given; pass exactly one of --cron, --every or --at`,
    );
  if (o.tz !== undefined && o.cron === undefined)
    throw new CliError(`--tz applies to --cron only; --${given[0]} does not use a time zone`);
  if (o.cron !== undefined) return cronRule(o.cron, o.tz);
  if (o.every !== undefined) return everyRule(o.every);
  return atRule(o.at!, now);
}

function cronRule(expr: string, tz: string | undefined): ScheduleRule {
  const rule: ScheduleRule = { kind: 'cron', expr, ...(tz === undefined ? {} : { tz }) };
  const [issue] = ruleIssues(rule);
  if (issue !== undefined)
    throw new CliError(issue.path === 'tz' ? `--tz ${issue.message}` : `--cron ${issue.message}`);
  return rule;
}

function everyRule(text: string): ScheduleRule {
  let everyMs: number;
  try {
    everyMs = parseDuration(text);
  } catch (err) {
    throw new CliError(`--every ${(err as Error).message.replace(/^invalid duration: /, '')}`);
  }
  if (everyMs < 1)
    throw new CliError(`--every "${text}" is zero; an interval must be at least 1ms (e.g. 30s)`);
  return { kind: 'every', everyMs };
}

function atRule(text: string, now: number): ScheduleRule {
  const at = ISO_DATE_TIME.test(text.trim()) ? Date.parse(text.trim()) : Number.NaN;
  if (Number.isNaN(at))
    throw new CliError(
      `--at "${text}" is not an ISO date-time; write e.g. 2026-12-01T09:00 (local time) or 2026-12-01T09:00Z`,
    );
  if (at <= now)
    throw new CliError(
      `--at ${localTime(at)} is in the past (now ${localTime(now)}); pick a future time`,
    );
  return { kind: 'at', at };
}

/** The one job of a job file; a matrix that expands to several is refused. */
function readOneJob(file: string, io: CliIo): JobDraft {
  const path = resolve(io.cwd, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new CliError(`cannot read ${file} (${why}) — FILE must be a job file`, { cause: err });
  }
  let drafts: JobDraft[];
  try {
    drafts = parseJobFile(
      { path: file, text },
      { baseDir: dirname(path), homeDir: io.env.HOME ?? homedir() },
    );
  } catch (err) {
    if (err instanceof JobFileError) throw new CliError(err.message, { cause: err });
    throw err;
  }
  if (drafts.length !== 1)
    throw new CliError(
      `a schedule takes one job; ${file} expands to ${drafts.length} — remove its matrix, or add one schedule per value`,
    );
  return drafts[0]!;
}

/**
 * The job spec each firing submits: the draft without what the schedule decides (job files
 * set neither an idempotency key nor a parent; a run time they may set is refused).
 */
function templateOf(draft: JobDraft, file: string): ScheduleSubmission['template'] {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { runAt, idempotencyKey, parentId, ...template } = draft;
  if (runAt !== undefined && runAt !== null)
    throw new CliError(
      `${file}: runAt: a scheduled job runs when its schedule fires; remove runAt from the header`,
    );
  return template;
}

/** A schedule by id, else by name, or an error saying where to look. */
async function findSchedule(client: FleetClient, ref: string): Promise<Schedule> {
  const all = await calling(() => client.listSchedules());
  const found = all.find((s) => s.id === ref) ?? all.find((s) => s.name === ref);
  if (found === undefined)
    throw new CliError(`no schedule with id or name "${ref}" — see fleet schedule ls`);
  return found;
}

function preview(s: Schedule): string {
  if (s.nextRunAt === null) return 'it will not run: it has no next run time\n';
  const times = [s.nextRunAt, ...nextRunTimes(s.rule, s.nextRunAt, PREVIEW - 1)];
  const now = Date.now();
  const lines = times.map((t) => `  ${localTime(t)}  (${relativeTime(t, now)})\n`).join('');
  return `${s.paused ? 'paused; when resumed, it runs at' : 'next runs'}:\n${lines}`;
}

function state(s: Schedule): string {
  if (s.paused) return 'paused';
  return s.nextRunAt === null ? 'finished' : 'active';
}

/** `2026-11-22 03:00:00 +01:00`: this machine's local time with its offset. */
export function localTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}
