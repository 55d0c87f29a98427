import type { FleetClient, JobDetail } from '../../client/index.js';
import {
  type JobEvent,
  type JobStage,
  type RunResult,
  estimateCostUsd,
  isTerminal,
} from '../../core/index.js';
import type { CliIo } from '../io.js';
import { type Palette, type Stream, paintStage, palette, paletteFor } from './colour.js';
import { align, formatCost, formatTokens, humanDuration, table, truncate } from './format.js';

/** How a watched job ended (or stands, when the watch was stopped first). */
export interface JobSummary {
  id: string;
  key: string | null;
  stage: JobStage;
  stageReason: string | null;
  /** The result of the job's last run; null before any run ended. */
  result: RunResult | null;
  lastError: string | null;
  attempts: number;
  /** From the first claim to the end (or to now, while it runs); null before a claim. */
  durationMs: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  tokensIn: number;
  tokensOut: number;
  tokensCached: number;
  /** Dollars as the runs reported or estimated them; null when no run reported a cost. */
  costUsd: number | null;
  /** Part of `costUsd` is an estimate from token counts (shown with a leading `~`). */
  costEstimated: boolean;
}

export interface WatchOptions {
  io: CliIo;
  /** Time between polls; default 500 ms. */
  intervalMs?: number;
  /** Stops watching; `run()` then resolves with the jobs as they stand. */
  signal?: AbortSignal;
  /** Where the progress goes; default standard output. */
  stream?: Stream;
  /** The clock elapsed times are measured with (tests). */
  now?: () => number;
  /**
   * Lines shown above the jobs (a plan's phases): redrawn with them on a terminal, printed
   * when they change otherwise.
   */
  extraLines?: (p: Palette) => string[];
}

/** At most this many requests per poll, however many jobs are watched. */
const REQUESTS_PER_POLL = 8;
const EVENT_PAGE = 1000;

interface Tracked {
  id: string;
  key: string | null;
  stage: JobStage | null;
  reason: string | null;
  agent: string | null;
  /** The last event seq read. */
  after: number;
  startedAt: number | null;
  finishedAt: number | null;
  model: string | null;
  /** Tokens of finished agent processes, and of the one running now. */
  spent: Tokens;
  current: Tokens;
  /** The job with its runs, once it is terminal. */
  final: JobDetail | null;
  /** The stage last printed (non-TTY output). */
  printed: string | null;
}

interface Tokens {
  tokensIn: number;
  tokensOut: number;
  tokensCached: number;
}

const NO_TOKENS: Tokens = { tokensIn: 0, tokensOut: 0, tokensCached: 0 };

/**
 * Follows jobs until every one is terminal, showing one line per job: key (or id), stage,
 * agent state, elapsed time and cost so far. On a terminal the lines are redrawn in place;
 * otherwise a line is printed only when a job's stage changes, so CI logs stay readable.
 *
 * Each poll reads the new events of at most {@link REQUESTS_PER_POLL} unfinished jobs, in
 * turn, so a hundred jobs cost no more requests per second than eight. Stages and agent
 * states come from the events (`stage` events from the store, the engines' events for what
 * the agent does); a job that ends is read once more for its runs' totals.
 *
 * @example
 * const watcher = new JobWatcher(client, { io });
 * watcher.add(ids);
 * const summaries = await watcher.run();
 * io.out(renderSummary(summaries, paletteFor(io)));
 */
export class JobWatcher {
  private readonly jobs = new Map<string, Tracked>();
  private readonly p: Palette;
  private readonly tty: boolean;
  private readonly now: () => number;
  private cursor = 0;
  private drawn = 0;
  /** Extra lines already printed (non-TTY output). */
  private readonly printedExtra = new Set<string>();

  constructor(
    private readonly client: FleetClient,
    private readonly options: WatchOptions,
  ) {
    const stream = options.stream ?? 'out';
    this.p = paletteFor(options.io, stream);
    this.tty = options.io.isTTY?.[stream] ?? false;
    this.now = options.now ?? Date.now;
  }

  /** Watches these jobs too (ids already watched are ignored). */
  add(ids: readonly string[]): void {
    for (const id of ids) if (!this.jobs.has(id)) this.jobs.set(id, track(id));
  }

  /** Polls until every watched job is terminal (or the signal aborts); then their summaries. */
  async run(): Promise<JobSummary[]> {
    const interval = this.options.intervalMs ?? 500;
    const { signal } = this.options;
    while (signal?.aborted !== true) {
      await this.poll();
      this.render();
      if ([...this.jobs.values()].every((t) => t.final !== null)) break;
      await sleep(interval, signal);
    }
    return [...this.jobs.values()].map((t) => this.summary(t));
  }

  private async poll(): Promise<void> {
    const open = [...this.jobs.values()].filter((t) => t.final === null);
    if (open.length === 0) return;
    const start = this.cursor % open.length;
    const batch = [...open.slice(start), ...open.slice(0, start)].slice(0, REQUESTS_PER_POLL);
    this.cursor = start + batch.length;
    await Promise.all(batch.map((t) => this.refresh(t)));
  }

  private async refresh(t: Tracked): Promise<void> {
    if (t.stage === null) {
      const detail = await this.client.getJob(t.id);
      t.key = detail.job.key;
    }
    for (;;) {
      const page = await this.client.listEvents(t.id, { after: t.after, limit: EVENT_PAGE });
      for (const event of page.items) this.apply(t, event);
      if (page.next === null || page.items.length < EVENT_PAGE) break;
    }
    if (t.stage !== null && isTerminal(t.stage)) t.final = await this.client.getJob(t.id);
  }

  private apply(t: Tracked, event: JobEvent): void {
    t.after = Math.max(t.after, event.seq);
    t.agent = agentStateAfter(event, t.agent);
    const d = event.data;
    if (event.type === 'stage' && typeof d.to === 'string') {
      t.stage = d.to as JobStage;
      t.reason = typeof d.reason === 'string' ? d.reason : null;
      if (t.stage === 'claimed') {
        t.startedAt ??= event.at;
        foldTokens(t);
      }
      if (isTerminal(t.stage)) t.finishedAt = event.at;
    } else if (event.type === 'session' && typeof d.model === 'string') {
      t.model = d.model;
    } else if (event.type === 'usage') {
      const u = readTokens(d);
      t.current = d.cumulative === true ? u : addTokens(t.current, u);
    } else if (event.type === 'agent_exit') {
      foldTokens(t);
    }
  }

  private render(): void {
    const write = (text: string) =>
      (this.options.stream ?? 'out') === 'out'
        ? this.options.io.out(text)
        : this.options.io.err(text);
    const tracked = [...this.jobs.values()];
    const extra = this.options.extraLines?.(this.p) ?? [];
    if (this.tty) {
      const lines = [...extra, ...align(tracked.map((t) => this.cells(t)))];
      const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
      write(up + lines.map((l) => `\x1b[2K${l}\n`).join(''));
      this.drawn = lines.length;
      return;
    }
    for (const line of extra) {
      if (this.printedExtra.has(line)) continue;
      this.printedExtra.add(line);
      write(`${line}\n`);
    }
    for (const t of tracked) {
      const line = t.stage === null ? null : `${t.stage}:${t.final === null ? '' : 'final'}`;
      if (line === null || line === t.printed || (isTerminal(t.stage!) && t.final === null))
        continue;
      t.printed = line;
      write(`${this.cells(t).join('  ').trimEnd()}\n`);
    }
  }

  /** One job's line: label, stage, agent state, elapsed, cost. */
  private cells(t: Tracked): string[] {
    const s = this.summary(t);
    const stage = t.stage === null ? this.p.dim('…') : paintStage(this.p, t.stage);
    const reason = t.reason === null || t.stage === 'running' ? '' : this.p.dim(` (${t.reason})`);
    const agent =
      t.final === null && t.stage !== null && !isWaiting(t.stage) ? (t.agent ?? '') : '';
    const elapsed = s.durationMs === null ? '' : humanDuration(s.durationMs);
    const cost = s.costUsd === null ? '' : costText(s);
    return [this.p.bold(label(t)), stage + reason, this.p.dim(agent), elapsed, cost];
  }

  private summary(t: Tracked): JobSummary {
    if (t.final !== null) return summarize(t.final);
    const tokens = addTokens(t.spent, t.current);
    const cost = t.model === null ? null : estimateCostUsd({ model: t.model, ...tokens });
    return {
      id: t.id,
      key: t.key,
      stage: t.stage ?? 'queued',
      stageReason: t.reason,
      result: null,
      lastError: null,
      attempts: 0,
      durationMs: t.startedAt === null ? null : (t.finishedAt ?? this.now()) - t.startedAt,
      startedAt: t.startedAt,
      finishedAt: t.finishedAt,
      ...tokens,
      costUsd: cost,
      // While a run goes on its cost is estimated here from the tokens so far.
      costEstimated: true,
    };
  }
}

/**
 * Follows `jobIds` until all are terminal (see {@link JobWatcher}); their summaries. A failed
 * call rejects with the client's error (wrap it in `calling` for a one-line CLI message).
 */
export function watchJobs(
  client: FleetClient,
  jobIds: readonly string[],
  options: WatchOptions,
): Promise<JobSummary[]> {
  const watcher = new JobWatcher(client, options);
  watcher.add(jobIds);
  return watcher.run();
}

/** A finished job's summary, from the job and its runs. */
export function summarize(detail: JobDetail): JobSummary {
  const { job, runs, insights } = detail;
  const startedAt = runs.length === 0 ? null : Math.min(...runs.map((r) => r.startedAt));
  const finishedAt = job.finishedAt;
  const priced = runs.filter((r) => r.insights.costUsd !== undefined);
  const costs = priced.map((r) => r.insights.costUsd!);
  return {
    id: job.id,
    key: job.key,
    stage: job.stage,
    stageReason: job.stageReason,
    result: runs.at(-1)?.result ?? null,
    lastError: job.lastError,
    attempts: job.attempts,
    durationMs: startedAt === null || finishedAt === null ? null : finishedAt - startedAt,
    startedAt,
    finishedAt,
    tokensIn: insights.tokensIn,
    tokensOut: insights.tokensOut,
    tokensCached: insights.tokensCached,
    costUsd: costs.length === 0 ? null : costs.reduce((a, b) => a + b, 0),
    costEstimated: priced.some((r) => r.insights.estimated === true),
  };
}

/** A job's cost, `~` first when it is (partly) an estimate from token counts. */
function costText(s: JobSummary): string {
  return `${s.costEstimated ? '~' : ''}${formatCost(s.costUsd)}`;
}

/**
 * The end-of-run table: per job its stage (and why), duration, tokens and cost; then a totals
 * line (`3 jobs: 2 succeeded, 1 failed · 4m12s · 12.3k tokens · $0.0456`). The duration total
 * is wall-clock time, from the first start to the last end.
 */
export function renderSummary(
  summaries: readonly JobSummary[],
  p: Palette = palette(false),
): string {
  const rows = summaries.map((s) => [
    s.key ?? s.id,
    paintStage(p, s.stage),
    s.durationMs === null ? '-' : humanDuration(s.durationMs),
    tokenText(s),
    s.costUsd === null ? formatCost(null) : costText(s),
    s.stage === 'succeeded' ? '' : p.dim(note(s)),
  ]);
  const counts = new Map<string, number>();
  for (const s of summaries) counts.set(s.stage, (counts.get(s.stage) ?? 0) + 1);
  const byStage = [...counts].map(([stage, n]) => `${n} ${paintStage(p, stage)}`).join(', ');
  const starts = summaries.flatMap((s) => (s.startedAt === null ? [] : [s.startedAt]));
  const ends = summaries.flatMap((s) => (s.finishedAt === null ? [] : [s.finishedAt]));
  const wall =
    starts.length === 0 || ends.length === 0 ? null : Math.max(...ends) - Math.min(...starts);
  const tokens = summaries.reduce((n, s) => n + s.tokensIn + s.tokensOut + s.tokensCached, 0);
  const costs = summaries.flatMap((s) => (s.costUsd === null ? [] : [s.costUsd]));
  const total = [
    `${summaries.length} job${summaries.length === 1 ? '' : 's'}: ${byStage}`,
    wall === null ? null : humanDuration(wall),
    tokens === 0 ? null : `${formatTokens(tokens)} tokens`,
    costs.length === 0
      ? null
      : `${summaries.some((s) => s.costUsd !== null && s.costEstimated) ? '~' : ''}${formatCost(costs.reduce((a, b) => a + b, 0))}`,
  ].filter((x) => x !== null);
  const legend = summaries.some((s) => s.costUsd !== null && s.costEstimated)
    ? '~ cost estimated from token counts (the CLI reported none)\n'
    : '';
  return (
    table(['JOB', 'RESULT', 'DURATION', 'TOKENS', 'COST', ''], rows) +
    total.join(' · ') +
    '\n' +
    legend
  );
}

/**
 * What the agent is doing after `event`, from the engines' and runner's events (the factory
 * keeps the exact state to itself): `starting`, `thinking`, `acting`, `waiting`, `verifying`,
 * `stalled`, `exited`; null while no agent runs.
 */
export function agentStateAfter(
  event: Pick<JobEvent, 'type' | 'data'>,
  previous: string | null,
): string | null {
  switch (event.type) {
    case 'stage': {
      const to = event.data.to;
      if (to === 'claimed') return 'starting';
      if (to === 'verifying') return 'verifying';
      return to === 'running' ? previous : null;
    }
    case 'session':
    case 'thinking':
    case 'tool_result':
      return 'thinking';
    case 'message':
      return event.data.role === 'assistant' ? 'thinking' : previous;
    case 'tool_call':
    case 'log':
      return 'acting';
    case 'retry':
      return 'waiting';
    case 'result':
    case 'agent_exit':
      return 'exited';
    case 'verify_started':
      return 'verifying';
    case 'fix_attempt':
      return 'starting';
    case 'stalled':
      return 'stalled';
    default:
      return previous;
  }
}

function track(id: string): Tracked {
  return {
    id,
    key: null,
    stage: null,
    reason: null,
    agent: null,
    after: 0,
    startedAt: null,
    finishedAt: null,
    model: null,
    spent: NO_TOKENS,
    current: NO_TOKENS,
    final: null,
    printed: null,
  };
}

function foldTokens(t: Tracked): void {
  t.spent = addTokens(t.spent, t.current);
  t.current = NO_TOKENS;
}

function readTokens(d: Record<string, unknown>): Tokens {
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return { tokensIn: n(d.tokensIn), tokensOut: n(d.tokensOut), tokensCached: n(d.tokensCached) };
}

function addTokens(a: Tokens, b: Tokens): Tokens {
  return {
    tokensIn: a.tokensIn + b.tokensIn,
    tokensOut: a.tokensOut + b.tokensOut,
    tokensCached: a.tokensCached + b.tokensCached,
  };
}

function label(t: Tracked): string {
  return truncate(t.key ?? t.id, 40);
}

function tokenText(s: JobSummary): string {
  const n = s.tokensIn + s.tokensOut + s.tokensCached;
  return n === 0 ? '-' : formatTokens(n);
}

function note(s: JobSummary): string {
  const why = s.stageReason ?? s.result ?? '';
  const error = s.lastError === null ? '' : truncate(s.lastError.replace(/\s+/g, ' '), 80);
  return [why, error].filter((x) => x !== '' && x !== null).join(': ');
}

/** Stages in which no agent runs yet. */
function isWaiting(stage: JobStage): boolean {
  return stage === 'queued' || stage === 'blocked';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
