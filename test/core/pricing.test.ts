import { describe, expect, it } from 'vitest';
import { PRICES, estimateCostUsd, priceFor } from '../../src/core/index.js';

describe('priceFor', () => {
  it.each([
    ['gpt-5', 'gpt-5'],
    ['gpt-5-codex', 'gpt-5'],
    ['gpt-5-mini', 'gpt-5-mini'],
    ['gpt-5-mini-2026', 'gpt-5-mini'],
    ['o3', 'o3'],
    ['o3-mini', 'o3'],
    ['claude-opus-4-1', 'claude-opus'],
    ['claude-sonnet-4-5-20250929', 'claude-sonnet'],
    ['gemini-2.5-flash', 'gemini-2.5-flash'],
    ['gemini-2.5-pro-preview', 'gemini-2.5-pro'],
  ])('prices %s as %s', (model, prefix) => {
    expect(priceFor(model)).toBe(PRICES[prefix]);
  });

  it('the longest matching prefix wins, whatever the table order', () => {
    const prices = {
      'm-long': { input: 2, output: 2, cachedInput: 2 },
      m: { input: 1, output: 1, cachedInput: 1 },
      'm-longer': { input: 3, output: 3, cachedInput: 3 },
    };
    expect(priceFor('m-longer-x', prices)).toBe(prices['m-longer']);
    expect(priceFor('m-long-x', prices)).toBe(prices['m-long']);
    expect(priceFor('m-x', prices)).toBe(prices.m);
  });

  it.each(['auto', 'llama-3.1-70b', 'o4-mini', 'gemini-3.8-flash', 'GPT-5', 'x-gpt-5', ''])(
    'knows no price for %j',
    (model) => {
      expect(priceFor(model)).toBeNull();
    },
  );
});

describe('estimateCostUsd', () => {
  it('prices uncached input, output and cached input apart, per million tokens', () => {
    const cost = estimateCostUsd({
      model: 'gpt-5',
      tokensIn: 1_000_000,
      tokensOut: 1_000_000,
      tokensCached: 1_000_000,
    });
    expect(cost).toBeCloseTo(1.25 + 10 + 0.125, 12);
  });

  it('computes a realistic run', () => {
    // Gemini 01-main: 11802 uncached in, 34 out, 11800 cached.
    const cost = estimateCostUsd({
      model: 'gemini-2.5-flash',
      tokensIn: 11802,
      tokensOut: 34,
      tokensCached: 11800,
    });
    expect(cost).toBeCloseTo(0.0045106, 12);
  });

  it('counts missing token fields as zero', () => {
    expect(estimateCostUsd({ model: 'claude-sonnet-4', tokensOut: 2_000_000 })).toBe(30);
    expect(estimateCostUsd({ model: 'o3' })).toBe(0);
  });

  it('uses the given table', () => {
    const prices = { mine: { input: 1, output: 2, cachedInput: 0.5 } };
    expect(
      estimateCostUsd(
        { model: 'mine-1', tokensIn: 2e6, tokensOut: 1e6, tokensCached: 4e6 },
        prices,
      ),
    ).toBe(6);
    expect(estimateCostUsd({ model: 'gpt-5', tokensIn: 1 }, prices)).toBeNull();
  });

  it('gives no cost for an unknown or missing model rather than a wrong one', () => {
    expect(estimateCostUsd({ model: 'llama-3', tokensIn: 1000 })).toBeNull();
    expect(estimateCostUsd({ tokensIn: 1000 })).toBeNull();
  });
});
