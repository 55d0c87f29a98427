import type { Command } from 'commander';
import { FleetApiError, type FleetClient } from '../client/index.js';
import type { Job, PlanDetail } from '../core/index.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './io.js';
import { resolveJob } from './job-commands.js';
import { paintStage, paletteFor } from './output/colour.js';
import { relativeTime, table } from './output/format.js';
import { phaseLines } from './plan-progress.js';
import { type ConnectionOptions, calling, connect, connectionFlags } from './server-connection.js';

interface JsonOption extends ConnectionOptions {
  json?: boolean;
}

/** `fleet approve|reject JOB|PLAN` and `fleet plan ls|show`. */
export function registerPlanCommands(program: Command, io: CliIo): void {
  for (const verb of ['approve', 'reject'] as const) {
    connectionFlags(program.command(verb))
      .description(
        verb === 'approve'
          ? 'approve a job, or the phase of a plan, that waits for a person'
          : 'reject a job, or the phase of a plan, that waits for a person (the plan stops)',
      )
      .argument('<id>', 'a job or plan id or key')
      .action(async (ref: string, o: ConnectionOptions) => {
        const client = connect(o, io);
        const { job } = await resolveJob(client, ref);
        const after = await calling(() =>
          verb === 'approve' ? client.approveJob(job.id) : client.rejectJob(job.id),
        ).catch((err: unknown) => {
          throw refusal(err, verb, ref, job);
        });
        const p = paletteFor(io);
        if (after.kind === 'composite') {
          const detail = await calling(() => client.getPlan(after.id));
          io.out(`plan ${detail.state.name}: ${verb === 'approve' ? 'approved' : 'rejected'}\n`);
          io.out(
            phaseLines(detail, p)
              .map((l) => `  ${l}\n`)
              .join(''),
          );
        } else {
          io.out(
            `job ${ref}: ${paintStage(p, after.stage)}${after.stageReason === null ? '' : ` (${after.stageReason})`}\n`,
          );
        }
      });
  }

  const plan = program.command('plan').description('plans: phases of jobs closed by gates');
  connectionFlags(plan.command('ls'))
    .description('list plans, newest first')
    .option('--json', 'print JSON')
    .action(async (o: JsonOption) => {
      const client = connect(o, io);
      const plans = await calling(() => client.listPlans());
      if (o.json) return io.out(`${JSON.stringify(plans, null, 2)}\n`);
      if (plans.length === 0) return io.out('no plans yet — submit one with fleet submit PLAN\n');
      const p = paletteFor(io);
      io.out(
        table(
          ['ID', 'PLAN', 'STAGE', 'PHASE', 'CREATED'],
          plans.map(({ plan: job, state }) => {
            // Where it stands or stopped: the first phase that has not passed (else the last).
            const open = state.phases.findIndex((ph) => ph.status !== 'passed');
            const at = open < 0 ? state.phases.length : open + 1;
            const phase = state.phases[at - 1]!;
            return [
              job.id,
              state.name,
              paintStage(p, job.stage),
              `${at}/${state.phases.length} ${phase.name} (${phase.status.replace('_', ' ')})`,
              relativeTime(job.createdAt),
            ];
          }),
        ),
      );
    });

  connectionFlags(plan.command('show'))
    .description("a plan's phases, gates, jobs and reports")
    .argument('<plan>', 'a plan id or name')
    .option('--json', 'print JSON')
    .option('--report <phase>', 'print the Markdown report of this phase (name or number)')
    .action(async (ref: string, o: JsonOption & { report?: string }) => {
      const client = connect(o, io);
      const detail = await readPlan(client, ref);
      if (o.json) return io.out(`${JSON.stringify(detail, null, 2)}\n`);
      if (o.report !== undefined) return io.out(await reportText(client, detail, o.report));
      io.out(showText(detail, io));
    });
}

async function readPlan(client: FleetClient, ref: string): Promise<PlanDetail> {
  const { job } = await resolveJob(client, ref);
  if (job.kind !== 'composite')
    throw new CliError(`${ref} is a job, not a plan — fleet show ${ref} shows it`);
  return calling(() => client.getPlan(job.id));
}

function showText(detail: PlanDetail, io: CliIo): string {
  const p = paletteFor(io);
  const { plan, state, jobs } = detail;
  const byKey = new Map(jobs.map((j) => [j.key, j]));
  const lines = [
    `plan ${p.bold(state.name)} ${plan.id}: ${paintStage(p, plan.stage)}` +
      (plan.lastError === null ? '' : ` — ${plan.lastError}`),
    ...(state.description === null ? [] : [p.dim(state.description)]),
    '',
  ];
  const phases = phaseLines(detail, p, `fleet approve ${plan.id}  (or fleet reject)`);
  state.phases.forEach((phase, i) => {
    lines.push(phases[i]!);
    for (const key of [...phase.jobs, phase.gate]) {
      const job = byKey.get(key);
      lines.push(`    ${jobLine(key, job, p)}`);
    }
    if (phase.report !== null)
      lines.push(`    ${p.dim(`report: fleet plan show ${plan.id} --report ${phase.name}`)}`);
  });
  return `${lines.join('\n')}\n`;
}

function jobLine(key: string, job: Job | undefined, p: ReturnType<typeof paletteFor>): string {
  if (job === undefined) return `${key} ${p.dim('(missing)')}`;
  const reason = job.stageReason === null ? '' : p.dim(` (${job.stageReason})`);
  return `${key}  ${paintStage(p, job.stage)}${reason}  ${p.dim(job.id)}`;
}

async function reportText(
  client: FleetClient,
  detail: PlanDetail,
  phaseRef: string,
): Promise<string> {
  const { state } = detail;
  const index = /^\d+$/.test(phaseRef)
    ? Number(phaseRef) - 1
    : state.phases.findIndex((ph) => ph.name === phaseRef);
  const phase = state.phases[index];
  if (phase === undefined)
    throw new CliError(
      `plan ${state.name} has no phase ${phaseRef}; its phases: ${state.phases.map((ph) => ph.name).join(', ')}`,
    );
  if (phase.report === null)
    throw new CliError(
      `phase ${phase.name} has no report yet: a phase's report is written when its gate decides`,
    );
  const bytes = await calling(() => client.readArtifact(phase.report!));
  return new TextDecoder().decode(bytes);
}

/** A refused approve/reject, said plainly (once: the server's message may already say it). */
function refusal(err: unknown, verb: string, ref: string, job: Job): unknown {
  if (err instanceof CliError && err.cause instanceof FleetApiError && err.cause.status === 409) {
    const { message } = err.cause;
    const what = message.startsWith(`cannot ${verb}`)
      ? message
      : `cannot ${verb} ${ref}: ${message}`;
    const next =
      job.kind === 'composite'
        ? `fleet plan show ${ref} shows its phases`
        : `fleet show ${ref} shows it`;
    return new CliError(`${what} — ${next}`, { cause: err.cause });
  }
  return err;
}
