import { describe, expect, it } from 'vitest';
import {
  RUN_RESULTS,
  attemptOutcome,
  canTransition,
  type RunResult,
} from '../../src/core/index.js';

const FAILURES: RunResult[] = ['agent_failed', 'gate_failed', 'timeout', 'lease_lost', 'crashed'];

describe('attemptOutcome', () => {
  it('knows every run result', () => {
    expect([...RUN_RESULTS].sort()).toEqual([...FAILURES, 'success', 'cancelled'].sort());
  });

  describe.each([
    { label: 'attempts left', attempts: 1, maxAttempts: 3 },
    { label: 'last attempt but one', attempts: 2, maxAttempts: 3 },
    { label: 'attempts spent', attempts: 3, maxAttempts: 3 },
    { label: 'attempts over the limit', attempts: 5, maxAttempts: 3 },
    { label: 'single attempt allowed', attempts: 1, maxAttempts: 1 },
  ])('$label ($attempts of $maxAttempts)', ({ attempts, maxAttempts }) => {
    const left = attempts < maxAttempts;

    it.each([true, false])('success succeeds (retryable=%s)', (retryable) => {
      expect(attemptOutcome({ result: 'success', attempts, maxAttempts, retryable })).toBe(
        'succeed',
      );
    });

    it.each([true, false])('cancelled cancels (retryable=%s)', (retryable) => {
      expect(attemptOutcome({ result: 'cancelled', attempts, maxAttempts, retryable })).toBe(
        'cancel',
      );
    });

    it.each(FAILURES)(`%s ${left ? 'requeues' : 'fails'} when retryable`, (result) => {
      expect(attemptOutcome({ result, attempts, maxAttempts, retryable: true })).toBe(
        left ? 'requeue' : 'fail',
      );
    });

    it.each(FAILURES)('%s fails when not retryable', (result) => {
      expect(attemptOutcome({ result, attempts, maxAttempts, retryable: false })).toBe('fail');
    });
  });

  it('every outcome is a legal action from every active stage', () => {
    for (const result of RUN_RESULTS) {
      for (const retryable of [true, false]) {
        for (const attempts of [1, 2, 3]) {
          const action = attemptOutcome({ result, attempts, maxAttempts: 2, retryable });
          for (const stage of ['claimed', 'running', 'verifying'] as const) {
            expect(canTransition(stage, action)).toBe(true);
          }
        }
      }
    }
  });
});
