import { z } from 'zod';
import { branchName } from './branch.js';
import { FleetError } from './errors.js';
import type { JobDraft } from './job-file.js';
import type { PlanDefinition } from './plan-file.js';
import type { JobStage } from './schemas/job.js';

/**
 * A plan runs as one composite job (never claimed) whose children are the phases' jobs plus one
 * gate job per phase. The composite job's `manifest.plan` holds the plan's progress
 * ({@link PlanState}); the control plane's plan loop moves it on with {@link reconcilePlan}.
 *
 * Phase 1's jobs start at once. A later phase's jobs are submitted waiting for approval: the
 * plan loop approves them when the phase before passes. Each gate job depends on its phase's
 * jobs, merges their branches and runs the gate's checks; the next phase's jobs start from the
 * gate's branch (`manifest.base`), so each phase builds on the one before.
 */

export const GateDecision = z.enum(['PASS', 'CONDITIONAL', 'FAIL']);
export type GateDecision = z.infer<typeof GateDecision>;

export const PHASE_STATUSES = [
  'pending',
  'running',
  'awaiting_approval',
  'passed',
  'failed',
  'cancelled',
] as const;
export const PhaseStatus = z.enum(PHASE_STATUSES);
export type PhaseStatus = z.infer<typeof PhaseStatus>;

export const PhaseState = z.object({
  name: z.string().min(1),
  approval: z.enum(['required', 'auto']),
  /** Keys of the phase's jobs. */
  jobs: z.array(z.string().min(1)).min(1),
  /** Key of the phase's gate job. */
  gate: z.string().min(1),
  status: PhaseStatus,
  decision: GateDecision.nullable(),
  /** Why the phase failed or was cancelled (`gate_failed`, `rejected`, a failed job…). */
  reason: z.string().nullable(),
  /** Who approved or rejected, when a person decided. */
  decidedBy: z.string().nullable(),
  /** The phase report artifact, once written. */
  report: z.string().nullable(),
  startedAt: z.number().int().nullable(),
  closedAt: z.number().int().nullable(),
});
export type PhaseState = z.infer<typeof PhaseState>;

export const PlanState = z.object({
  name: z.string().min(1),
  description: z.string().nullable(),
  /** Where the plan was read from. */
  source: z.string(),
  phases: z.array(PhaseState).min(1),
});
export type PlanState = z.infer<typeof PlanState>;

/** The gate job's key for a phase: beside the phase's jobs, never clashing with one of them. */
export const gateKey = (plan: string, phase: string): string => `${plan}/${phase}.gate`;

/** The branch a job's deliverable is committed to (as the factory names it). */
export const jobBranch = (key: string): string => branchName(key, key);

/**
 * The job batch that runs a plan: the composite plan job first, then each phase's jobs and its
 * gate. Submit it in one request, so a plan is stored whole or not at all.
 */
export function expandPlan(def: PlanDefinition): JobDraft[] {
  const phases: PhaseState[] = def.phases.map((phase, i) => ({
    name: phase.name,
    approval: phase.approval,
    jobs: phase.jobs.map((j) => j.key!),
    gate: gateKey(def.name, phase.name),
    status: i === 0 ? 'running' : 'pending',
    decision: null,
    reason: null,
    decidedBy: null,
    report: null,
    // Set by the control plane's first step, on its clock.
    startedAt: null,
    closedAt: null,
  }));
  const state: PlanState = {
    name: def.name,
    description: def.description,
    source: def.source,
    phases,
  };
  const planJob: JobDraft = {
    key: def.name,
    kind: 'composite',
    engine: 'plan',
    bodyMd: def.description ?? `Plan ${def.name}`,
    manifest: { plan: state },
  };
  const drafts: JobDraft[] = [planJob];
  def.phases.forEach((phase, i) => {
    const base = i === 0 ? null : jobBranch(phases[i - 1]!.gate);
    const manifestBase = base === null ? {} : { base };
    const inPhase = new Set(phases[i]!.jobs);
    for (const job of phase.jobs) {
      // A job that waits for one other job of its phase builds on that job's branch; with
      // several, it starts from the phase's base and the gate merges them all.
      const local = (job.deps ?? []).filter((d) => inPhase.has(d));
      const base = local.length === 1 ? { base: jobBranch(local[0]!) } : manifestBase;
      drafts.push({
        ...job,
        parentId: def.name,
        // Later phases wait until the plan loop opens them.
        requiresApproval: i > 0 || job.requiresApproval === true,
        manifest: { ...job.manifest, ...base },
      });
    }
    const cwd = phase.jobs.find((j) => typeof j.manifest?.cwd === 'string')?.manifest?.cwd;
    const checks = phase.gate?.checks ?? [];
    drafts.push({
      key: phases[i]!.gate,
      parentId: def.name,
      engine: 'shell',
      bodyMd:
        `Gate of phase ${phase.name}: merge ${phase.jobs.length} job branch(es)` +
        (checks.length === 0 ? '.' : ` and run: ${checks.map((c) => c.run).join('; ')}`),
      deps: phases[i]!.jobs,
      timeoutMs: phase.gate?.timeoutMs ?? null,
      maxAttempts: 2,
      manifest: {
        ...(cwd === undefined ? {} : { cwd }),
        ...manifestBase,
        plan: { name: def.name, phase: phase.name, index: i },
        gate: {
          phase: phase.name,
          checks: checks.map((c) => ({ name: c.name, run: c.run, required: c.required })),
          merge: phases[i]!.jobs,
        },
      },
    });
  });
  return drafts;
}

/** What the plan loop knows of one child job. */
export interface PlanJobView {
  id: string;
  key: string;
  stage: JobStage;
  stageReason: string | null;
  lastError: string | null;
  requiresApproval: boolean;
  approvedAt: number | null;
}

/** A side effect the plan loop applies; each is idempotent, so a repeated tick is harmless. */
export type PlanEffect =
  | { kind: 'approve'; jobId: string }
  | { kind: 'cancel'; jobId: string; reason: string }
  | { kind: 'report'; phase: number }
  | { kind: 'settle'; stage: 'succeeded' | 'failed'; reason: string | null; error: string | null };

export interface PlanStep {
  state: PlanState;
  effects: PlanEffect[];
  /** Whether `state` differs from the input (the manifest needs writing). */
  changed: boolean;
}

const OPEN: readonly PhaseStatus[] = ['running', 'awaiting_approval'];
const TERMINAL_JOB: readonly JobStage[] = ['succeeded', 'failed', 'cancelled'];

/** The phase a plan is in (running, or waiting for approval); -1 once it has ended. */
export function openPhaseIndex(state: PlanState): number {
  return state.phases.findIndex((p) => OPEN.includes(p.status));
}

/**
 * One step of a plan, level-triggered: from the plan's state, its jobs and the decision of each
 * finished gate, the next state and the effects that make the jobs agree with it. Running it
 * again on its own output changes nothing, so a crash between the effects and the state write
 * is repaired by the next tick.
 */
export function reconcilePlan(
  state: PlanState,
  jobs: ReadonlyMap<string, PlanJobView>,
  /** The decision a succeeded gate job recorded, by gate key (absent: PASS). */
  gateDecision: (gateKey: string) => GateDecision | null,
  now: number,
): PlanStep {
  const next = structuredClone(state);
  const effects: PlanEffect[] = [];
  const index = openPhaseIndex(next);
  if (index >= 0) next.phases[index]!.startedAt ??= now;
  if (index >= 0 && next.phases[index]!.status === 'running') {
    const phase = next.phases[index]!;
    const gate = jobs.get(phase.gate);
    if (gate?.stage === 'succeeded') {
      phase.decision = gateDecision(phase.gate) ?? 'PASS';
      effects.push({ kind: 'report', phase: index });
      if (phase.decision === 'PASS' && phase.approval === 'auto') pass(next, index, now);
      else phase.status = 'awaiting_approval';
    } else if (gate === undefined || gate.stage === 'failed' || gate.stage === 'cancelled') {
      phase.decision = 'FAIL';
      effects.push({ kind: 'report', phase: index });
      fail(next, index, failureReason(phase, gate, jobs), now);
    }
  }
  effects.push(...alignJobs(next, jobs));
  const changed = JSON.stringify(next) !== JSON.stringify(state);
  return { state: next, effects, changed };
}

/** A person approves the phase waiting for approval (CONDITIONAL, or `approval: required`). */
export function approvePlan(state: PlanState, by: string, now: number): PlanState {
  const next = structuredClone(state);
  const index = awaiting(next, 'approve');
  next.phases[index]!.decidedBy = by;
  pass(next, index, now);
  return next;
}

/** A person rejects the phase waiting for approval: the plan stops there. */
export function rejectPlan(state: PlanState, by: string, now: number): PlanState {
  const next = structuredClone(state);
  const index = awaiting(next, 'reject');
  next.phases[index]!.decidedBy = by;
  fail(next, index, 'rejected', now);
  return next;
}

/** The plan was cancelled: every open or pending phase is cancelled. */
export function cancelPlanState(state: PlanState, now: number): PlanState {
  const next = structuredClone(state);
  for (const phase of next.phases) {
    if (phase.status === 'passed' || phase.status === 'failed') continue;
    phase.status = 'cancelled';
    phase.reason ??= 'cancelled';
    phase.closedAt ??= now;
  }
  return next;
}

/** Why a plan ended, for its stage reason; null while it runs or when it succeeded. */
export function planOutcome(
  state: PlanState,
): { stage: 'succeeded' | 'failed'; reason: string | null; error: string | null } | null {
  if (state.phases.every((p) => p.status === 'passed'))
    return { stage: 'succeeded', reason: null, error: null };
  const failed = state.phases.find((p) => p.status === 'failed');
  if (failed === undefined) return null;
  const reason = failed.reason === 'rejected' ? 'rejected' : 'gate_failed';
  const detail =
    failed.reason === 'rejected'
      ? `phase ${failed.name} was rejected${failed.decidedBy ? ` by ${failed.decidedBy}` : ''}`
      : `phase ${failed.name} failed: ${failed.reason ?? 'its gate failed'}`;
  return { stage: 'failed', reason, error: detail };
}

function awaiting(state: PlanState, verb: string): number {
  const index = state.phases.findIndex((p) => p.status === 'awaiting_approval');
  if (index < 0) {
    const open = state.phases[openPhaseIndex(state)];
    throw new PlanNotAwaitingError(
      state.name,
      verb,
      open === undefined
        ? 'the plan has finished'
        : `phase ${open.name} is ${open.status.replace('_', ' ')}, not waiting for approval`,
    );
  }
  return index;
}

/** `fleet approve` / `reject` on a plan that is not waiting for a person. */
export class PlanNotAwaitingError extends FleetError {
  readonly code = 'illegal_transition';

  constructor(plan: string, verb: string, why: string) {
    super(`cannot ${verb} plan ${plan}: ${why}`);
    this.name = 'PlanNotAwaitingError';
  }
}

function pass(state: PlanState, index: number, now: number): void {
  const phase = state.phases[index]!;
  phase.status = 'passed';
  phase.closedAt = now;
  const following = state.phases[index + 1];
  if (following !== undefined) {
    following.status = 'running';
    following.startedAt = now;
  }
}

function fail(state: PlanState, index: number, reason: string, now: number): void {
  const phase = state.phases[index]!;
  phase.status = 'failed';
  phase.reason = reason;
  phase.closedAt = now;
  for (const later of state.phases.slice(index + 1)) {
    later.status = 'cancelled';
    later.reason = reason === 'rejected' ? 'rejected' : 'gate_failed';
    later.closedAt = now;
  }
}

function failureReason(
  phase: PhaseState,
  gate: PlanJobView | undefined,
  jobs: ReadonlyMap<string, PlanJobView>,
): string {
  if (gate === undefined) return `its gate job ${phase.gate} is missing`;
  if (gate.stageReason === 'dep_failed') {
    const failed = phase.jobs
      .map((k) => jobs.get(k))
      .filter((j) => j !== undefined && (j.stage === 'failed' || j.stage === 'cancelled'));
    if (failed.length > 0) return `job ${failed.map((j) => `${j!.key} ${j!.stage}`).join(', ')}`;
  }
  if (gate.stage === 'cancelled') return 'its gate was cancelled';
  return gate.lastError ?? 'its gate failed';
}

/** Effects that make the jobs agree with the state: open phases approved, closed ones stopped. */
function alignJobs(state: PlanState, jobs: ReadonlyMap<string, PlanJobView>): PlanEffect[] {
  const effects: PlanEffect[] = [];
  state.phases.forEach((phase, i) => {
    const views = [...phase.jobs, phase.gate].flatMap((k) => {
      const j = jobs.get(k);
      return j === undefined ? [] : [j];
    });
    // Only later phases wait for the plan: a first-phase job needing approval waits for a person.
    if (phase.status === 'running' && i > 0) {
      for (const j of views)
        if (j.stage === 'blocked' && j.requiresApproval && j.approvedAt === null)
          effects.push({ kind: 'approve', jobId: j.id });
    } else if (phase.status === 'cancelled' || phase.status === 'failed') {
      for (const j of views)
        if (!TERMINAL_JOB.includes(j.stage))
          effects.push({ kind: 'cancel', jobId: j.id, reason: phase.reason ?? 'gate_failed' });
    }
  });
  const outcome = planOutcome(state);
  if (outcome !== null) effects.push({ kind: 'settle', ...outcome });
  return effects;
}
