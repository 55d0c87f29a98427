import { describe, expect, it } from 'vitest';
import {
  ACTIVE_STAGES,
  IllegalTransitionError,
  JOB_ACTIONS,
  JOB_STAGES,
  JobStage,
  TERMINAL_STAGES,
  FleetError,
  canTransition,
  isActive,
  isTerminal,
  stagesAllowing,
  transition,
  type JobAction,
} from '../../src/core/index.js';

type Stage = (typeof JOB_STAGES)[number];

/**
 * The job lifecycle, written out by hand from DESIGN.md ("Lifecycles") and the action docs in
 * job-stage.ts. Every (stage, action) pair not listed here must be rejected.
 */
const EXPECTED: Record<Stage, Partial<Record<JobAction, Stage>>> = {
  blocked: {
    unblock: 'queued',
    approve: 'blocked',
    cancel: 'cancelled',
    dep_failed: 'failed',
    settle: 'succeeded',
    abandon: 'failed',
  },
  queued: {
    claim: 'claimed',
    cancel: 'cancelled',
    dep_failed: 'failed',
    settle: 'succeeded',
    abandon: 'failed',
  },
  claimed: {
    start: 'running',
    succeed: 'succeeded',
    requeue: 'queued',
    fail: 'failed',
    cancel: 'cancelled',
  },
  running: {
    verify: 'verifying',
    succeed: 'succeeded',
    requeue: 'queued',
    fail: 'failed',
    cancel: 'cancelled',
  },
  verifying: {
    succeed: 'succeeded',
    requeue: 'queued',
    fail: 'failed',
    cancel: 'cancelled',
  },
  succeeded: {},
  failed: {
    retry: 'queued',
    reopen: 'blocked',
  },
  cancelled: {
    retry: 'queued',
    reopen: 'blocked',
  },
};

const ALL_PAIRS = JOB_STAGES.flatMap((stage) =>
  JOB_ACTIONS.map((action) => ({ stage, action, to: EXPECTED[stage][action] })),
);
const LEGAL = ALL_PAIRS.filter((p) => p.to !== undefined);
const ILLEGAL = ALL_PAIRS.filter((p) => p.to === undefined);

describe('job stage vocabulary', () => {
  it('has exactly the stages and actions the expected table covers', () => {
    expect([...JOB_STAGES]).toEqual([
      'blocked',
      'queued',
      'claimed',
      'running',
      'verifying',
      'succeeded',
      'failed',
      'cancelled',
    ]);
    expect([...JOB_ACTIONS].sort()).toEqual(
      [
        'unblock',
        'approve',
        'claim',
        'start',
        'verify',
        'succeed',
        'requeue',
        'fail',
        'cancel',
        'dep_failed',
        'retry',
        'reopen',
        'settle',
        'abandon',
      ].sort(),
    );
    expect(Object.keys(EXPECTED).sort()).toEqual([...JOB_STAGES].sort());
  });

  it('covers all 112 pairs, 29 legal and 83 illegal', () => {
    expect(ALL_PAIRS).toHaveLength(JOB_STAGES.length * JOB_ACTIONS.length);
    expect(ALL_PAIRS).toHaveLength(112);
    expect(LEGAL).toHaveLength(29);
    expect(ILLEGAL).toHaveLength(83);
  });

  it('JobStage schema accepts every stage and nothing else', () => {
    for (const stage of JOB_STAGES) expect(JobStage.parse(stage)).toBe(stage);
    expect(JobStage.safeParse('done').success).toBe(false);
    expect(JobStage.safeParse('').success).toBe(false);
  });
});

describe('transition: legal pairs', () => {
  it.each(LEGAL)('$stage --$action--> $to', ({ stage, action, to }) => {
    expect(transition(stage, action)).toBe(to);
    expect(transition(stage, action, 'job-1')).toBe(to);
    expect(canTransition(stage, action)).toBe(true);
    expect(stagesAllowing(action)).toContain(stage);
  });
});

describe('transition: illegal pairs', () => {
  it.each(ILLEGAL)('$stage --$action--> throws', ({ stage, action }) => {
    expect(canTransition(stage, action)).toBe(false);
    expect(stagesAllowing(action)).not.toContain(stage);

    let thrown: unknown;
    try {
      transition(stage, action, 'job-42');
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(IllegalTransitionError);
    expect(thrown).toBeInstanceOf(FleetError);
    const err = thrown as IllegalTransitionError;
    expect(err.code).toBe('illegal_transition');
    expect(err.from).toBe(stage);
    expect(err.action).toBe(action);
    expect(err.jobId).toBe('job-42');
    expect(err.name).toBe('IllegalTransitionError');
    expect(err.message).toBe(`cannot ${action} a job in stage ${stage} (job job-42)`);
  });

  it('omits the job id from the error when none is given', () => {
    try {
      transition('succeeded', 'cancel');
      expect.unreachable('transition should throw');
    } catch (e) {
      expect(e).toBeInstanceOf(IllegalTransitionError);
      const err = e as IllegalTransitionError;
      expect(err.jobId).toBeUndefined();
      expect(err.message).toBe('cannot cancel a job in stage succeeded');
    }
  });

  it('never lets a terminal job be cancelled, failed or succeeded again (exactly-once completion)', () => {
    for (const stage of TERMINAL_STAGES) {
      for (const action of ['succeed', 'fail', 'cancel', 'requeue', 'dep_failed'] as const) {
        expect(() => transition(stage, action)).toThrow(IllegalTransitionError);
      }
    }
  });
});

describe('stagesAllowing', () => {
  it.each([...JOB_ACTIONS])('%s is allowed exactly from the expected stages', (action) => {
    const expected = JOB_STAGES.filter((s) => EXPECTED[s][action] !== undefined);
    expect([...stagesAllowing(action)].sort()).toEqual([...expected].sort());
  });
});

describe('lifecycle walks', () => {
  const walk = (start: Stage, actions: JobAction[]): Stage =>
    actions.reduce<Stage>((stage, action) => transition(stage, action), start);

  it('blocked -> queued -> claimed -> running -> verifying -> succeeded', () => {
    expect(walk('blocked', ['approve', 'unblock', 'claim', 'start', 'verify', 'succeed'])).toBe(
      'succeeded',
    );
  });

  it('a failed attempt goes back to queued and can be claimed again', () => {
    expect(walk('queued', ['claim', 'start', 'requeue', 'claim', 'start', 'fail'])).toBe('failed');
  });

  it('a failed job can be retried, or reopened to wait for its deps again', () => {
    expect(walk('failed', ['retry', 'claim'])).toBe('claimed');
    expect(walk('cancelled', ['reopen', 'unblock', 'claim'])).toBe('claimed');
  });
});

describe('isTerminal / isActive', () => {
  const terminal: Stage[] = ['succeeded', 'failed', 'cancelled'];
  const active: Stage[] = ['claimed', 'running', 'verifying'];

  it.each([...JOB_STAGES])('%s', (stage) => {
    expect(isTerminal(stage)).toBe(terminal.includes(stage));
    expect(isActive(stage)).toBe(active.includes(stage));
    // No stage is both; blocked and queued are neither.
    expect(isTerminal(stage) && isActive(stage)).toBe(false);
  });

  it('matches the exported stage groups', () => {
    expect([...TERMINAL_STAGES].sort()).toEqual([...terminal].sort());
    expect([...ACTIVE_STAGES].sort()).toEqual([...active].sort());
  });

  it('terminal stages have no way forward except retry/reopen', () => {
    for (const stage of terminal) {
      const legal = JOB_ACTIONS.filter((a) => canTransition(stage, a));
      expect(legal.every((a) => a === 'retry' || a === 'reopen')).toBe(true);
    }
  });
});
