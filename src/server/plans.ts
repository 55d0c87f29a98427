import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  ConflictError,
  GateDecision,
  IllegalTransitionError,
  NotFoundError,
  PlanState,
  approvePlan,
  cancelPlanState,
  isTerminal,
  openPhaseIndex,
  reconcilePlan,
  rejectPlan,
  renderPhaseReport,
  type Job,
  type PlanEffect,
  type PlanJobView,
  type ReportJob,
} from '../core/index.js';
import type { Store } from '../store/index.js';
import type { EventHub } from './event-hub.js';

/** What moving plans on needs. */
export interface PlanContext {
  store: Store;
  hub: EventHub;
  logger: Logger;
  clock: () => number;
}

/** A plan as the API shows it: the composite job, its progress, its jobs and reports. */
export interface PlanView {
  plan: Job;
  state: PlanState;
  jobs: Job[];
}

/** Reads a plan: 404 when `id` is not a composite job of the tenant. */
export async function readPlan(store: Store, tenant: string, id: string): Promise<PlanView> {
  const plan = await store.getJob(tenant, id);
  if (plan === null || plan.kind !== 'composite') throw new NotFoundError('plan', id);
  return { plan, state: planState(plan), jobs: await childrenOf(store, tenant, id) };
}

/**
 * One step of one plan: reads it, decides with {@link reconcilePlan}, applies the effects
 * (approve the next phase, cancel stopped ones, write phase reports), records the new state
 * (guarded by rev: a concurrent step wins and this one is dropped), and settles a finished
 * plan. Safe to run twice at once: every effect is idempotent.
 */
export async function advancePlan(ctx: PlanContext, tenant: string, id: string): Promise<void> {
  const { store } = ctx;
  const plan = await store.getJob(tenant, id);
  if (plan === null || plan.kind !== 'composite' || isTerminal(plan.stage)) return;
  const parsed = PlanState.safeParse((plan.manifest as { plan?: unknown }).plan);
  if (!parsed.success) {
    ctx.logger.error({ planId: id, issues: parsed.error.issues }, 'plan state is malformed');
    await settle(ctx, tenant, id, {
      kind: 'settle',
      stage: 'failed',
      reason: 'invalid_plan',
      error: `manifest.plan is malformed: ${parsed.error.issues[0]?.message ?? 'unknown'}`,
    });
    return;
  }
  const children = await childrenOf(store, tenant, id);
  const byKey = new Map<string, Job>();
  for (const j of children) if (j.key !== null) byKey.set(j.key, j);
  // Only the open phase's gate is decided on; earlier gates' decisions are in the state already.
  const open = parsed.data.phases[openPhaseIndex(parsed.data)];
  const gate = open?.status === 'running' ? byKey.get(open.gate) : undefined;
  const decision = gate?.stage === 'succeeded' ? await gateDecision(store, gate) : null;
  const step = reconcilePlan(
    parsed.data,
    new Map([...byKey].map(([k, j]) => [k, view(j)])),
    (key) => (key === gate?.key ? decision : null),
    ctx.clock(),
  );
  let changed = step.changed;
  for (const effect of step.effects) {
    if (effect.kind === 'approve') await approve(ctx, tenant, effect.jobId);
    else if (effect.kind === 'report' && step.state.phases[effect.phase]!.report === null) {
      step.state.phases[effect.phase]!.report = await writeReport(
        ctx,
        tenant,
        plan,
        step.state,
        effect.phase,
        byKey,
      );
      changed = true;
    }
  }
  // Cancels come in plan order (a phase's jobs, then its gate); applied dependents first, since
  // cancelling a job fails whatever still waits on it as dep_failed, hiding the plan's reason.
  for (const effect of [...step.effects].reverse())
    if (effect.kind === 'cancel') await cancelJob(ctx, tenant, effect.jobId, effect.reason);
  if (changed) {
    try {
      await store.updateJob(tenant, id, plan.rev, {
        manifest: { ...plan.manifest, plan: step.state },
      });
    } catch (err) {
      if (err instanceof ConflictError) return; // another step moved it first
      throw err;
    }
    ctx.hub.publish(id);
  }
  for (const effect of step.effects)
    if (effect.kind === 'settle') await settle(ctx, tenant, id, effect);
}

/**
 * A person approves or rejects the plan's phase that waits for approval.
 * @throws PlanNotAwaitingError when no phase waits; ConflictError when it changed meanwhile.
 */
export async function decidePlan(
  ctx: PlanContext,
  tenant: string,
  id: string,
  verdict: 'approve' | 'reject',
  by: string,
): Promise<Job> {
  const { plan, state } = await readPlan(ctx.store, tenant, id);
  const next =
    verdict === 'approve'
      ? approvePlan(state, by, ctx.clock())
      : rejectPlan(state, by, ctx.clock());
  await ctx.store.updateJob(tenant, id, plan.rev, { manifest: { ...plan.manifest, plan: next } });
  ctx.logger.info({ planId: id, verdict, by }, `plan ${state.name}: ${verdict}d by ${by}`);
  await advancePlan(ctx, tenant, id);
  return (await ctx.store.getJob(tenant, id))!;
}

/** Cancels a plan: its unfinished jobs (running agents are stopped), then the plan itself. */
export async function cancelPlan(
  ctx: PlanContext,
  tenant: string,
  id: string,
  reason: string,
): Promise<Job> {
  const { plan, state, jobs } = await readPlan(ctx.store, tenant, id);
  if (!isTerminal(plan.stage)) {
    const next = cancelPlanState(state, ctx.clock());
    try {
      await ctx.store.updateJob(tenant, id, plan.rev, {
        manifest: { ...plan.manifest, plan: next },
      });
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  // Newest first, so a dependent is cancelled before its dependency fails it as dep_failed.
  for (const job of [...jobs].reverse())
    if (!isTerminal(job.stage)) await cancelJob(ctx, tenant, job.id, reason);
  const cancelled = await ctx.store.cancel(tenant, id, reason);
  ctx.hub.publish(id);
  return cancelled;
}

/**
 * Cancels one job and, when a factory holds it, tells that factory to stop the agent (on
 * whichever replica it is connected). A job that finished meanwhile is left as it is, unless
 * `strict`: then it is an IllegalTransitionError.
 */
export async function cancelJob(
  ctx: Pick<PlanContext, 'store' | 'hub'>,
  tenant: string,
  id: string,
  reason: string,
  /** Whether a finished job is an error (a person asked) rather than left alone. */
  strict = false,
): Promise<Job> {
  const before = await ctx.store.getJob(tenant, id);
  if (before === null) throw new NotFoundError('job', id);
  if (!strict && isTerminal(before.stage)) return before;
  const job = await ctx.store.cancel(tenant, id, reason);
  ctx.hub.publish(job.id);
  const lease = before.lease;
  if (lease !== null)
    ctx.hub.publishCancel({
      factoryId: lease.holderFactoryId,
      jobId: job.id,
      epoch: lease.leaseEpoch,
      reason,
    });
  return job;
}

export interface PlanLoopOptions extends PlanContext {
  intervalMs: number;
  signal: AbortSignal;
  /** Step plans only while this holds (this replica leads); default: always. */
  isLeader?: () => boolean;
}

/**
 * Moves every unfinished plan on, each tick, until `signal` aborts. Only the leader steps
 * plans; a failing step is logged and tried again next tick.
 */
export async function runPlanLoop(options: PlanLoopOptions): Promise<void> {
  const { store, logger, intervalMs, signal } = options;
  const isLeader = options.isLeader ?? (() => true);
  while (!signal.aborted) {
    if (isLeader()) {
      try {
        for (const { tenant, id } of await store.openComposites()) {
          try {
            await advancePlan(options, tenant, id);
          } catch (err) {
            logger.error({ err, planId: id, tenant }, 'plan step failed; trying again next tick');
          }
        }
      } catch (err) {
        logger.error({ err }, 'listing open plans failed; trying again next tick');
      }
    }
    try {
      await sleep(intervalMs, undefined, { signal });
    } catch {
      // Aborted: the loop condition ends it.
    }
  }
}

function planState(plan: Job): PlanState {
  const parsed = PlanState.safeParse((plan.manifest as { plan?: unknown }).plan);
  if (!parsed.success)
    throw new IllegalTransitionError(plan.stage, 'approve', plan.id, 'its plan state is malformed');
  return parsed.data;
}

async function childrenOf(store: Store, tenant: string, id: string): Promise<Job[]> {
  const jobs: Job[] = [];
  let after: string | undefined;
  do {
    const page = await store.listJobs(tenant, {
      parentId: id,
      limit: 1000,
      ...(after === undefined ? {} : { after }),
    });
    jobs.push(...page.items);
    after = page.next ?? undefined;
  } while (after !== undefined);
  return jobs.reverse();
}

/** The decision the gate's successful run recorded (`output.gate.decision`). */
async function gateDecision(store: Store, gate: Job): Promise<GateDecision | null> {
  const runs = await store.listRuns(gate.tenant, gate.id);
  const run = runs.filter((r) => r.result === 'success').at(-1);
  const decision = GateDecision.safeParse(
    (run?.output as { gate?: { decision?: unknown } } | null)?.gate?.decision,
  );
  return decision.success ? decision.data : null;
}

function view(job: Job): PlanJobView {
  return {
    id: job.id,
    key: job.key!,
    stage: job.stage,
    stageReason: job.stageReason,
    lastError: job.lastError,
    requiresApproval: job.requiresApproval,
    approvedAt: job.approvedAt,
  };
}

async function approve(ctx: PlanContext, tenant: string, jobId: string): Promise<void> {
  try {
    const job = await ctx.store.approve(tenant, jobId);
    ctx.hub.publish(jobId);
    if (job.stage === 'queued') ctx.hub.publishWork(tenant);
  } catch (err) {
    if (!(err instanceof IllegalTransitionError)) throw err; // approved meanwhile
  }
}

async function settle(
  ctx: PlanContext,
  tenant: string,
  id: string,
  effect: Extract<PlanEffect, { kind: 'settle' }>,
): Promise<void> {
  try {
    await ctx.store.settle(tenant, id, effect);
    ctx.hub.publish(id);
    ctx.logger.info({ planId: id, stage: effect.stage, reason: effect.reason }, 'plan finished');
  } catch (err) {
    if (!(err instanceof IllegalTransitionError)) throw err; // settled meanwhile
  }
}

async function writeReport(
  ctx: PlanContext,
  tenant: string,
  plan: Job,
  state: PlanState,
  index: number,
  byKey: ReadonlyMap<string, Job>,
): Promise<string> {
  const phase = state.phases[index]!;
  const name = `phase-${index + 1}-${phase.name}.md`;
  // A step that lost the race to record its state may have written the report already.
  const written = (await ctx.store.listArtifacts(tenant, plan.id)).find(
    (a) => a.kind === 'report' && a.name === name,
  );
  if (written !== undefined) return written.id;
  const withRuns = async (job: Job): Promise<ReportJob> => ({
    job,
    runs: await ctx.store.listRuns(tenant, job.id),
  });
  const jobs = await Promise.all(
    phase.jobs.flatMap((k) => {
      const j = byKey.get(k);
      return j === undefined ? [] : [withRuns(j)];
    }),
  );
  const gateJob = byKey.get(phase.gate);
  const gate = gateJob === undefined ? null : await withRuns(gateJob);
  // Written before the phase closes (the closing time is the report's time).
  const closed = structuredClone(state);
  closed.phases[index]!.closedAt ??= ctx.clock();
  const text = renderPhaseReport(closed, index, jobs, gate);
  const artifact = await ctx.store.attachArtifact(
    tenant,
    plan.id,
    {
      kind: 'report',
      name,
      mediaType: 'text/markdown; charset=utf-8',
    },
    new TextEncoder().encode(text),
  );
  return artifact.id;
}
