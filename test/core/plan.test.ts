import { describe, expect, it } from 'vitest';
import {
  type JobStage,
  type PlanDefinition,
  PlanNotAwaitingError,
  type PlanJobView,
  PlanState,
  approvePlan,
  cancelPlanState,
  expandPlan,
  gateKey,
  jobBranch,
  planOutcome,
  reconcilePlan,
  rejectPlan,
} from '../../src/core/index.js';

const job = (key: string) => ({ key, bodyMd: `echo ${key}`, manifest: { cwd: '/repo' } });

const def: PlanDefinition = {
  name: 'rel',
  description: null,
  source: '/plans/rel/plan.yaml',
  workspace: null,
  phases: [
    {
      name: 'build',
      jobs: [job('rel/build/a'), job('rel/build/b')],
      gate: { checks: [{ name: 'test', run: 'npm test', required: true }], timeoutMs: 60_000 },
      approval: 'auto',
    },
    { name: 'ship', jobs: [job('rel/ship/c')], gate: null, approval: 'required' },
  ],
};

const submitted = () => PlanState.parse(expandPlan(def)[0]!.manifest!.plan);
/** The plan's state after the control plane's first step (which stamps phase 1's start). */
const state = () => {
  const s = submitted();
  s.phases[0]!.startedAt = 1_000;
  return s;
};

/** Job views as a store would show them right after submitting the plan. */
function jobsAfterSubmit(): Map<string, PlanJobView> {
  const views = new Map<string, PlanJobView>();
  for (const d of expandPlan(def).slice(1)) {
    views.set(d.key!, {
      id: `id:${d.key}`,
      key: d.key!,
      stage: d.requiresApproval || (d.deps?.length ?? 0) > 0 ? 'blocked' : 'queued',
      stageReason: null,
      lastError: null,
      requiresApproval: d.requiresApproval ?? false,
      approvedAt: null,
    });
  }
  return views;
}

function set(views: Map<string, PlanJobView>, key: string, stage: JobStage, reason?: string) {
  const v = views.get(key)!;
  views.set(key, { ...v, stage, stageReason: reason ?? null });
}

describe('expandPlan', () => {
  const drafts = expandPlan(def);

  it('makes the plan job, each phase’s jobs and one gate per phase, in one batch', () => {
    expect(drafts.map((d) => d.key)).toEqual([
      'rel',
      'rel/build/a',
      'rel/build/b',
      'rel/build.gate',
      'rel/ship/c',
      'rel/ship.gate',
    ]);
    expect(drafts[0]).toMatchObject({ kind: 'composite', key: 'rel' });
    for (const d of drafts.slice(1)) expect(d.parentId).toBe('rel');
  });

  it('holds later phases for the plan loop and starts them from the previous gate’s branch', () => {
    const byKey = new Map(drafts.map((d) => [d.key, d]));
    expect(byKey.get('rel/build/a')).toMatchObject({ requiresApproval: false });
    expect(byKey.get('rel/build/a')!.manifest).not.toHaveProperty('base');
    expect(byKey.get('rel/ship/c')).toMatchObject({
      requiresApproval: true,
      manifest: { base: 'fleet/rel/build.gate', cwd: '/repo' },
    });
    expect(jobBranch(gateKey('rel', 'build'))).toBe('fleet/rel/build.gate');
  });

  it('gives each gate its phase’s jobs as deps and as branches to merge, and its checks', () => {
    const gate = drafts.find((d) => d.key === 'rel/build.gate')!;
    expect(gate).toMatchObject({
      engine: 'shell',
      deps: ['rel/build/a', 'rel/build/b'],
      timeoutMs: 60_000,
      manifest: {
        cwd: '/repo',
        gate: {
          phase: 'build',
          checks: [{ name: 'test', run: 'npm test', required: true }],
          merge: ['rel/build/a', 'rel/build/b'],
        },
      },
    });
    // A phase without a gate still gets one: it merges the phase's branches, no checks.
    const ship = drafts.find((d) => d.key === 'rel/ship.gate')!;
    expect(ship.manifest).toMatchObject({ gate: { checks: [], merge: ['rel/ship/c'] } });
  });

  it('records the plan’s state: phase 1 running, the rest pending', () => {
    expect(submitted().phases.map((p) => [p.name, p.status, p.startedAt])).toEqual([
      ['build', 'running', null],
      ['ship', 'pending', null],
    ]);
  });

  it('starts a job from the branch of the one job of its phase it waits for', () => {
    const chained: PlanDefinition = {
      ...def,
      phases: [
        {
          ...def.phases[0]!,
          jobs: [
            job('rel/build/a'),
            { ...job('rel/build/b'), deps: ['rel/build/a'] },
            { ...job('rel/build/c'), deps: ['rel/build/a', 'rel/build/b'] },
          ],
        },
        def.phases[1]!,
      ],
    };
    const byKey = new Map(expandPlan(chained).map((d) => [d.key, d]));
    expect(byKey.get('rel/build/b')!.manifest).toMatchObject({ base: 'fleet/rel/build/a' });
    expect(byKey.get('rel/build/c')!.manifest).not.toHaveProperty('base');
  });
});

describe('reconcilePlan', () => {
  const noDecision = () => null;

  it('stamps the running phase’s start on the control plane’s clock, once', () => {
    const first = reconcilePlan(submitted(), jobsAfterSubmit(), noDecision, 1_000);
    expect(first).toMatchObject({ changed: true, effects: [] });
    expect(first.state.phases[0]!.startedAt).toBe(1_000);
    expect(reconcilePlan(first.state, jobsAfterSubmit(), noDecision, 2_000).changed).toBe(false);
  });

  it('does nothing while the phase runs (and its first-phase jobs need no plan approval)', () => {
    const step = reconcilePlan(state(), jobsAfterSubmit(), noDecision, 2_000);
    expect(step).toMatchObject({ changed: false, effects: [] });
  });

  it('PASS: closes the phase, opens the next and approves its jobs and gate-free wait', () => {
    const jobs = jobsAfterSubmit();
    set(jobs, 'rel/build.gate', 'succeeded');
    const step = reconcilePlan(state(), jobs, () => 'PASS', 2_000);
    expect(step.changed).toBe(true);
    expect(step.state.phases.map((p) => p.status)).toEqual(['passed', 'running']);
    expect(step.state.phases[0]).toMatchObject({ decision: 'PASS', closedAt: 2_000 });
    expect(step.effects).toEqual([
      { kind: 'report', phase: 0 },
      { kind: 'approve', jobId: 'id:rel/ship/c' },
    ]);
    // Level-triggered: the next tick, with the approval applied, changes nothing.
    set(jobs, 'rel/ship/c', 'queued');
    jobs.set('rel/ship/c', { ...jobs.get('rel/ship/c')!, approvedAt: 2_000 });
    expect(reconcilePlan(step.state, jobs, () => 'PASS', 3_000)).toMatchObject({
      changed: false,
      effects: [],
    });
  });

  it('CONDITIONAL, or approval: required, waits for a person', () => {
    const jobs = jobsAfterSubmit();
    set(jobs, 'rel/build.gate', 'succeeded');
    const step = reconcilePlan(state(), jobs, () => 'CONDITIONAL', 2_000);
    expect(step.state.phases.map((p) => p.status)).toEqual(['awaiting_approval', 'pending']);
    expect(step.effects).toEqual([{ kind: 'report', phase: 0 }]);

    const approved = approvePlan(step.state, 'token t1', 3_000);
    expect(approved.phases.map((p) => p.status)).toEqual(['passed', 'running']);
    expect(approved.phases[0]!.decidedBy).toBe('token t1');
    const next = reconcilePlan(approved, jobs, () => 'CONDITIONAL', 3_000);
    expect(next.effects).toContainEqual({ kind: 'approve', jobId: 'id:rel/ship/c' });

    // The last phase needs approval even on PASS; approving it finishes the plan.
    set(jobs, 'rel/ship.gate', 'succeeded');
    const last = reconcilePlan(next.state, jobs, () => 'PASS', 4_000);
    expect(last.state.phases[1]!.status).toBe('awaiting_approval');
    const done = approvePlan(last.state, 'token t1', 5_000);
    expect(planOutcome(done)).toEqual({ stage: 'succeeded', reason: null, error: null });
    expect(reconcilePlan(done, jobs, () => 'PASS', 5_000).effects).toEqual([
      { kind: 'settle', stage: 'succeeded', reason: null, error: null },
    ]);
  });

  it('FAIL: the plan stops; later phases are cancelled with reason gate_failed', () => {
    const jobs = jobsAfterSubmit();
    set(jobs, 'rel/build/a', 'succeeded');
    set(jobs, 'rel/build/b', 'succeeded');
    jobs.set('rel/build.gate', {
      ...jobs.get('rel/build.gate')!,
      stage: 'failed',
      stageReason: null,
      lastError: 'gate build: FAIL: required check failed: "npm test" (exit 1)',
    });
    const step = reconcilePlan(state(), jobs, noDecision, 2_000);
    expect(step.state.phases.map((p) => [p.status, p.reason])).toEqual([
      ['failed', 'gate build: FAIL: required check failed: "npm test" (exit 1)'],
      ['cancelled', 'gate_failed'],
    ]);
    expect(step.effects).toEqual([
      { kind: 'report', phase: 0 },
      { kind: 'cancel', jobId: 'id:rel/ship/c', reason: 'gate_failed' },
      { kind: 'cancel', jobId: 'id:rel/ship.gate', reason: 'gate_failed' },
      {
        kind: 'settle',
        stage: 'failed',
        reason: 'gate_failed',
        error: 'phase build failed: gate build: FAIL: required check failed: "npm test" (exit 1)',
      },
    ]);
  });

  it('a failed job fails its phase (the gate fails dep_failed) and says which job', () => {
    const jobs = jobsAfterSubmit();
    set(jobs, 'rel/build/a', 'failed', 'agent_failed');
    set(jobs, 'rel/build/b', 'running');
    set(jobs, 'rel/build.gate', 'failed', 'dep_failed');
    const step = reconcilePlan(state(), jobs, noDecision, 2_000);
    expect(step.state.phases[0]).toMatchObject({
      status: 'failed',
      reason: 'job rel/build/a failed',
    });
    // The phase's job still running is stopped too.
    expect(step.effects).toContainEqual({
      kind: 'cancel',
      jobId: 'id:rel/build/b',
      reason: 'job rel/build/a failed',
    });
  });

  it('reject stops the plan with reason rejected; approve/reject need a waiting phase', () => {
    const jobs = jobsAfterSubmit();
    expect(() => approvePlan(state(), 'me', 2_000)).toThrow(PlanNotAwaitingError);
    expect(() => rejectPlan(state(), 'me', 2_000)).toThrow(
      /cannot reject plan rel: phase build is running, not waiting for approval/,
    );
    set(jobs, 'rel/build.gate', 'succeeded');
    const waiting = reconcilePlan(state(), jobs, () => 'CONDITIONAL', 2_000).state;
    const rejected = rejectPlan(waiting, 'token t2', 3_000);
    expect(rejected.phases.map((p) => [p.status, p.reason])).toEqual([
      ['failed', 'rejected'],
      ['cancelled', 'rejected'],
    ]);
    expect(planOutcome(rejected)).toEqual({
      stage: 'failed',
      reason: 'rejected',
      error: 'phase build was rejected by token t2',
    });
  });

  it('cancelling keeps closed phases and cancels the rest', () => {
    const jobs = jobsAfterSubmit();
    set(jobs, 'rel/build.gate', 'succeeded');
    const passed = reconcilePlan(state(), jobs, () => 'PASS', 2_000).state;
    const cancelled = cancelPlanState(passed, 3_000);
    expect(cancelled.phases.map((p) => p.status)).toEqual(['passed', 'cancelled']);
  });
});
