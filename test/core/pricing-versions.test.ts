import { describe, expect, it } from 'vitest';
import { PRICES, estimateCostUsd, priceFor } from '../../src/core/index.js';
import { createCodexParser } from '../../src/engines/codex.js';

describe('prices never stretch to another model version', () => {
  it.each(['gpt-5.5', 'gpt-5.1', 'gpt-5.1-codex', 'gpt-50', 'o30', 'gpt-4.10'])(
    '%s is not in the table: no price, no estimate',
    (model) => {
      expect(priceFor(model)).toBeNull();
      expect(estimateCostUsd({ model, tokensIn: 1_000, tokensOut: 1_000 })).toBeNull();
    },
  );

  it.each([
    ['gpt-5', 'gpt-5'],
    ['gpt-5-codex', 'gpt-5'],
    ['gpt-5-mini-2026', 'gpt-5-mini'],
    ['gpt-4.1-mini', 'gpt-4.1'],
    ['o3-mini', 'o3'],
    ['gemini-2.5-flash-lite-preview', 'gemini-2.5-flash-lite'],
  ])('a variant %s is still priced as %s', (model, prefix) => {
    expect(priceFor(model)).toBe(PRICES[prefix]);
  });

  it('a Codex run on gpt-5.5 records tokens but no cost (unknown, not a gpt-5 estimate)', () => {
    const parser = createCodexParser({ model: 'gpt-5.5' });
    parser.parse(
      '{"type":"turn.completed","usage":{"input_tokens":1000,"cached_input_tokens":200,"output_tokens":50}}',
    );
    const { insights } = parser.summary();
    expect(insights).toMatchObject({
      model: 'gpt-5.5',
      tokensIn: 800,
      tokensOut: 50,
      tokensCached: 200,
    });
    expect(insights.costUsd).toBeUndefined();
    expect(insights.estimated).toBeUndefined();
  });
});
