import { type Command, InvalidArgumentError } from 'commander';
import { type FleetClient, FleetApiError, type JobDetail } from '../client/index.js';
import {
  type Artifact,
  JOB_STAGES,
  type Job,
  type JobStage,
  type Run,
  formatDuration,
  isTerminal,
  PlanState,
  openPhaseIndex,
} from '../core/index.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './io.js';
import { type Palette, paintStage, paletteFor } from './output/colour.js';
import {
  fields,
  formatBytes,
  formatCost,
  formatTokens,
  humanDuration,
  relativeTime,
  table,
  truncate,
} from './output/format.js';
import { renderEvent } from './output/transcript.js';
import { type ConnectionOptions, calling, connect, connectionFlags } from './server-connection.js';

interface LsOptions extends ConnectionOptions {
  stage: JobStage[];
  key?: string;
  limit?: number;
  all?: boolean;
  json?: boolean;
}

interface ShowOptions extends ConnectionOptions {
  json?: boolean;
}

interface LogsOptions extends ConnectionOptions {
  follow?: boolean;
  raw?: boolean;
  since?: number;
}

interface CancelOptions extends ConnectionOptions {
  reason?: string;
}

/** Rows `fleet ls` shows unless told otherwise. */
const DEFAULT_LIMIT = 20;
/** The most job details read at once (for cost and elapsed columns). */
const CONCURRENCY = 8;
const PAGE = 500;

/** `fleet ls|show|logs|cancel|retry`: the everyday verbs on jobs. */
export function registerJobCommands(program: Command, io: CliIo): void {
  connectionFlags(program.command('ls'))
    .description('list jobs, newest first')
    .option(
      '--stage <stage>',
      `only jobs in this stage (repeat or comma-separate: ${JOB_STAGES.join(', ')})`,
      stageList,
      [],
    )
    .option('--key <key>', 'only jobs with this key')
    .option('--limit <n>', `at most this many (default ${DEFAULT_LIMIT})`, positiveInt)
    .option('--all', 'every job, however many')
    .option('--json', 'print the jobs as JSON')
    .action((o: LsOptions) => list(o, io));

  connectionFlags(program.command('show'))
    .description('a job in full: stage, runs, verify results, artifacts, what to do next')
    .argument('<job>', 'a job id or key (a key names its newest job)')
    .option('--json', 'print the job, its runs and artifacts as JSON')
    .action((ref: string, o: ShowOptions) => show(ref, o, io));

  connectionFlags(program.command('logs'))
    .description("a job's transcript: what the agent said and did, verify output, stage changes")
    .argument('<job>', 'a job id or key')
    .option('-f, --follow', 'keep printing until the job ends; exit 0 only if it succeeded')
    .option('--raw', 'print the events as JSON, one per line')
    .option('--since <seq>', 'only events after this sequence number', nonNegativeInt)
    .action((ref: string, o: LogsOptions) => logs(ref, o, io));

  connectionFlags(program.command('cancel'))
    .description('cancel a job; a running agent is stopped and its work checkpointed')
    .argument('<job>', 'a job id or key')
    .option('--reason <reason>', 'why, recorded as the stage reason (default: cancelled_by_user)')
    .action(async (ref: string, o: CancelOptions) => {
      const client = connect(o, io);
      const { job } = await resolveJob(client, ref);
      if (isTerminal(job.stage))
        throw new CliError(`job ${ref} is ${job.stage}; only unfinished jobs can be cancelled`);
      const after = await calling(() => client.cancelJob(job.id, o.reason));
      io.out(transitionLine(ref, job, after, paletteFor(io)));
    });

  connectionFlags(program.command('retry'))
    .description('run a failed or cancelled job again, with fresh attempts')
    .argument('<job>', 'a job id or key')
    .action(async (ref: string, o: ConnectionOptions) => {
      const client = connect(o, io);
      const { job } = await resolveJob(client, ref);
      if (job.stage !== 'failed' && job.stage !== 'cancelled')
        throw new CliError(
          `job ${ref} is ${job.stage}; only failed or cancelled jobs can be retried`,
        );
      const after = await calling(() => client.retryJob(job.id));
      io.out(transitionLine(ref, job, after, paletteFor(io)));
    });
}

/**
 * The job `ref` names: a job id, else a key (its newest job). A ref that is neither gets a
 * `no job <ref>` error that says how to find jobs.
 */
export async function resolveJob(client: FleetClient, ref: string): Promise<JobDetail> {
  const byId = await calling(() =>
    client.getJob(ref).catch((err: unknown) => {
      if (err instanceof FleetApiError && err.status === 404) return null;
      throw err;
    }),
  );
  if (byId !== null) return byId;
  const page = await calling(() => client.listJobs({ key: ref, limit: 1 }));
  const newest = page.items[0];
  if (newest === undefined)
    throw new CliError(`no job ${ref} — fleet ls lists jobs with their ids and keys`);
  return calling(() => client.getJob(newest.id));
}

// ---- ls ----------------------------------------------------------------------------------

async function list(o: LsOptions, io: CliIo): Promise<void> {
  const client = connect(o, io);
  const jobs = await calling(() => readJobs(client, o));
  if (o.json) return io.out(`${JSON.stringify(jobs)}\n`);
  if (jobs.length === 0)
    return io.out(o.stage.length > 0 || o.key ? 'no matching jobs\n' : 'no jobs\n');
  const p = paletteFor(io);
  const details = await calling(() => mapLimited(jobs, CONCURRENCY, (j) => client.getJob(j.id)));
  const now = Date.now();
  const rows = details.map(({ job, runs, insights }) => [
    job.id,
    job.key ?? p.dim('-'),
    stageCell(job, p),
    job.engine,
    job.kind === 'composite' ? '-' : `${job.attempts}/${job.maxAttempts}`,
    relativeTime(job.createdAt, now),
    elapsedOf(job, runs, now),
    runs.some((r) => r.insights.costUsd !== undefined) ? formatCost(insights.costUsd) : '-',
  ]);
  io.out(table(['ID', 'KEY', 'STAGE', 'ENGINE', 'ATTEMPTS', 'AGE', 'ELAPSED', 'COST'], rows));
  const limit = o.limit ?? DEFAULT_LIMIT;
  if (!o.all && jobs.length === limit)
    io.err(p.dim(`showing the newest ${limit}; --limit N or --all for more\n`));
}

/**
 * A job's stage and why. A plan (never claimed, so `queued` while it runs) shows the phase it
 * is in instead: `running (phase 1/2 build)`, `waiting (phase 2/2 ship: approval)`.
 */
function stageCell(job: Job, p: Palette): string {
  const why = job.stageReason === null ? '' : p.dim(` (${job.stageReason})`);
  const state = PlanState.safeParse((job.manifest as { plan?: unknown }).plan);
  if (job.kind !== 'composite' || isTerminal(job.stage) || !state.success)
    return paintStage(p, job.stage) + why;
  const phases = state.data.phases;
  const at = openPhaseIndex(state.data);
  const phase = phases[at];
  if (phase === undefined) return paintStage(p, job.stage) + why;
  const where = `phase ${at + 1}/${phases.length} ${phase.name}`;
  return phase.status === 'awaiting_approval'
    ? `${p.yellow('waiting')} ${p.dim(`(${where}: approval)`)}`
    : `${paintStage(p, 'running')} ${p.dim(`(${where})`)}`;
}

async function readJobs(client: FleetClient, o: LsOptions): Promise<Job[]> {
  const query = {
    ...(o.stage.length === 0 ? {} : { stage: o.stage }),
    ...(o.key === undefined ? {} : { key: o.key }),
  };
  const want = o.all ? Infinity : (o.limit ?? DEFAULT_LIMIT);
  const jobs: Job[] = [];
  let after: string | undefined;
  while (jobs.length < want) {
    const limit = Math.min(PAGE, want - jobs.length);
    const page = await client.listJobs({
      ...query,
      limit,
      ...(after === undefined ? {} : { after }),
    });
    jobs.push(...page.items);
    if (page.next === null) break;
    after = page.next;
  }
  return jobs;
}

function elapsedOf(job: Job, runs: readonly Run[], now: number): string {
  if (runs.length === 0) return '-';
  const start = Math.min(...runs.map((r) => r.startedAt));
  return humanDuration((job.finishedAt ?? now) - start);
}

// ---- show --------------------------------------------------------------------------------

async function show(ref: string, o: ShowOptions, io: CliIo): Promise<void> {
  const client = connect(o, io);
  const detail = await resolveJob(client, ref);
  const artifacts = await calling(() => client.listArtifacts(detail.job.id));
  if (o.json) return io.out(`${JSON.stringify({ ...detail, artifacts })}\n`);
  const deps = await calling(() =>
    mapLimited(detail.job.deps, CONCURRENCY, async (id) => (await client.getJob(id)).job),
  );
  io.out(renderJob(detail, { artifacts, deps, ref }, paletteFor(io)));
}

/** What `fleet show` prints besides the job itself. */
export interface ShowContext {
  artifacts: readonly Artifact[];
  /** The job's dependencies, in the order of `job.deps`. */
  deps: readonly Job[];
  /** How the user named the job (echoed in the commands suggested). */
  ref: string;
  now?: number;
}

/** `fleet show`'s text: the job, its runs, artifacts, last error and the next step. */
export function renderJob(detail: JobDetail, context: ShowContext, p: Palette): string {
  const { job, runs } = detail;
  const { artifacts, deps, ref } = context;
  const now = context.now ?? Date.now();
  const title = job.key === null ? `job ${job.id}` : `job ${job.key} ${p.dim(`(${job.id})`)}`;
  let out = `${p.bold(title)}\n${fields(jobFields(job, deps, p, now))}`;
  if (runs.length > 0) out += `\n${p.bold('runs')}\n${runs.map((r) => renderRun(r, p)).join('')}`;
  if (artifacts.length > 0) {
    const rows = artifacts.map((a) => [a.kind, a.name, formatBytes(a.size), p.dim(a.id)]);
    const lines = table(['KIND', 'NAME', 'SIZE', 'ID'], rows).split('\n').slice(1, -1);
    out += `\n${p.bold('artifacts')}\n${lines.map((l) => `  ${l}\n`).join('')}`;
  }
  if (job.lastError !== null) out += `\n${p.red('last error:')} ${job.lastError}\n`;
  return `${out}\n${nextStep(detail, deps, ref, p)}\n`;
}

function jobFields(job: Job, deps: readonly Job[], p: Palette, now: number): [string, string][] {
  const entries: [string, string][] = [
    ['stage', paintStage(p, job.stage) + (job.stageReason === null ? '' : ` (${job.stageReason})`)],
    ['engine', job.profile === null ? job.engine : `${job.engine} (profile ${job.profile})`],
    ['attempts', `${job.attempts} of ${job.maxAttempts}`],
    ['created', `${relativeTime(job.createdAt, now)} (${new Date(job.createdAt).toISOString()})`],
  ];
  if (job.finishedAt !== null) entries.push(['finished', relativeTime(job.finishedAt, now)]);
  if (job.runAt > now) entries.push(['runs at', relativeTime(job.runAt, now)]);
  for (const [i, dep] of deps.entries())
    entries.push([i === 0 ? 'deps' : '', `${dep.key ?? dep.id} ${paintStage(p, dep.stage)}`]);
  if (job.lock !== null) entries.push(['lock', job.lock]);
  if (job.timeoutMs !== null) entries.push(['timeout', formatDuration(job.timeoutMs)]);
  if (job.priority !== 0) entries.push(['priority', String(job.priority)]);
  if (job.capabilities.length > 0) entries.push(['needs', job.capabilities.join(', ')]);
  if (job.verify.length > 0) entries.push(['verify', job.verify.join(' && ')]);
  if (job.requiresApproval)
    entries.push([
      'approval',
      job.approvedAt === null
        ? 'required, not given'
        : `given ${relativeTime(job.approvedAt, now)}`,
    ]);
  if (job.lease !== null)
    entries.push([
      'lease',
      `factory ${job.lease.holderFactoryId}, epoch ${job.lease.leaseEpoch}, expires ${relativeTime(job.lease.expiresAt, now)}`,
    ]);
  if (job.checkpoint !== null)
    entries.push([
      'checkpoint',
      `${job.checkpoint.wipBranch} at ${job.checkpoint.wipCommit.slice(0, 10)} (from ${job.checkpoint.wipBase.slice(0, 10)})`,
    ]);
  const firstLine = job.bodyMd.split('\n').find((l) => l.trim() !== '');
  if (firstLine !== undefined) entries.push(['body', p.dim(truncate(firstLine.trim(), 80))]);
  return entries;
}

function renderRun(run: Run, p: Palette): string {
  const result =
    run.result === null
      ? p.blue('running')
      : run.result === 'success'
        ? p.green(run.result)
        : p.red(run.result);
  const exit =
    run.exit === null
      ? ''
      : run.exit.signal !== null
        ? `signal ${run.exit.signal}`
        : `exit ${run.exit.code ?? '?'}`;
  const took = run.endedAt === null ? '' : humanDuration(run.endedAt - run.startedAt);
  const i = run.insights;
  const tokens = (i.tokensIn ?? 0) + (i.tokensOut ?? 0) + (i.tokensCached ?? 0);
  const parts = [
    `#${run.attempt}`,
    result,
    exit,
    took,
    tokens === 0 ? '' : `${formatTokens(tokens)} tokens`,
    i.costUsd === undefined
      ? ''
      : `${formatCost(i.costUsd)}${i.estimated === true ? ' (est.)' : ''}`,
    i.model ?? '',
    p.dim(`factory ${run.factoryId}`),
  ].filter((x) => x !== '');
  let out = `  ${parts.join('  ')}\n`;
  const commit = run.output?.commit;
  if (typeof commit === 'string')
    out += `      commit ${commit.slice(0, 10)} on ${String(run.output?.branch ?? '?')}\n`;
  for (const c of run.verifyResult?.commands ?? []) {
    const mark = c.exit === 0 ? p.green('✔') : p.red('✘');
    out += `      ${mark} ${c.command} ${p.dim(`(exit ${c.exit ?? 'none'}, ${humanDuration(c.durationMs)})`)}\n`;
  }
  return out;
}

/** What the person at the terminal can do about the job now. */
function nextStep(detail: JobDetail, deps: readonly Job[], ref: string, p: Palette): string {
  const { job } = detail;
  const cmd = (text: string) => p.bold(text);
  if (job.kind === 'composite')
    return `a plan, ${job.stage}: its phases, gates and reports are in ${cmd(`fleet plan show ${ref}`)}`;
  switch (job.stage) {
    case 'failed':
    case 'cancelled':
      return `${job.stage}: see what happened with ${cmd(`fleet logs ${ref}`)}; run it again with ${cmd(`fleet retry ${ref}`)}`;
    case 'succeeded': {
      const out = detail.runs.at(-1)?.output;
      const branch = typeof out?.branch === 'string' ? ` on branch ${out.branch}` : '';
      return `succeeded${branch}: the transcript is in ${cmd(`fleet logs ${ref}`)}`;
    }
    case 'claimed':
    case 'running':
    case 'verifying':
      return `${job.stage}: follow it with ${cmd(`fleet logs -f ${ref}`)}; stop it with ${cmd(`fleet cancel ${ref}`)}`;
    case 'queued': {
      const needs = job.capabilities.length === 0 ? '' : ` with ${job.capabilities.join(', ')}`;
      return `queued: waiting for a free factory seat${needs} (see ${cmd('fleet factories')})`;
    }
    case 'blocked': {
      if (job.requiresApproval && job.approvedAt === null)
        return `blocked: waiting for approval — ${cmd(`fleet approve ${ref}`)}`;
      const waiting = deps.filter((d) => d.stage !== 'succeeded').map((d) => d.key ?? d.id);
      return `blocked: waiting for ${waiting.length === 0 ? 'its dependencies' : waiting.join(', ')} to succeed`;
    }
  }
}

// ---- logs --------------------------------------------------------------------------------

async function logs(ref: string, o: LogsOptions, io: CliIo): Promise<void> {
  const client = connect(o, io);
  const { job } = await resolveJob(client, ref);
  const p = paletteFor(io);
  const print = (event: Parameters<typeof renderEvent>[0] & { seq: number }) =>
    io.out(o.raw ? `${JSON.stringify(event)}\n` : renderEvent(event, p));
  const since = o.since ?? 0;
  if (!o.follow) {
    let after = since;
    for (;;) {
      const page = await calling(() => client.listEvents(job.id, { after, limit: PAGE }));
      for (const event of page.items) print(event);
      if (page.next === null || page.items.length === 0) return;
      after = page.next;
    }
  }
  await calling(async () => {
    for await (const event of client.followEvents(job.id, { after: since })) print(event);
  });
  const end = await calling(() => client.getJob(job.id));
  if (end.job.stage !== 'succeeded') {
    const why = end.job.stageReason === null ? '' : ` (${end.job.stageReason})`;
    throw new CliError(`job ${ref} ended ${end.job.stage}${why} — fleet show ${ref} says more`);
  }
}

// ---- helpers -----------------------------------------------------------------------------

function transitionLine(ref: string, before: Job, after: Job, p: Palette): string {
  const why = after.stageReason === null ? '' : ` (${after.stageReason})`;
  return `job ${ref}: ${paintStage(p, before.stage)} → ${paintStage(p, after.stage)}${why}\n`;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in order. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function stageList(value: string, previous: JobStage[]): JobStage[] {
  const stages = value.split(',').map((s) => s.trim());
  for (const s of stages)
    if (!(JOB_STAGES as readonly string[]).includes(s))
      throw new InvalidArgumentError(`"${s}" is not a stage; use one of ${JOB_STAGES.join(', ')}.`);
  return [...previous, ...(stages as JobStage[])];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new InvalidArgumentError('expected a whole number of 1 or more.');
  return n;
}

function nonNegativeInt(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number of 0 or more.');
  return Number(value);
}
