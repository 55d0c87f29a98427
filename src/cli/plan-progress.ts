import { setTimeout as sleep } from 'node:timers/promises';
import type { FleetClient } from '../client/index.js';
import { type PhaseState, type PlanDetail, isTerminal } from '../core/index.js';
import type { Palette } from './output/colour.js';
import { humanDuration } from './output/format.js';

export interface FollowPlanOptions {
  signal: AbortSignal;
  /** Approve every phase that waits for a person (`fleet run --approve`). */
  autoApprove: boolean;
  /** The command that approves this plan, shown while a phase waits. */
  approveHint: string;
  /** Time between reads; default 300 ms. */
  intervalMs?: number;
}

export interface PlanFollower {
  /** One line per phase as it stands, for the progress display. */
  lines(p: Palette): string[];
  /** The plan once it is finished (or as it stands when the signal aborts). */
  settled(): Promise<PlanDetail>;
}

/**
 * Follows a plan's phases while its jobs run: keeps the latest state for the progress display
 * and, with `autoApprove`, approves each phase that waits for a person.
 */
export function followPlan(
  client: FleetClient,
  id: string,
  options: FollowPlanOptions,
): PlanFollower {
  let latest: PlanDetail | null = null;
  const approved = new Set<string>();
  const loop = (async () => {
    while (!options.signal.aborted) {
      try {
        latest = await client.getPlan(id);
        const waiting = latest.state.phases.find((ph) => ph.status === 'awaiting_approval');
        if (options.autoApprove && waiting !== undefined && !approved.has(waiting.name)) {
          approved.add(waiting.name);
          await client.approveJob(id);
          continue;
        }
        if (isTerminal(latest.plan.stage)) return latest;
      } catch (err) {
        if (options.signal.aborted) break;
        throw err;
      }
      await sleep(options.intervalMs ?? 300, undefined, { signal: options.signal }).catch(() => {});
    }
    return latest ?? (await client.getPlan(id));
  })();
  return {
    lines: (p) => (latest === null ? [] : phaseLines(latest, p, options.approveHint)),
    settled: () => loop,
  };
}

/** The phases of a plan, one line each: status, gate decision, how long it took. */
export function phaseLines(detail: PlanDetail, p: Palette, approveHint?: string): string[] {
  const { state } = detail;
  return state.phases.map((phase, i) => {
    const head = `phase ${i + 1}/${state.phases.length} ${p.bold(phase.name)}`;
    const took =
      phase.startedAt === null || phase.closedAt === null
        ? ''
        : ` ${p.dim(humanDuration(phase.closedAt - phase.startedAt))}`;
    const waiting =
      phase.status === 'awaiting_approval' && approveHint !== undefined ? ` — ${approveHint}` : '';
    return `${head}: ${statusText(phase, p)}${took}${waiting}`;
  });
}

/** The end-of-run lines of a plan: its outcome and phases. */
export function planLines(detail: PlanDetail, p: Palette): string[] {
  const { plan, state } = detail;
  const outcome =
    plan.stage === 'succeeded'
      ? p.green('succeeded')
      : `${p.red(plan.stage)}${plan.lastError === null ? '' : ` — ${plan.lastError}`}`;
  return [`plan ${p.bold(state.name)}: ${outcome}`, ...phaseLines(detail, p).map((l) => `  ${l}`)];
}

function statusText(phase: PhaseState, p: Palette): string {
  const decision = phase.decision === null ? '' : ` (gate ${phase.decision})`;
  switch (phase.status) {
    case 'passed':
      return p.green(`passed${decision}`);
    case 'failed':
      return p.red(`failed${decision}${phase.reason === null ? '' : `: ${phase.reason}`}`);
    case 'awaiting_approval':
      return p.yellow(`waiting for approval${decision}`);
    case 'cancelled':
      return p.dim(`cancelled${phase.reason === null ? '' : ` (${phase.reason})`}`);
    case 'running':
      return 'running';
    default:
      return p.dim('pending');
  }
}
