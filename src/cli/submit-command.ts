import type { Command } from 'commander';
import type { FleetClient } from '../client/index.js';
import type { Job, JobDraft, JobEvent } from '../core/index.js';
import { ENGINE_NAMES } from '../engines/index.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './io.js';
import { type Palette, paletteFor } from './output/colour.js';
import { type JobSummary, JobWatcher, renderSummary } from './output/progress.js';
import { renderEvent } from './output/transcript.js';
import { followPlan, planLines } from './plan-progress.js';
import { type ConnectionOptions, calling, connect, connectionFlags } from './server-connection.js';
import { type Work, loadWork, prepareWorkspace } from './work-files.js';
import { resolveDataDir } from './data-dir.js';

interface SubmitOptions extends ConnectionOptions {
  wait?: boolean;
  json?: boolean;
  engine?: string;
}

/** What a submit stored: the plan job (for a plan) and the jobs to watch. */
export interface Submitted {
  plan: Job | null;
  jobs: Job[];
  /** False when every job already existed (same idempotency keys). */
  created: boolean;
}

/** `fleet submit FILE|DIR…`: queue job files or a plan on a running server. */
export function registerSubmitCommand(program: Command, io: CliIo): void {
  connectionFlags(program.command('submit'))
    .description(
      'queue job files (FILE.md, a directory of them) or a plan (plan.yaml, a plan directory)',
    )
    .argument('<paths...>', 'job files, directories or one plan')
    .option('--wait', 'show progress until everything finished; exit 0 only if all succeeded')
    .option('--engine <name>', 'run every job with this engine instead of its own')
    .option('--json', 'print the stored jobs as JSON')
    .action(async (paths: string[], o: SubmitOptions) => {
      const work = loadWork(paths, io);
      if (o.engine !== undefined) overrideEngine(work.drafts, o.engine);
      await prepareWorkspace(work, resolveDataDir(o.dataDir, io));
      const client = connect(o, io);
      const submitted = await submitWork(client, work);
      if (o.json && !o.wait) {
        io.out(`${JSON.stringify({ plan: submitted.plan, jobs: submitted.jobs }, null, 2)}\n`);
        return;
      }
      io.out(submittedText(work, submitted));
      if (!o.wait) return;
      await waitFor(client, submitted, io, { approveHint: approveHint(o) });
    });
}

/** Submits a batch in one request: a plan is stored whole or not at all. */
export async function submitWork(client: FleetClient, work: Work): Promise<Submitted> {
  const result = await calling(() => client.submitJobs(work.drafts));
  const jobs = result.jobs.map((r) => r.job);
  const plan = jobs.find((j) => j.kind === 'composite') ?? null;
  return {
    plan,
    jobs: jobs.filter((j) => j.kind !== 'composite'),
    created: result.jobs.some((r) => r.created),
  };
}

/**
 * Follows submitted work to its end with live progress, then prints the summary. Throws a
 * CliError (exit code 1) unless every job, and the plan, succeeded.
 */
export async function waitFor(
  client: FleetClient,
  submitted: Submitted,
  io: CliIo,
  options: {
    approveHint: (planId: string) => string;
    autoApprove?: boolean;
    /** Where to look closer at a failed job; default `fleet logs REF`. */
    inspectHint?: (ref: string) => string;
  },
): Promise<void> {
  const stopPlan = new AbortController();
  const plan =
    submitted.plan === null
      ? null
      : followPlan(client, submitted.plan.id, {
          signal: stopPlan.signal,
          autoApprove: options.autoApprove ?? false,
          approveHint: options.approveHint(submitted.plan.id),
        });
  const watcher = new JobWatcher(client, {
    io,
    intervalMs: 300,
    ...(plan === null ? {} : { extraLines: (p: Palette) => plan.lines(p) }),
  });
  watcher.add(submitted.jobs.map((j) => j.id));
  const summaries = await watcher.run();
  const planDetail = plan === null ? null : await plan.settled();
  stopPlan.abort();
  const p = paletteFor(io);
  io.out(`\n${renderSummary(summaries, p)}`);
  if (planDetail !== null) io.out(planLines(planDetail, p).join('\n') + '\n');
  const failed = summaries.filter((s) => s.stage !== 'succeeded');
  const planFailed = planDetail !== null && planDetail.plan.stage !== 'succeeded';
  if (failed.length > 0 || planFailed) {
    const what =
      planDetail !== null && planFailed
        ? `plan ${planDetail.state.name} ${planDetail.plan.stage}` +
          (planDetail.plan.lastError === null ? '' : `: ${planDetail.plan.lastError}`)
        : `${failed.length} of ${summaries.length} jobs did not succeed`;
    const first = failed.find((s) => s.stage === 'failed') ?? failed[0];
    if (first?.stage === 'failed') io.out(await lastOutput(client, first, p));
    const inspect = options.inspectHint ?? ((ref: string) => `fleet logs ${ref} shows why`);
    throw new CliError(first === undefined ? what : `${what} — ${inspect(first.key ?? first.id)}`);
  }
}

/** `--engine`: every job but the plan's gates runs with `engine` (checked before any starts). */
export function overrideEngine(drafts: JobDraft[], engine: string): void {
  if (!(ENGINE_NAMES as readonly string[]).includes(engine))
    throw new CliError(
      `--engine: no engine is named "${engine}"; known engines: ${ENGINE_NAMES.join(', ')}`,
    );
  for (const d of drafts)
    if (
      d.kind !== 'composite' &&
      (d.manifest as { gate?: unknown } | undefined)?.gate === undefined
    )
      d.engine = engine;
}

function submittedText(work: Work, s: Submitted): string {
  const again = s.created ? '' : ' (already submitted: same idempotency keys)';
  if (work.kind === 'plan' && s.plan !== null) {
    const phases = work.plan.phases.length;
    return `submitted plan ${work.plan.name} (${s.plan.id}): ${phases} phase${phases === 1 ? '' : 's'}, ${s.jobs.length} jobs including gates${again}\n`;
  }
  return (
    s.jobs.map((j) => `submitted ${j.key ?? j.id} (${j.id}): ${j.stage}`).join('\n') + `${again}\n`
  );
}

function approveHint(o: ConnectionOptions): (planId: string) => string {
  const flags = [
    o.server === undefined ? '' : ` --server ${o.server}`,
    o.dataDir === undefined ? '' : ` --data-dir ${o.dataDir}`,
  ].join('');
  return (id) => `fleet approve ${id}${flags}  (or fleet reject)`;
}

/** The last lines of a failed job's transcript, so the reason is on screen without a lookup. */
async function lastOutput(client: FleetClient, job: JobSummary, p: Palette): Promise<string> {
  const events: JobEvent[] = [];
  let after = 0;
  for (let page = 0; page < 20; page++) {
    const got = await client.listEvents(job.id, { after, limit: 1000 });
    events.push(...got.items);
    if (got.next === null || got.items.length === 0) break;
    after = got.next;
  }
  const lines = events
    .map((e) => renderEvent(e, p))
    .join('')
    .split('\n')
    .filter((l) => l !== '');
  const tail = lines.slice(-LAST_LINES).map((l) => `  ${l}`);
  return `\n${p.bold(`last output of ${job.key ?? job.id}:`)}\n${tail.join('\n')}\n`;
}

const LAST_LINES = 15;
