import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { InvalidInputError } from '../../src/core/index.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['4h', 14_400_000],
    ['2d', 172_800_000],
    ['0s', 0],
    ['1.5h', 5_400_000],
    ['0.1h', 360_000],
    ['1h30m', 5_400_000],
    ['1m30s250ms', 90_250],
    ['1d2h3m4s5ms', 93_784_005],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['', /"" is empty; write a number and a unit/],
    ['30', /"30" has no unit; write 30s or 30ms/],
    ['-5s', /"-5s" is negative/],
    ['5 s', /"5 s" is not a duration; write a number and a unit: ms, s, m, h or d/],
    ['30sec', /"30sec" has "ec" after "30s"/],
    ['1h1x', /"1h1x" has "1x" after "1h"/],
    ['abc', /"abc" is not a duration/],
    ['5S', /"5S" is not a duration/],
    ['30m1h', /reorders units \("h" after "m"\)/],
    ['1s1s', /repeats or reorders units/],
    ['0.5ms', /not a whole number of milliseconds/],
    ['1e3s', /"1e3s" is not a duration/],
    ['99999999999999999999d', /too long/],
  ])('refuses %j precisely', (text, message) => {
    expect(() => parseDuration(text)).toThrow(InvalidInputError);
    expect(() => parseDuration(text)).toThrow(message);
  });

  it('names the input in an invalid_input error', () => {
    try {
      parseDuration('soon');
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'invalid_input', issues: [{ path: '' }] });
      expect((err as Error).message).toMatch(/^invalid duration: "soon"/);
    }
  });

  it('reads back what formatDuration writes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 365 * 86_400_000 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [1_500, '1s500ms'],
    [90_000, '1m30s'],
    [14_400_000, '4h'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('refuses negative and fractional values', () => {
    expect(() => formatDuration(-1)).toThrow(RangeError);
    expect(() => formatDuration(1.5)).toThrow(RangeError);
  });
});
