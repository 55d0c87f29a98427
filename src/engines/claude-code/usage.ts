import type { Insights } from '../../core/index.js';
import { count, isRecord, type JsonRecord } from '../json-line.js';

/** Token counts in Fleet's terms. */
export interface Tokens {
  tokensIn: number;
  tokensOut: number;
  tokensCached: number;
}

/**
 * Maps an Anthropic usage object (an assistant message's, or a `result` line's totals).
 * Anthropic counts three kinds of input apart, none inside another: `input_tokens` (uncached),
 * `cache_creation_input_tokens` (written to the prompt cache, billed at or above the input price)
 * and `cache_read_input_tokens` (read from the cache, billed at a tenth of it). Fleet's
 * `tokensIn` is input not served from the cache, so it is `input_tokens +
 * cache_creation_input_tokens`; `tokensCached` is `cache_read_input_tokens`. That is the split
 * `estimateCostUsd` prices (01-main: 18864 + 200 in, 19064 cached, 34 out).
 */
export function claudeUsage(usage: JsonRecord): Tokens {
  return {
    tokensIn: count(usage.input_tokens) + count(usage.cache_creation_input_tokens),
    tokensOut: count(usage.output_tokens),
    tokensCached: count(usage.cache_read_input_tokens),
  };
}

function add(a: Tokens, b: Tokens): Tokens {
  return {
    tokensIn: a.tokensIn + b.tokensIn,
    tokensOut: a.tokensOut + b.tokensOut,
    tokensCached: a.tokensCached + b.tokensCached,
  };
}

const ZERO: Tokens = { tokensIn: 0, tokensOut: 0, tokensCached: 0 };

/**
 * A run's totals: what the `result` lines reported, plus the model requests seen since the last
 * of them (all of them when the process died without one).
 *
 * One process prints one `result` per user turn (several with `--input-format stream-json`).
 * Each result's `usage` and `num_turns` cover that turn only, so they are added up; its
 * `total_cost_usd` covers the whole process so far (04-stdin-multiturn: 0.1058795, then
 * 0.159141 = 0.1058795 + 0.0532615), so the last one is kept, never added.
 *
 * Requests after the last result are counted from their assistant lines, once per message id:
 * tokens as the message last reported them, one turn per request (a lower bound of the CLI's
 * own `num_turns`, which also counts an interrupted or refused turn). No cost is made up for
 * them: when no result came at all, `costUsd` is absent rather than estimated from partial
 * counts (an assistant line reports output tokens as of the start of the stream).
 */
export class UsageTally {
  private reported: Tokens = ZERO;
  private reportedTurns = 0;
  private results = 0;
  private costUsd: number | undefined;
  /** Model requests since the last `result`, by message id. */
  private readonly unreported = new Map<string, Tokens>();

  /** Records (or updates, as the stream goes on) one model request's usage. */
  request(messageId: string, tokens: Tokens): void {
    this.unreported.set(messageId, tokens);
  }

  requestTokens(messageId: string): Tokens | undefined {
    return this.unreported.get(messageId);
  }

  /** A `result` line: its turn's totals replace the requests counted one by one. */
  result(line: JsonRecord): void {
    this.results++;
    if (isRecord(line.usage)) this.reported = add(this.reported, claudeUsage(line.usage));
    this.reportedTurns += count(line.num_turns);
    const cost = line.total_cost_usd;
    if (typeof cost === 'number' && Number.isFinite(cost) && cost >= 0) this.costUsd = cost;
    this.unreported.clear();
  }

  insights(): Insights {
    const insights: Insights = {};
    if (this.results === 0 && this.unreported.size === 0) return insights;
    Object.assign(insights, [...this.unreported.values()].reduce(add, this.reported));
    insights.turns = this.reportedTurns + this.unreported.size;
    if (this.costUsd !== undefined) {
      insights.costUsd = this.costUsd;
      insights.estimated = false;
    }
    return insights;
  }
}
