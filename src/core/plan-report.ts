import { formatDuration } from './duration.js';
import type { PlanState } from './plan.js';
import type { Job } from './schemas/job.js';
import type { Run } from './schemas/run.js';

/** A phase's job with its runs, as the report shows it. */
export interface ReportJob {
  job: Job;
  runs: Run[];
}

/**
 * The Markdown report of a closed phase: its decision, each job's result, attempts, duration,
 * tokens and cost, the gate's checks with their output, and the phase's totals.
 */
export function renderPhaseReport(
  state: PlanState,
  index: number,
  jobs: readonly ReportJob[],
  gate: ReportJob | null,
): string {
  const phase = state.phases[index]!;
  const all = gate === null ? jobs : [...jobs, gate];
  const cost = sum(all, (r) => r.insights.costUsd);
  const tokensIn = sum(all, (r) => r.insights.tokensIn);
  const tokensOut = sum(all, (r) => r.insights.tokensOut);
  const estimated = all.some((j) => j.runs.some((r) => r.insights.estimated === true));
  const lines = [
    `# Plan ${state.name} · phase ${index + 1}/${state.phases.length}: ${phase.name}`,
    '',
    `**Decision: ${phase.decision ?? 'none'}** (${phase.status.replace('_', ' ')})` +
      (phase.reason === null ? '' : ` — ${phase.reason}`),
    '',
    `- Duration: ${span(phase.startedAt, phase.closedAt)}`,
    `- Cost: $${cost.toFixed(4)}${estimated ? ' (estimated)' : ''}; tokens in ${tokensIn}, out ${tokensOut}`,
    '',
    '## Jobs',
    '',
    '| Job | Result | Attempts | Duration | Tokens in/out | Cost |',
    '| --- | --- | --- | --- | --- | --- |',
    ...jobs.map(({ job, runs }) => {
      const last = runs.at(-1);
      const result = job.stage === 'succeeded' ? 'succeeded' : `${job.stage}${why(job)}`;
      return (
        `| ${cell(job.key ?? job.id)} | ${cell(result)} | ${runs.length} | ` +
        `${last === undefined ? '–' : span(last.startedAt, last.endedAt)} | ` +
        `${sum([{ job, runs }], (r) => r.insights.tokensIn)}/` +
        `${sum([{ job, runs }], (r) => r.insights.tokensOut)} | ` +
        `$${sum([{ job, runs }], (r) => r.insights.costUsd).toFixed(4)} |`
      );
    }),
    '',
    '## Gate',
    '',
    ...gateSection(gate),
  ];
  return `${lines.join('\n')}\n`;
}

function gateSection(gate: ReportJob | null): string[] {
  if (gate === null) return ['The gate job is missing.'];
  const run = gate.runs.at(-1);
  if (run === undefined)
    return [`The gate did not run: the job is ${gate.job.stage}${why(gate.job)}.`];
  const checks = run.verifyResult?.commands ?? [];
  const recorded = recordedChecks(run);
  if (checks.length === 0) return ['No checks: the gate merged the phase’s branches.'];
  return checks.flatMap((c, i) => [
    `### ${c.exit === 0 ? '✓' : '✗'} ${title(recorded[i]?.name, c.command)}` +
      (recorded[i]?.required === false ? ' (optional)' : ''),
    '',
    `Exit ${c.exit ?? 'none'} in ${readable(c.durationMs)}.`,
    ...(c.outputTail.trim() === '' ? [] : ['', '```', c.outputTail.trimEnd(), '```']),
    '',
  ]);
}

/** Each check's name and whether it was required, in check order, from the gate's output. */
function recordedChecks(run: Run): { name?: string; required?: boolean }[] {
  const gate = (run.output as { gate?: { checks?: unknown } } | null)?.gate;
  if (!Array.isArray(gate?.checks)) return [];
  return (gate.checks as { name?: unknown; required?: unknown }[]).map((c) => ({
    ...(typeof c.name === 'string' ? { name: c.name } : {}),
    ...(typeof c.required === 'boolean' ? { required: c.required } : {}),
  }));
}

function title(name: string | undefined, command: string): string {
  return name === undefined || name === command ? `\`${command}\`` : `${name}: \`${command}\``;
}

function sum(jobs: readonly ReportJob[], f: (r: Run) => number | undefined): number {
  return jobs.reduce((acc, j) => acc + j.runs.reduce((a, r) => a + (f(r) ?? 0), 0), 0);
}

function span(from: number | null, to: number | null): string {
  return from === null || to === null ? '–' : readable(Math.max(0, to - from));
}

/** `850ms`, `1.9s`, `4m12s`: precise enough for a report, short enough to read. */
function readable(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  return formatDuration(Math.round(ms / 1_000) * 1_000);
}

function why(job: Job): string {
  return job.stageReason === null ? '' : ` (${job.stageReason})`;
}

/** Keeps a table cell on one line. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
