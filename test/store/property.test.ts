/**
 * Model-based property test of the queue verbs. fast-check generates random interleavings of
 * enqueue (with locks, priorities, attempts and dependencies) / claim / renew / start / verify /
 * complete / fail (single and batched) / reap / cancel and clock moves; each sequence runs
 * against a fresh real store and a small reference model. After every step the store must agree
 * with the model: each job's stage, reason, epoch, attempts, runAt, lease and last error, and
 * its runs one by one. On top of that it checks the invariants directly: a terminal job's row
 * never changes again, at most one job per lock is being worked on, a fenced call succeeds iff
 * the model holds its lease live, runs have increasing epochs with at most one open and one per
 * attempt; at the end, each job's events hold exactly one terminal stage change.
 *
 * The model is exact for everything the port specifies. The one place it is deliberately loose
 * is which jobs a claim picks when more are eligible than the limit and locks compete: an
 * adapter may look at a bounded window of candidates (PostgreSQL looks at `limit` of them), so
 * there the test checks that the choice is valid and respects claim order, then adopts it.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import {
  DEFAULT_BACKOFF,
  type FleetError,
  type Job,
  type JobSpecInput,
  type JobStage,
  type Lease,
  type RunResult,
  isActive,
  isTerminal,
  retryDelayMs,
} from '../../src/core/index.js';
import type { Claimed, FencedRef, Outcome, ReapedJob, Store } from '../../src/store/index.js';
import type { TestClock } from '../helpers/clock.js';
import { describeStores } from '../helpers/stores.js';

const TENANT = 't';
/** The stores' default lease TTL (StoreOptions.leaseTtlMs), used when a call passes none. */
const DEFAULT_TTL = 30_000;
const random = () => 0.5;

// --- Commands -------------------------------------------------------------------------------

type FailResult = 'agent_failed' | 'gate_failed' | 'timeout' | 'crashed';

interface DepGen {
  /** Index into the jobs that exist (stored first, then earlier in the same batch). */
  pick: number;
  /** Name a stored dependency by key instead of id (in-batch ones are always by key). */
  byKey: boolean;
}

interface SpecGen {
  lock: string | null;
  priority: number;
  maxAttempts: number | undefined;
  deps: DepGen[];
}

type Cmd =
  | { t: 'enqueue'; specs: SpecGen[] }
  | { t: 'claim'; factory: string; limit: number; ttl: number | undefined }
  | { t: 'renew'; pick: number; ttl: number | undefined }
  | { t: 'renewMany'; picks: number[] }
  | { t: 'start'; pick: number }
  | { t: 'verify'; pick: number }
  | { t: 'complete'; pick: number }
  | { t: 'completeMany'; picks: number[] }
  | { t: 'fail'; pick: number; result: FailResult; retryable: boolean | undefined }
  | { t: 'failMany'; picks: number[]; retryable: boolean | undefined }
  | { t: 'reap' }
  | { t: 'cancel'; pick: number; viaLease: boolean }
  | { t: 'advance'; ms: number; thenReap: boolean };

/** Mostly small, so lease picks favour recent (often live) leases; any index is possible. */
const pick = fc.oneof(fc.nat({ max: 2 }), fc.nat({ max: 1_000 }));
const picks = fc.array(pick, { minLength: 1, maxLength: 3 });

const specArb: fc.Arbitrary<SpecGen> = fc.record({
  lock: fc.constantFrom<string | null>('A', 'B', null, null),
  priority: fc.constantFrom(-1, 0, 0, 1),
  maxAttempts: fc.constantFrom<number | undefined>(undefined, undefined, 1, 2, 3),
  deps: fc.oneof(
    { weight: 3, arbitrary: fc.constant<DepGen[]>([]) },
    {
      weight: 1,
      arbitrary: fc.array(fc.record({ pick, byKey: fc.boolean() }), { minLength: 1, maxLength: 2 }),
    },
  ),
});

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('enqueue' as const),
      specs: fc.array(specArb, { minLength: 1, maxLength: 3, size: 'xsmall' }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('claim' as const),
      factory: fc.constantFrom('f1', 'f2'),
      limit: fc.integer({ min: 1, max: 4 }),
      ttl: fc.constantFrom<number | undefined>(10_000, 10_000, undefined),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('renew' as const),
      pick,
      ttl: fc.constantFrom<number | undefined>(5_000, undefined),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('renewMany' as const), picks }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('start' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('verify' as const), pick }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('complete' as const), pick }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('completeMany' as const), picks }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('fail' as const),
      pick,
      result: fc.constantFrom<FailResult>('agent_failed', 'gate_failed', 'timeout', 'crashed'),
      retryable: fc.constantFrom<boolean | undefined>(undefined, true, true, false),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('failMany' as const),
      picks,
      retryable: fc.constantFrom<boolean | undefined>(undefined, false),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('reap' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('cancel' as const), pick, viaLease: fc.boolean() }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('advance' as const),
      // 750 and 1_500 are the first two retry delays; a lease of 10_000 expires after 10_001.
      ms: fc.constantFrom(0, 500, 750, 1_500, 5_000, 10_000, 10_001, 30_001, 60_000),
      // A reaper ticking right after the clock moved.
      thenReap: fc.boolean(),
    }),
  },
);

// --- The reference model --------------------------------------------------------------------

interface MRun {
  epoch: number;
  factoryId: string;
  startedAt: number;
  endedAt: number | null;
  result: RunResult | null;
}

interface MJob {
  id: string;
  key: string;
  lock: string | null;
  priority: number;
  maxAttempts: number;
  deps: string[];
  stage: JobStage;
  stageReason: string | null;
  /** `dep_failed` when the cause is one of several dependencies that died together. */
  lastError: string | null | { depFailed: true };
  attempts: number;
  leaseEpoch: number;
  holder: string | null;
  expiresAt: number | null;
  renewals: number;
  runAt: number;
  finishedAt: number | null;
  runs: MRun[];
  /** The stored job as it was when it became terminal: it must never change again. */
  terminal: Job | null;
}

class Model {
  readonly jobs: MJob[] = [];
  readonly byId = new Map<string, MJob>();
  /** Every lease ever handed out, stale ones included. */
  readonly leases: FencedRef[] = [];

  constructor(private readonly clock: TestClock) {}

  get now(): number {
    return this.clock.now();
  }

  add(job: MJob): void {
    this.jobs.push(job);
    this.byId.set(job.id, job);
  }

  job(id: string): MJob {
    const j = this.byId.get(id);
    if (j === undefined) throw new Error(`model: unknown job ${id}`);
    return j;
  }

  /** The fence: the epoch is the job's current lease and the job is still being worked on. */
  live(ref: FencedRef): boolean {
    const j = this.job(ref.jobId);
    return isActive(j.stage) && j.holder !== null && j.leaseEpoch === ref.epoch;
  }

  lockHeld(lock: string): boolean {
    return this.jobs.some((j) => j.lock === lock && isActive(j.stage));
  }

  /** Queued, due, lock free; in claim order (priority desc, runAt asc, id asc). */
  eligible(): MJob[] {
    const now = this.now;
    return this.jobs
      .filter(
        (j) =>
          j.stage === 'queued' && j.runAt <= now && (j.lock === null || !this.lockHeld(j.lock)),
      )
      .sort(claimOrder);
  }

  claim(j: MJob, factoryId: string, ttl: number): void {
    j.stage = 'claimed';
    j.stageReason = null;
    j.leaseEpoch += 1;
    j.attempts += 1;
    j.holder = factoryId;
    j.expiresAt = this.now + ttl;
    j.renewals = 0;
    j.runs.push({
      epoch: j.leaseEpoch,
      factoryId,
      startedAt: this.now,
      endedAt: null,
      result: null,
    });
    this.leases.push({ jobId: j.id, epoch: j.leaseEpoch });
  }

  /** Ends the live attempt: closes the run, frees lease and lock, moves the job on. */
  endAttempt(j: MJob, result: RunResult, error: string | null, retryable: boolean): void {
    const now = this.now;
    const run = j.runs.at(-1)!;
    run.endedAt = now;
    run.result = result;
    j.holder = null;
    j.expiresAt = null;
    if (error !== null) j.lastError = error;
    if (result === 'success') {
      j.stage = 'succeeded';
      j.stageReason = null;
      j.finishedAt = now;
      this.promoteDependents(j);
    } else if (result === 'cancelled') {
      j.stage = 'cancelled';
      j.stageReason = 'cancelled';
      j.finishedAt = now;
      this.failDependents(j);
    } else if (retryable && j.attempts < j.maxAttempts) {
      j.stage = 'queued';
      j.stageReason = result;
      j.runAt = now + retryDelayMs(j.attempts, DEFAULT_BACKOFF, random);
    } else {
      j.stage = 'failed';
      j.stageReason = result;
      j.finishedAt = now;
      this.failDependents(j);
    }
  }

  cancel(j: MJob): boolean {
    if (isActive(j.stage)) {
      this.endAttempt(j, 'cancelled', null, false);
      return true;
    }
    if (j.stage !== 'blocked' && j.stage !== 'queued') return false;
    j.stage = 'cancelled';
    j.stageReason = 'cancelled';
    j.finishedAt = this.now;
    this.failDependents(j);
    return true;
  }

  private dependents(j: MJob): MJob[] {
    return this.jobs.filter((d) => d.deps.includes(j.id));
  }

  private promoteDependents(j: MJob): void {
    for (const d of this.dependents(j)) {
      if (d.stage === 'blocked' && d.deps.every((id) => this.job(id).stage === 'succeeded'))
        d.stage = 'queued';
    }
  }

  private failDependents(j: MJob): void {
    for (const d of this.dependents(j)) {
      if (d.stage !== 'blocked' && d.stage !== 'queued') continue;
      d.stage = 'failed';
      d.stageReason = 'dep_failed';
      d.lastError = { depFailed: true };
      d.finishedAt = this.now;
      this.failDependents(d);
    }
  }

  reapable(): MJob[] {
    const now = this.now;
    return this.jobs.filter((j) => j.holder !== null && j.expiresAt! < now);
  }
}

function claimOrder(a: MJob, b: MJob): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.runAt !== b.runAt) return a.runAt - b.runAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Best job per lock plus every lockless one, in claim order, up to `limit`. */
function greedy(candidates: MJob[], limit: number): MJob[] {
  const taken: MJob[] = [];
  const locks = new Set<string>();
  for (const c of candidates) {
    if (taken.length >= limit) break;
    if (c.lock !== null) {
      if (locks.has(c.lock)) continue;
      locks.add(c.lock);
    }
    taken.push(c);
  }
  return taken;
}

// --- Running one command --------------------------------------------------------------------

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code });
}

function expectOutcomeError<T>(outcome: Outcome<T>, code: string): void {
  expect(outcome.ok).toBe(false);
  if (!outcome.ok) expect((outcome.error as FleetError).code).toBe(code);
}

/** Counting back from the newest lease handed out. */
function leaseOf(m: Model, pickN: number): FencedRef | null {
  if (m.leases.length === 0) return null;
  return m.leases[m.leases.length - 1 - (pickN % m.leases.length)]!;
}

function expectLease(lease: Lease, j: MJob): void {
  expect(lease).toEqual({
    jobId: j.id,
    tenant: TENANT,
    holderFactoryId: j.holder,
    expiresAt: j.expiresAt,
    leaseEpoch: j.leaseEpoch,
    renewals: j.renewals,
  });
}

async function enqueue(store: Store, m: Model, specs: SpecGen[]): Promise<void> {
  const base = m.jobs.length;
  const pool: { existing: MJob | null; key: string }[] = m.jobs.map((j) => ({
    existing: j,
    key: j.key,
  }));
  const inputs: JobSpecInput[] = [];
  const planned: { key: string; deps: { job: MJob | null; batchIndex: number | null }[] }[] = [];
  specs.forEach((s, i) => {
    const key = `j${base + i}`;
    const deps: { job: MJob | null; batchIndex: number | null }[] = [];
    const refs: string[] = [];
    if (pool.length > 0) {
      for (const d of s.deps) {
        const p = pool[d.pick % pool.length]!;
        if (p.existing === null) {
          deps.push({ job: null, batchIndex: Number(p.key.slice(1)) - base });
          refs.push(p.key);
        } else {
          deps.push({ job: p.existing, batchIndex: null });
          refs.push(d.byKey ? p.key : p.existing.id);
        }
      }
    }
    inputs.push({
      tenant: TENANT,
      bodyMd: key,
      key,
      lock: s.lock,
      priority: s.priority,
      deps: refs,
      ...(s.maxAttempts === undefined ? {} : { maxAttempts: s.maxAttempts }),
    });
    planned.push({ key, deps });
    pool.push({ existing: null, key });
  });

  const results = await store.enqueue(inputs);
  expect(results).toHaveLength(specs.length);
  const now = m.now;
  const created: MJob[] = [];
  results.forEach((r, i) => {
    expect(r.created).toBe(true);
    const s = specs[i]!;
    const p = planned[i]!;
    const depJobs = p.deps.map((d) => d.job ?? created[d.batchIndex!]!);
    const depIds = [...new Set(depJobs.map((d) => d.id))];
    const anyDead = depJobs.some((d) => d.stage === 'failed' || d.stage === 'cancelled');
    const allDone = depJobs.every((d) => d.stage === 'succeeded');
    const stage: JobStage = anyDead ? 'failed' : allDone ? 'queued' : 'blocked';
    // Jobs of one batch get increasing ids.
    if (i > 0) expect(r.job.id > results[i - 1]!.job.id).toBe(true);
    const j: MJob = {
      id: r.job.id,
      key: p.key,
      lock: s.lock,
      priority: s.priority,
      maxAttempts: s.maxAttempts ?? 3,
      deps: depIds,
      stage,
      stageReason: anyDead ? 'dep_failed' : null,
      lastError: anyDead ? 'a dependency failed' : null,
      attempts: 0,
      leaseEpoch: 0,
      holder: null,
      expiresAt: null,
      renewals: 0,
      runAt: now,
      finishedAt: anyDead ? now : null,
      runs: [],
      terminal: null,
    };
    created.push(j);
  });
  for (const j of created) m.add(j);
}

async function claim(store: Store, m: Model, cmd: Extract<Cmd, { t: 'claim' }>): Promise<void> {
  const eligible = m.eligible();
  const claimed: Claimed[] = await store.claim({
    factoryId: cmd.factory,
    tenants: [TENANT],
    capabilities: [],
    limit: cmd.limit,
    ...(cmd.ttl === undefined ? {} : { leaseTtlMs: cmd.ttl }),
  });
  const ids = claimed.map((c) => c.job.id);
  const rank = new Map(eligible.map((j, i) => [j.id, i]));

  // Valid: at most `limit`, each eligible, distinct, one per lock, returned in claim order.
  expect(claimed.length).toBeLessThanOrEqual(cmd.limit);
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) expect(rank.has(id), `claimed ineligible job ${id}`).toBe(true);
  const locks = claimed.map((c) => c.job.lock).filter((l) => l !== null);
  expect(new Set(locks).size).toBe(locks.length);
  const ranks = ids.map((id) => rank.get(id)!);
  expect(ranks).toEqual([...ranks].sort((a, b) => a - b));

  // Claim order is honoured: the best eligible job is taken, and any eligible job passed over
  // in favour of a worse one was passed over only because this claim took its lock.
  if (eligible.length > 0) expect(ids[0]).toBe(eligible[0]!.id);
  const worst = ranks.length === 0 ? -1 : Math.max(...ranks);
  const takenLocks = new Set(locks);
  for (const e of eligible.slice(0, worst + 1)) {
    if (ids.includes(e.id)) continue;
    expect(e.lock !== null && takenLocks.has(e.lock), `passed over ${e.key}`).toBe(true);
  }
  // Without competing locks nothing is left behind that fits the limit.
  const eligibleLocks = eligible.map((e) => e.lock).filter((l) => l !== null);
  if (new Set(eligibleLocks).size === eligibleLocks.length)
    expect(claimed.length).toBe(Math.min(cmd.limit, eligible.length));
  // When everything eligible fits in the limit, the choice is fully determined.
  if (eligible.length <= cmd.limit)
    expect(ids).toEqual(greedy(eligible, cmd.limit).map((j) => j.id));

  const ttl = cmd.ttl ?? DEFAULT_TTL;
  for (const c of claimed) {
    const j = m.job(c.job.id);
    m.claim(j, cmd.factory, ttl);
    expectLease(c.lease, j);
    expect(c.job.stage).toBe('claimed');
    expect(c.job.leaseEpoch).toBe(j.leaseEpoch);
    expect(c.job.attempts).toBe(j.attempts);
    expect(c.run).toMatchObject({
      jobId: j.id,
      attempt: j.attempts,
      factoryId: cmd.factory,
      leaseEpoch: j.leaseEpoch,
      startedAt: m.now,
      endedAt: null,
      result: null,
    });
  }
}

/** Every lease that expired before now is lost: requeued with backoff, or failed when spent. */
async function reap(store: Store, m: Model): Promise<void> {
  const expected: ReapedJob[] = m.reapable().map((j) => {
    const epoch = j.leaseEpoch;
    m.endAttempt(j, 'lease_lost', `lease of factory ${j.holder} expired`, true);
    return { jobId: j.id, tenant: TENANT, epoch, stage: j.stage as ReapedJob['stage'] };
  });
  const reaped = await store.reapExpired();
  const byId = (a: ReapedJob, b: ReapedJob) => (a.jobId < b.jobId ? -1 : 1);
  expect([...reaped].sort(byId)).toEqual(expected.sort(byId));
}

async function step(store: Store, clock: TestClock, m: Model, cmd: Cmd): Promise<void> {
  switch (cmd.t) {
    case 'enqueue':
      return enqueue(store, m, cmd.specs);
    case 'claim':
      return claim(store, m, cmd);
    case 'advance':
      clock.advance(cmd.ms);
      if (cmd.thenReap) await reap(store, m);
      return;
    case 'renew': {
      const ref = leaseOf(m, cmd.pick);
      if (ref === null) return;
      const call = store.renew(ref, cmd.ttl);
      if (!m.live(ref)) return expectCode(call, 'stale_lease');
      const j = m.job(ref.jobId);
      j.expiresAt = m.now + (cmd.ttl ?? DEFAULT_TTL);
      j.renewals += 1;
      expectLease(await call, j);
      return;
    }
    case 'renewMany': {
      if (m.leases.length === 0) return;
      // Distinct refs: renewing one lease twice in a batch is not what this test is about.
      const refs = [...new Set(cmd.picks.map((p) => leaseOf(m, p)!))];
      const outcomes = await store.renewMany(refs);
      expect(outcomes).toHaveLength(refs.length);
      refs.forEach((ref, i) => {
        const o = outcomes[i]!;
        if (!m.live(ref)) return expectOutcomeError(o, 'stale_lease');
        const j = m.job(ref.jobId);
        j.expiresAt = m.now + DEFAULT_TTL;
        j.renewals += 1;
        expect(o.ok).toBe(true);
        if (o.ok) expectLease(o.value, j);
      });
      return;
    }
    case 'start':
    case 'verify': {
      const ref = leaseOf(m, cmd.pick);
      if (ref === null) return;
      const call = cmd.t === 'start' ? store.markRunning(ref) : store.markVerifying(ref);
      if (!m.live(ref)) return expectCode(call, 'stale_lease');
      const j = m.job(ref.jobId);
      const [from, to] = cmd.t === 'start' ? ['claimed', 'running'] : ['running', 'verifying'];
      if (j.stage !== from) return expectCode(call, 'illegal_transition');
      j.stage = to as JobStage;
      expect((await call).stage).toBe(to);
      return;
    }
    case 'complete': {
      const ref = leaseOf(m, cmd.pick);
      if (ref === null) return;
      const call = store.complete({ ...ref, output: { ok: true } });
      if (!m.live(ref)) return expectCode(call, 'stale_lease');
      m.endAttempt(m.job(ref.jobId), 'success', null, false);
      expect((await call).stage).toBe('succeeded');
      return;
    }
    case 'fail': {
      const ref = leaseOf(m, cmd.pick);
      if (ref === null) return;
      const call = store.fail({
        ...ref,
        result: cmd.result,
        error: `boom ${cmd.result}`,
        ...(cmd.retryable === undefined ? {} : { retryable: cmd.retryable }),
      });
      if (!m.live(ref)) return expectCode(call, 'stale_lease');
      const j = m.job(ref.jobId);
      m.endAttempt(j, cmd.result, `boom ${cmd.result}`, cmd.retryable ?? true);
      expect((await call).stage).toBe(j.stage);
      return;
    }
    case 'completeMany':
    case 'failMany': {
      if (m.leases.length === 0) return;
      // Duplicates allowed: the second write with one lease finds it already ended.
      const refs = cmd.picks.map((p) => leaseOf(m, p)!);
      const outcomes =
        cmd.t === 'completeMany'
          ? await store.completeMany(refs)
          : await store.failMany(
              refs.map((r) => ({
                ...r,
                result: 'agent_failed' as const,
                error: 'batch',
                ...(cmd.retryable === undefined ? {} : { retryable: cmd.retryable }),
              })),
            );
      expect(outcomes).toHaveLength(refs.length);
      refs.forEach((ref, i) => {
        const o = outcomes[i]!;
        if (!m.live(ref)) return expectOutcomeError(o, 'stale_lease');
        const j = m.job(ref.jobId);
        if (cmd.t === 'completeMany') m.endAttempt(j, 'success', null, false);
        else m.endAttempt(j, 'agent_failed', 'batch', cmd.retryable ?? true);
        expect(o.ok).toBe(true);
        if (o.ok) expect(o.value.stage).toBe(j.stage);
      });
      return;
    }
    case 'reap':
      return reap(store, m);
    case 'cancel': {
      // Either the job of a lease handed out (likely being worked on), or any job.
      const ref = cmd.viaLease ? leaseOf(m, cmd.pick) : null;
      if (m.jobs.length === 0) return;
      const j = ref === null ? m.jobs[cmd.pick % m.jobs.length]! : m.job(ref.jobId);
      const call = store.cancel(TENANT, j.id);
      if (!m.cancel(j)) return expectCode(call, 'illegal_transition');
      expect((await call).stage).toBe('cancelled');
      return;
    }
  }
}

// --- Checking the store against the model ---------------------------------------------------

function expectLastError(actual: string | null, j: MJob, m: Model): void {
  if (j.lastError === null || typeof j.lastError === 'string') {
    expect(actual, `${j.key} lastError`).toBe(j.lastError);
    return;
  }
  // Failed because of a dependency: the message names one that died.
  const causes = j.deps
    .map((id) => m.job(id))
    .filter((d) => d.stage === 'failed' || d.stage === 'cancelled')
    .map((d) => `dependency ${d.key} ${d.stage}`);
  expect(causes, `${j.key} lastError`).toContain(actual);
}

async function check(store: Store, m: Model): Promise<void> {
  const page = await store.listJobs(TENANT, { limit: 1000 });
  expect(page.next).toBeNull();
  expect(page.items.map((j) => j.id).sort()).toEqual(m.jobs.map((j) => j.id).sort());
  const stored = new Map(page.items.map((j) => [j.id, j]));

  const active = new Map<string, string>();
  for (const j of m.jobs) {
    const s = stored.get(j.id)!;
    // A terminal job is written exactly once: from then on its row never changes.
    if (j.terminal !== null) expect(s, `terminal job ${j.key} changed`).toEqual(j.terminal);
    else
      expect(
        {
          key: s.key,
          stage: s.stage,
          stageReason: s.stageReason,
          leaseEpoch: s.leaseEpoch,
          attempts: s.attempts,
          runAt: s.runAt,
          lock: s.lock,
          priority: s.priority,
          maxAttempts: s.maxAttempts,
          deps: s.deps,
          finishedAt: s.finishedAt,
          lease: s.lease,
        },
        `job ${j.key}`,
      ).toEqual({
        key: j.key,
        stage: j.stage,
        stageReason: j.stageReason,
        leaseEpoch: j.leaseEpoch,
        attempts: j.attempts,
        runAt: j.runAt,
        lock: j.lock,
        priority: j.priority,
        maxAttempts: j.maxAttempts,
        deps: j.deps,
        finishedAt: j.finishedAt,
        lease:
          j.holder === null
            ? null
            : {
                jobId: j.id,
                tenant: TENANT,
                holderFactoryId: j.holder,
                expiresAt: j.expiresAt,
                leaseEpoch: j.leaseEpoch,
                renewals: j.renewals,
              },
      });
    expectLastError(s.lastError, j, m);

    // At most one job per lock is being worked on.
    if (j.lock !== null && isActive(s.stage)) {
      expect(active.get(j.lock), `lock ${j.lock} held twice`).toBeUndefined();
      active.set(j.lock, j.key);
    }

    const runs = await store.listRuns(TENANT, j.id);
    const epochs = runs.map((r) => r.leaseEpoch);
    for (let i = 1; i < epochs.length; i++) expect(epochs[i]!).toBeGreaterThan(epochs[i - 1]!);
    expect(runs.filter((r) => r.endedAt === null).length).toBeLessThanOrEqual(1);
    expect(runs.length).toBe(s.attempts);
    expect(
      runs.map((r) => ({
        attempt: r.attempt,
        epoch: r.leaseEpoch,
        factoryId: r.factoryId,
        startedAt: r.startedAt,
        endedAt: r.endedAt,
        result: r.result,
      })),
      `runs of ${j.key}`,
    ).toEqual(j.runs.map((r, i) => ({ attempt: i + 1, ...r })));

    if (isTerminal(j.stage)) j.terminal = s;
  }
}

/** At the end: each job's stage events tell its story, with exactly one terminal write. */
async function checkEvents(store: Store, m: Model): Promise<void> {
  for (const j of m.jobs) {
    const events = await store.readEvents(TENANT, j.id, { limit: 10_000 });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const stages = events.filter((e) => e.type === 'stage').map((e) => e.data.to as JobStage);
    expect(stages.at(-1), `last stage event of ${j.key}`).toBe(j.stage);
    expect(stages.filter((s) => isTerminal(s)).length).toBe(isTerminal(j.stage) ? 1 : 0);
  }
}

async function runCommands(store: Store, clock: TestClock, cmds: Cmd[]): Promise<void> {
  const m = new Model(clock);
  for (const [i, cmd] of cmds.entries()) {
    try {
      await step(store, clock, m, cmd);
      await check(store, m);
    } catch (err) {
      if (err instanceof Error) err.message = `step ${i} ${JSON.stringify(cmd)}: ${err.message}`;
      throw err;
    }
  }
  await checkEvents(store, m);
}

// --- Hand-written sequences, run first: the rare interleavings random ones seldom reach --------

const spec = (lock: string | null, more: Partial<SpecGen> = {}): SpecGen => ({
  lock,
  priority: 0,
  maxAttempts: undefined,
  deps: [],
  ...more,
});
const claimCmd = (factory = 'f1', limit = 1): Cmd => ({ t: 'claim', factory, limit, ttl: 10_000 });
const advance = (ms: number, thenReap = false): Cmd => ({ t: 'advance', ms, thenReap });

/** Every fenced verb with a stale epoch while a newer lease of the same job is live. */
const staleWhileReclaimed: Cmd[] = [
  { t: 'enqueue', specs: [spec('A')] },
  claimCmd('f1'),
  { t: 'fail', pick: 0, result: 'agent_failed', retryable: true },
  advance(749),
  claimCmd('f2'), // not due yet: the first retry waits 750 ms
  advance(1),
  claimCmd('f2'), // epoch 2; the lease picked by 1 (one back from the newest) is epoch 1
  { t: 'renew', pick: 1, ttl: undefined },
  { t: 'start', pick: 1 },
  { t: 'verify', pick: 1 },
  { t: 'complete', pick: 1 },
  { t: 'fail', pick: 1, result: 'timeout', retryable: true },
  { t: 'renewMany', picks: [0, 1] },
  { t: 'completeMany', picks: [1] },
  { t: 'failMany', picks: [1, 1], retryable: undefined },
  { t: 'start', pick: 0 },
  { t: 'enqueue', specs: [spec('A')] },
  claimCmd('f1', 4), // lock A is held
  { t: 'cancel', pick: 0, viaLease: true }, // cancels the running job, freeing lock A
  claimCmd('f1', 4), // j1
  advance(10_000, true), // j1's lease expires exactly now: not reaped, still renewable
  { t: 'renew', pick: 0, ttl: 5_000 },
  advance(5_001), // expired, but no reaper has run: the lease still fences
  { t: 'start', pick: 0 },
  { t: 'verify', pick: 0 },
  { t: 'enqueue', specs: [spec(null)] },
  claimCmd('f2'), // j2
  advance(30_001),
  { t: 'complete', pick: 0 }, // j2, on an expired lease no reaper has taken yet
  { t: 'reap' }, // j1: lease_lost, back to the queue
  { t: 'fail', pick: 1, result: 'gate_failed', retryable: false },
  { t: 'cancel', pick: 1, viaLease: true }, // j1, queued
];

/** Dependencies: in-batch chains by key, stored ones by id, promotion and transitive failure. */
const dependencies: Cmd[] = [
  // j0; j1 waits on j0; j2 (lock B) waits on j1.
  {
    t: 'enqueue',
    specs: [
      spec(null, { maxAttempts: 1 }),
      spec(null, { deps: [{ pick: 0, byKey: true }] }),
      spec('B', { deps: [{ pick: 1, byKey: true }] }),
    ],
  },
  { t: 'enqueue', specs: [spec(null, { deps: [{ pick: 0, byKey: false }] })] }, // j3 on j0, by id
  { t: 'enqueue', specs: [spec('B'), spec(null, { deps: [{ pick: 2, byKey: true }] })] }, // j4; j5 on j2
  claimCmd('f1', 4), // j0 and j4
  { t: 'complete', pick: 1 }, // j0 succeeds: j1 and j3 are queued
  claimCmd('f2', 4), // j1 and j3
  { t: 'fail', pick: 1, result: 'crashed', retryable: false }, // j1 fails: j2, then j5, dep_failed
  {
    t: 'enqueue',
    specs: [
      spec(null, { deps: [{ pick: 1, byKey: true }] }), // j6 on failed j1: starts failed
      spec(null, { deps: [{ pick: 0, byKey: false }] }), // j7 on succeeded j0: starts queued
      spec(null, { deps: [{ pick: 3, byKey: true }] }), // j8 on claimed j3: starts blocked
    ],
  },
  { t: 'cancel', pick: 8, viaLease: false }, // j8, blocked
  { t: 'enqueue', specs: [spec(null, { deps: [{ pick: 8, byKey: true }] })] }, // j9 on cancelled j8
  { t: 'complete', pick: 0 }, // j3
  claimCmd('f1', 4), // j7
  { t: 'completeMany', picks: [0, 1, 3] }, // j7 live, j3 stale, j4 live
];

/** Claim order: priority, then runAt (a retried job waits behind newer, earlier-due ones), id. */
const claimOrderCmds: Cmd[] = [
  { t: 'enqueue', specs: [spec(null), spec(null)] },
  claimCmd('f1'), // j0
  { t: 'fail', pick: 0, result: 'agent_failed', retryable: undefined }, // due again at +750
  advance(500),
  { t: 'enqueue', specs: [spec(null)] }, // j2, due at +500
  advance(750),
  claimCmd('f1'), // j1
  claimCmd('f1'), // j2: an earlier runAt beats j0's smaller id
  claimCmd('f1'), // j0
  {
    t: 'enqueue',
    specs: [spec(null, { priority: -1 }), spec('A', { priority: 1 }), spec('A', { priority: 1 })],
  },
  { t: 'enqueue', specs: [spec('B'), spec(null, { priority: 1 }), spec('B', { priority: 1 })] },
  claimCmd('f2', 2),
  claimCmd('f2', 4),
  claimCmd('f2', 4),
];

describeStores('queue model', (kind) => {
  it('agrees with the reference model under random interleavings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(cmdArb, { minLength: 10, maxLength: 40, size: 'max' }),
        async (cmds) => {
          const { store, clock } = await kind.open();
          try {
            await runCommands(store, clock, cmds);
          } finally {
            await store.close();
          }
        },
      ),
      {
        numRuns: kind.name === 'sqlite' ? 100 : 40,
        // A failure is reported (shrunk as far as time allowed) before the test's own timeout.
        plugins: [fc.interruptAfterTimeLimit(90_000)],
        examples: [[staleWhileReclaimed], [dependencies], [claimOrderCmds]],
      },
    );
  }, 120_000);
});
