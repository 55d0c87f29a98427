import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, retryDelayMs, type BackoffPolicy } from '../../src/core/index.js';

const ZERO = () => 0;
const ALMOST_ONE = () => 1 - Number.EPSILON;
const HALF = () => 0.5;

describe('retryDelayMs', () => {
  it('has sane defaults: 1s base, doubling, capped at 10 minutes', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 1_000, maxMs: 600_000, factor: 2 });
  });

  it.each([
    // attempt, exponential delay (before jitter) under DEFAULT_BACKOFF
    [1, 1_000],
    [2, 2_000],
    [3, 4_000],
    [4, 8_000],
    [10, 512_000],
    [11, 600_000], // 1_024_000 capped
    [50, 600_000],
  ])('attempt %i stays within [exp/2, exp] for exp=%i', (attempt, exp) => {
    expect(retryDelayMs(attempt, DEFAULT_BACKOFF, ZERO)).toBe(exp / 2);
    expect(retryDelayMs(attempt, DEFAULT_BACKOFF, HALF)).toBe((exp * 3) / 4);
    const high = retryDelayMs(attempt, DEFAULT_BACKOFF, ALMOST_ONE);
    expect(high).toBeLessThanOrEqual(exp);
    expect(high).toBeGreaterThan(exp - 1);
  });

  it('matches the documented example: the third retry waits 2000..4000 ms', () => {
    for (let i = 0; i < 200; i++) {
      const d = retryDelayMs(3, DEFAULT_BACKOFF, Math.random);
      expect(d).toBeGreaterThanOrEqual(2_000);
      expect(d).toBeLessThanOrEqual(4_000);
    }
  });

  it('never exceeds maxMs, even for huge attempt numbers', () => {
    const policy: BackoffPolicy = { baseMs: 250, maxMs: 30_000, factor: 3 };
    for (const attempt of [1, 5, 6, 7, 100, 10_000, Number.MAX_SAFE_INTEGER]) {
      const d = retryDelayMs(attempt, policy, ALMOST_ONE);
      expect(Number.isFinite(d)).toBe(true);
      expect(d).toBeLessThanOrEqual(30_000);
    }
    expect(retryDelayMs(10_000, policy, ZERO)).toBe(15_000);
  });

  it('treats attempt 0 or below like the first retry', () => {
    expect(retryDelayMs(0, DEFAULT_BACKOFF, ZERO)).toBe(500);
    expect(retryDelayMs(-3, DEFAULT_BACKOFF, ZERO)).toBe(500);
    expect(retryDelayMs(0, DEFAULT_BACKOFF, ZERO)).toBe(retryDelayMs(1, DEFAULT_BACKOFF, ZERO));
  });

  it('lower bound grows monotonically until the cap, then stays there', () => {
    let prev = 0;
    const lows: number[] = [];
    for (let attempt = 1; attempt <= 30; attempt++) {
      const low = retryDelayMs(attempt, DEFAULT_BACKOFF, ZERO);
      expect(low).toBeGreaterThanOrEqual(prev);
      lows.push(low);
      prev = low;
    }
    // Strictly doubling until the cap is reached.
    expect(lows.slice(0, 5)).toEqual([500, 1_000, 2_000, 4_000, 8_000]);
    expect(lows.at(-1)).toBe(DEFAULT_BACKOFF.maxMs / 2);
  });

  it('is deterministic for a fixed random source', () => {
    const seq = (seed: number) => {
      let x = seed;
      return () => {
        // Small LCG in [0, 1).
        x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
        return x / 2 ** 31;
      };
    };
    const run = (seed: number) => {
      const rnd = seq(seed);
      return Array.from({ length: 12 }, (_, i) => retryDelayMs(i + 1, DEFAULT_BACKOFF, rnd));
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('spreads jitter: different random values give different delays', () => {
    const a = retryDelayMs(5, DEFAULT_BACKOFF, () => 0.1);
    const b = retryDelayMs(5, DEFAULT_BACKOFF, () => 0.9);
    expect(a).toBe(8_800);
    expect(b).toBe(15_200);
  });

  it('returns whole milliseconds', () => {
    const policy: BackoffPolicy = { baseMs: 333, maxMs: 100_000, factor: 1.7 };
    for (let attempt = 1; attempt < 20; attempt++) {
      expect(Number.isInteger(retryDelayMs(attempt, policy, () => 0.123_456))).toBe(true);
    }
  });

  it('property: delay is within [round(exp/2), round(exp)] and never above maxMs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -5, max: 200 }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.integer({ min: 1, max: 24 * 3_600_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, maxMs, factor, r) => {
          const policy: BackoffPolicy = { baseMs, maxMs, factor };
          const exp = Math.min(maxMs, baseMs * factor ** Math.max(0, attempt - 1));
          const d = retryDelayMs(attempt, policy, () => r);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(Math.round(exp / 2));
          expect(d).toBeLessThanOrEqual(Math.round(exp));
          expect(d).toBeLessThanOrEqual(Math.ceil(maxMs));
          // Lower bound is monotonic in the attempt number.
          expect(retryDelayMs(attempt + 1, policy, () => 0)).toBeGreaterThanOrEqual(
            retryDelayMs(attempt, policy, () => 0),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});
