import { Kysely, PostgresDialect } from 'kysely';
import type pg from 'pg';
import { z } from 'zod';
import {
  ACTIVE_STAGES,
  type BackoffPolicy,
  type Checkpoint,
  DEFAULT_BACKOFF,
  EventInput,
  type ExistingDep,
  IllegalTransitionError,
  type Job,
  type JobAction,
  type JobSpec,
  type JobSpecInput,
  type JobStage,
  type Lease,
  NotFoundError,
  StaleLeaseError,
  externalRefs,
  isActive,
  parseInput,
  planBatch,
  transition,
} from '../../core/index.js';
import type {
  AppendOptions,
  Appended,
  ClaimRequest,
  Claimed,
  CompleteInput,
  EnqueueResult,
  FailInput,
  FencedRef,
  Outcome,
  ReapedJob,
  Store,
  StoreOptions,
} from '../port.js';
import { type EventCursorRow, planDedupe } from '../shared/event-cursor.js';
import { newId } from '../shared/ids.js';
import { type AttemptEnd, jsonOrNull, planAttemptEnd } from '../shared/attempt-end.js';
import { parseJobBatch } from '../shared/job-batch.js';
import { newJobRow } from '../shared/job-rows.js';
import { unwrap } from '../shared/outcome.js';
import { KyselyStore } from '../shared/kysely-store.js';
import { toJob, toRun } from '../shared/rows.js';
import type { JobsTable, RunsTable } from '../shared/tables.js';

const EventBatch = z.array(EventInput).max(10_000);
const ACTIVE = [...ACTIVE_STAGES];

type Client = pg.PoolClient;

/**
 * A job row as PostgreSQL returns it (JSON columns already parsed). Rows written by
 * `writeRows` also say whether any job depends on them.
 */
type Row = JobsTable & { has_dependents?: boolean };

interface Move {
  row: Row;
  action: JobAction;
  set: Partial<Row>;
  /** Epoch recorded on the stage event; null when the control plane acts. */
  epoch: number | null;
  extra?: Record<string, unknown>;
}

interface RowEnd extends AttemptEnd {
  row: Row;
}

/**
 * The multi-host store on PostgreSQL.
 *
 * Locking strategy, chosen per verb:
 * - `claim` is one statement: `FOR UPDATE SKIP LOCKED` over the claim index, so concurrent
 *   claimers take disjoint rows without waiting; named locks are taken with
 *   `INSERT … ON CONFLICT DO NOTHING` on the `locks` primary key, which makes a second holder
 *   impossible even when two claimers saw the lock free in their snapshots.
 * - Other verbs lock the job rows they change (`FOR UPDATE`, in id order to avoid deadlocks),
 *   decide in TypeScript with the pure core functions, and write back in one batched
 *   `UPDATE … FROM unnest(…)`.
 * - Dependents are locked before their dependencies are checked, in a later statement: under
 *   READ COMMITTED that second statement sees every dependency that committed before the lock
 *   was granted, so two dependencies finishing at once cannot both miss the promotion.
 */
export class PostgresStore extends KyselyStore implements Store {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly random: () => number;
  private readonly backoff: BackoffPolicy;
  private readonly leaseTtlMs: number;

  constructor(pool: pg.Pool, options: StoreOptions) {
    super(
      new Kysely({ dialect: new PostgresDialect({ pool }) }),
      options.blobDir,
      options.clock ?? Date.now,
    );
    this.pool = pool;
    this.random = options.random ?? Math.random;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.leaseTtlMs = options.leaseTtlMs ?? 30_000;
  }

  async close(): Promise<void> {
    // Ends the pool too.
    await this.db.destroy();
  }

  // --- Enqueue ------------------------------------------------------------

  async enqueue(input: JobSpecInput[]): Promise<EnqueueResult[]> {
    const { specs, tenant } = parseJobBatch(input);
    try {
      return await this.tx((c) => this.enqueueIn(c, specs, tenant));
    } catch (err) {
      // A concurrent enqueue inserted the same idempotency key first: run again to return it.
      if (isUniqueViolation(err, 'jobs_idempotency'))
        return this.tx((c) => this.enqueueIn(c, specs, tenant));
      throw err;
    }
  }

  private async enqueueIn(c: Client, specs: JobSpec[], tenant: string): Promise<EnqueueResult[]> {
    const now = this.now();
    const results = new Array<EnqueueResult | undefined>(specs.length);
    const existing = new Map<string, ExistingDep>();
    const idemKeys = specs.flatMap((s) => (s.idempotencyKey === null ? [] : [s.idempotencyKey]));
    const byIdem = new Map<string, Row>();
    if (idemKeys.length > 0) {
      const { rows } = await c.query<Row>(
        'SELECT * FROM jobs WHERE tenant = $1 AND idempotency_key = ANY($2::text[])',
        [tenant, idemKeys],
      );
      for (const r of rows) byIdem.set(r.idempotency_key!, r);
    }
    const fresh: number[] = [];
    specs.forEach((s, i) => {
      const hit = s.idempotencyKey === null ? undefined : byIdem.get(s.idempotencyKey);
      if (hit === undefined) return void fresh.push(i);
      results[i] = { job: toJob(hit), created: false };
      existing.set(hit.id, { id: hit.id, stage: hit.stage as JobStage });
      if (hit.key !== null) existing.set(hit.key, { id: hit.id, stage: hit.stage as JobStage });
    });
    const freshSpecs = fresh.map((i) => specs[i]!);
    const refs = externalRefs(freshSpecs).filter((r) => !existing.has(r));
    if (refs.length > 0) {
      // FOR SHARE: a dependency cannot finish between reading its stage and our commit, so
      // its completion will see (and promote) the jobs we insert.
      const { rows } = await c.query<{ id: string; key: string | null; stage: JobStage }>(
        `SELECT id, key, stage FROM jobs WHERE tenant = $1 AND (id = ANY($2::text[]) OR key = ANY($2::text[]))
         ORDER BY created_at, id FOR SHARE`,
        [tenant, refs],
      );
      for (const r of rows) if (r.key !== null) existing.set(r.key, { id: r.id, stage: r.stage });
      // An id match wins over a key match; among keys, the newest job (later rows) wins.
      for (const r of rows) existing.set(r.id, { id: r.id, stage: r.stage });
    }
    const plan = planBatch(
      freshSpecs,
      fresh.map(() => newId()),
      existing,
      fresh,
    );
    if (plan.length === 0) return results as EnqueueResult[];
    const newRows = plan.map((p) => asJsonValues(newJobRow(freshSpecs[p.index]!, p, now)));
    // jsonb_populate_recordset maps each object onto a jobs row: one statement for the batch.
    const { rows } = await c.query<Row>(
      'INSERT INTO jobs SELECT * FROM jsonb_populate_recordset(NULL::jobs, $1::jsonb) RETURNING *',
      [JSON.stringify(newRows)],
    );
    const deps = plan.flatMap((p) => p.deps.map((d) => [p.id, d] as const));
    if (deps.length > 0)
      await c.query(
        'INSERT INTO job_deps (job_id, dep_id) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING',
        [deps.map((d) => d[0]), deps.map((d) => d[1])],
      );
    await this.insertEvents(
      c,
      rows.map((r) => ({
        row: r,
        type: 'stage',
        epoch: null,
        data: { from: null, to: r.stage, reason: r.stage_reason },
      })),
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const p of plan) results[fresh[p.index]!] = { job: toJob(byId.get(p.id)!), created: true };
    return results as EnqueueResult[];
  }

  // --- Claim --------------------------------------------------------------

  async claim(request: ClaimRequest): Promise<Claimed[]> {
    const limit = Math.max(0, Math.floor(request.limit));
    if (limit === 0 || request.tenants.length === 0) return [];
    const now = this.now();
    const ttl = request.leaseTtlMs ?? this.leaseTtlMs;
    const sql = request.tenants.length === 1 ? CLAIM_ONE_TENANT : CLAIM_MANY_TENANTS;
    const { rows } = await this.pool.query<{ job: Row; run: RunsTable }>(sql, [
      request.tenants,
      now,
      JSON.stringify(request.capabilities),
      limit,
      request.factoryId,
      ttl,
    ]);
    return rows.map((r) => {
      const job = toJob(r.job);
      return { job, run: toRun(r.run), lease: job.lease! };
    });
  }

  // --- Leases -------------------------------------------------------------

  async renew(ref: FencedRef, ttlMs?: number): Promise<Lease> {
    return unwrap((await this.renewMany([ref], ttlMs))[0]!);
  }

  async renewMany(refs: FencedRef[], ttlMs?: number): Promise<Outcome<Lease>[]> {
    if (refs.length === 0) return [];
    const expiresAt = this.now() + (ttlMs ?? this.leaseTtlMs);
    const { rows } = await this.pool.query<Row>(
      `UPDATE jobs j SET lease_expires_at = $3, lease_renewals = j.lease_renewals + 1
       FROM unnest($1::text[], $2::bigint[]) AS r(id, epoch)
       WHERE j.id = r.id AND j.lease_epoch = r.epoch AND j.lease_holder IS NOT NULL
         AND j.stage = ANY($4::text[])
       RETURNING j.*`,
      [refs.map((r) => r.jobId), refs.map((r) => r.epoch), expiresAt, ACTIVE],
    );
    const renewed = new Map(rows.map((r) => [r.id, toJob(r).lease!]));
    const outcomes: Outcome<Lease>[] = [];
    for (const ref of refs) {
      const lease = renewed.get(ref.jobId);
      outcomes.push(
        lease !== undefined && lease.leaseEpoch === ref.epoch
          ? { ok: true, value: lease }
          : { ok: false, error: await this.staleLease(ref) },
      );
    }
    return outcomes;
  }

  async markRunning(ref: FencedRef): Promise<Job> {
    return this.tx(async (c) => {
      const row = await this.fenced(c, ref);
      return toJob((await this.move(c, [{ row, action: 'start', set: {}, epoch: ref.epoch }]))[0]!);
    });
  }

  async markVerifying(ref: FencedRef): Promise<Job> {
    return this.tx(async (c) => {
      const row = await this.fenced(c, ref);
      return toJob(
        (await this.move(c, [{ row, action: 'verify', set: {}, epoch: ref.epoch }]))[0]!,
      );
    });
  }

  async saveCheckpoint(ref: FencedRef, checkpoint: Checkpoint): Promise<Job> {
    return this.tx(async (c) => {
      const row = await this.fenced(c, ref);
      const [updated] = await this.writeRows(c, [{ ...row, checkpoint }]);
      await this.insertEvents(c, [
        { row: updated!, type: 'checkpoint', epoch: ref.epoch, data: { ...checkpoint } },
      ]);
      return toJob(updated!);
    });
  }

  // --- Completion ---------------------------------------------------------

  async complete(input: CompleteInput): Promise<Job> {
    return unwrap((await this.completeMany([input]))[0]!);
  }

  async completeMany(inputs: CompleteInput[]): Promise<Outcome<Job>[]> {
    return this.endFenced(inputs, (row, input) => ({
      row,
      result: 'success',
      error: null,
      retryable: false,
      report: input,
      writerEpoch: input.epoch,
    }));
  }

  async fail(input: FailInput): Promise<Job> {
    return unwrap((await this.failMany([input]))[0]!);
  }

  async failMany(inputs: FailInput[]): Promise<Outcome<Job>[]> {
    return this.endFenced(inputs, (row, input) => ({
      row,
      result: input.result,
      error: input.error,
      retryable: input.retryable ?? true,
      report: input,
      writerEpoch: input.epoch,
    }));
  }

  /**
   * The batched path of complete and fail: one transaction locks every named job, checks each
   * fence, and ends the live attempts together. A stale item is reported alone.
   */
  private async endFenced<T extends FencedRef>(
    inputs: T[],
    toEnd: (row: Row, input: T) => RowEnd,
  ): Promise<Outcome<Job>[]> {
    if (inputs.length === 0) return [];
    return this.tx(async (c) => {
      const rows = await this.lockRows(
        c,
        inputs.map((i) => i.jobId),
      );
      const outcomes = new Array<Outcome<Job> | undefined>(inputs.length);
      const ends: RowEnd[] = [];
      const at: number[] = [];
      const taken = new Set<string>();
      inputs.forEach((input, i) => {
        const row = rows.get(input.jobId);
        if (row === undefined) {
          outcomes[i] = { ok: false, error: new NotFoundError('job', input.jobId) };
        } else if (!holdsLease(row, input.epoch) || taken.has(row.id)) {
          outcomes[i] = { ok: false, error: staleFrom(row, input.epoch) };
        } else {
          taken.add(row.id);
          ends.push(toEnd(row, input));
          at.push(i);
        }
      });
      const ended = await this.endAttempts(c, ends);
      ended.forEach((row, k) => (outcomes[at[k]!] = { ok: true, value: toJob(row) }));
      return outcomes as Outcome<Job>[];
    });
  }

  async reapExpired(now?: number): Promise<ReapedJob[]> {
    const at = now ?? this.now();
    return this.tx(async (c) => {
      // SKIP LOCKED: a row another transaction is completing right now is not expired work.
      const { rows } = await c.query<Row>(
        `SELECT * FROM jobs WHERE lease_holder IS NOT NULL AND lease_expires_at < $1
         ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED`,
        [at],
      );
      const ended = await this.endAttempts(
        c,
        rows.map((row) => ({
          row,
          result: 'lease_lost' as const,
          error: `lease of factory ${row.lease_holder} expired`,
          retryable: true,
          writerEpoch: null,
        })),
      );
      return ended.map((r, i) => ({
        jobId: r.id,
        tenant: r.tenant,
        epoch: rows[i]!.lease_epoch,
        stage: r.stage as ReapedJob['stage'],
      }));
    });
  }

  async cancel(tenant: string, id: string, reason = 'cancelled'): Promise<Job> {
    return this.tx(async (c) => {
      const row = await this.tenantRow(c, tenant, id);
      if (isActive(row.stage as JobStage)) {
        const [ended] = await this.endAttempts(c, [
          { row, result: 'cancelled', error: null, retryable: false, writerEpoch: null, reason },
        ]);
        return toJob(ended!);
      }
      const [updated] = await this.move(c, [
        {
          row,
          action: 'cancel',
          set: { stage_reason: reason, finished_at: this.now() },
          epoch: null,
        },
      ]);
      await this.failDependents(c, [updated!]);
      return toJob(updated!);
    });
  }

  async retry(tenant: string, id: string): Promise<Job> {
    return this.tx(async (c) => {
      const row = await this.tenantRow(c, tenant, id);
      transition(row.stage as JobStage, 'retry', id);
      const { rows: dead } = await c.query<{ id: string; key: string | null; stage: string }>(
        `SELECT k.id, k.key, k.stage FROM job_deps d JOIN jobs k ON k.id = d.dep_id
         WHERE d.job_id = $1 AND k.stage IN ('failed', 'cancelled') LIMIT 1`,
        [id],
      );
      const blocker = dead[0];
      if (blocker !== undefined)
        throw new IllegalTransitionError(
          row.stage,
          'retry',
          id,
          `dependency ${blocker.key ?? blocker.id} is ${blocker.stage}; retry it first`,
        );
      const ready = await this.readyToQueue(c, row);
      const [updated] = await this.move(c, [
        {
          row,
          action: ready ? 'retry' : 'reopen',
          set: {
            attempts: 0,
            run_at: this.now(),
            stage_reason: null,
            last_error: null,
            finished_at: null,
          },
          epoch: null,
        },
      ]);
      await this.reopenDependents(c, [updated!]);
      return toJob(updated!);
    });
  }

  async approve(tenant: string, id: string): Promise<Job> {
    return this.tx(async (c) => {
      const row = await this.tenantRow(c, tenant, id);
      if (Number(row.requires_approval) !== 1 || row.approved_at !== null)
        throw new IllegalTransitionError(
          row.stage,
          'approve',
          id,
          'it is not waiting for approval',
        );
      let [updated] = await this.move(c, [
        { row, action: 'approve', set: { approved_at: this.now() }, epoch: null },
      ]);
      if (await this.readyToQueue(c, updated!))
        [updated] = await this.move(c, [
          { row: updated!, action: 'unblock', set: {}, epoch: null },
        ]);
      return toJob(updated!);
    });
  }

  async settle(
    tenant: string,
    id: string,
    outcome: { stage: 'succeeded' | 'failed'; reason?: string | null; error?: string | null },
  ): Promise<Job> {
    return this.tx(async (c) => {
      const row = await this.tenantRow(c, tenant, id);
      const action = outcome.stage === 'succeeded' ? 'settle' : 'abandon';
      if (row.kind !== 'composite')
        throw new IllegalTransitionError(row.stage, action, id, 'only a plan is settled');
      const [updated] = await this.move(c, [
        {
          row,
          action,
          set: {
            stage_reason: outcome.reason ?? null,
            last_error: outcome.error ?? null,
            finished_at: this.now(),
          },
          epoch: null,
        },
      ]);
      if (outcome.stage === 'succeeded') await this.promoteDependents(c, [updated!]);
      else await this.failDependents(c, [updated!]);
      return toJob(updated!);
    });
  }

  // --- Events -------------------------------------------------------------

  async appendEvents(
    ref: FencedRef,
    events: EventInput[],
    options: AppendOptions = {},
  ): Promise<Appended> {
    const parsed = parseInput(EventBatch, events, 'event batch');
    const localSeq = options.localSeq;
    if (localSeq === undefined) {
      const last = await this.insertEventsFenced(this.pool, ref, parsed);
      if (last === undefined) throw await this.staleLease(ref);
      return { firstSeq: last - parsed.length + 1, lastSeq: last };
    }
    return this.tx(async (c) => {
      // The job's row lock (taken by the fence check) serializes writers of its cursor.
      await this.fenced(c, ref);
      const { rows } = await c.query<EventCursorRow>(
        'SELECT epoch, local_seq FROM event_cursors WHERE job_id = $1',
        [ref.jobId],
      );
      const plan = planDedupe(rows[0], ref.epoch, localSeq, parsed.length);
      const fresh = parsed.slice(plan.skip);
      await c.query(
        `INSERT INTO event_cursors (job_id, epoch, local_seq) VALUES ($1, $2, $3)
         ON CONFLICT (job_id) DO UPDATE SET epoch = excluded.epoch, local_seq = excluded.local_seq`,
        [ref.jobId, ref.epoch, plan.localSeq],
      );
      const last = await this.insertEventsFenced(c, ref, fresh);
      if (last === undefined) throw await this.staleLease(ref);
      return { firstSeq: last - fresh.length + 1, lastSeq: last, duplicates: plan.skip };
    });
  }

  /**
   * One statement: the fenced seq reservation and the insert commit together, and the row
   * lock on the job serializes writers so seqs stay gap-free. The job's new `event_seq`, or
   * undefined when `ref` is not its live lease.
   */
  private async insertEventsFenced(
    q: pg.Pool | Client,
    ref: FencedRef,
    events: z.output<typeof EventBatch>,
  ): Promise<number | undefined> {
    const now = this.now();
    const { rows } = await q.query<{ last: number }>(
      `WITH s AS (
         UPDATE jobs SET event_seq = event_seq + $3
         WHERE id = $1 AND lease_epoch = $2 AND lease_holder IS NOT NULL AND stage = ANY($7::text[])
         RETURNING event_seq, tenant
       ), ins AS (
         INSERT INTO events (job_id, seq, tenant, type, at, epoch, data)
         SELECT $1, s.event_seq - $3 + e.ord, s.tenant, e.type, e.at, $2, e.data
         FROM s, unnest($4::text[], $5::bigint[], $6::jsonb[]) WITH ORDINALITY AS e(type, at, data, ord)
       )
       SELECT event_seq AS last FROM s`,
      [
        ref.jobId,
        ref.epoch,
        events.length,
        events.map((e) => e.type),
        events.map((e) => e.at ?? now),
        events.map((e) => JSON.stringify(e.data)),
        ACTIVE,
      ],
    );
    return rows[0]?.last;
  }

  // --- Transaction helpers ------------------------------------------------

  private async tx<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  private async lockRows(c: Client, ids: string[]): Promise<Map<string, Row>> {
    const { rows } = await c.query<Row>(
      'SELECT * FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE',
      [[...new Set(ids)]],
    );
    return new Map(rows.map((r) => [r.id, r]));
  }

  private async fenced(c: Client, ref: FencedRef): Promise<Row> {
    const row = (await this.lockRows(c, [ref.jobId])).get(ref.jobId);
    if (row === undefined) throw new NotFoundError('job', ref.jobId);
    if (!holdsLease(row, ref.epoch)) throw staleFrom(row, ref.epoch);
    return row;
  }

  private async tenantRow(c: Client, tenant: string, id: string): Promise<Row> {
    const row = (await this.lockRows(c, [id])).get(id);
    if (row === undefined || row.tenant !== tenant) throw new NotFoundError('job', id);
    return row;
  }

  /** Ends attempts: closes their runs, frees leases and locks, moves the jobs on. */
  private async endAttempts(c: Client, ends: RowEnd[]): Promise<Row[]> {
    if (ends.length === 0) return [];
    const now = this.now();
    const moves: Move[] = [];
    const runs = { job: [] as string[], epoch: [] as number[], result: [] as string[] };
    const runJson = { exit: [] as (string | null)[], verify: [] as (string | null)[] };
    const runMore = { insights: [] as (string | null)[], output: [] as (string | null)[] };
    for (const end of ends) {
      const { row } = end;
      const plan = planAttemptEnd(row, end, now, this.backoff, this.random);
      runs.job.push(row.id);
      runs.epoch.push(row.lease_epoch);
      runs.result.push(plan.run.result);
      runJson.exit.push(plan.run.exit);
      runJson.verify.push(plan.run.verifyResult);
      runMore.insights.push(plan.run.insights);
      runMore.output.push(plan.run.output);
      const set: Partial<Row> = { ...plan.set };
      if (plan.checkpoint !== undefined) set.checkpoint = plan.checkpoint;
      moves.push({
        row,
        action: plan.action,
        set,
        epoch: end.writerEpoch,
        extra: { result: end.result },
      });
    }
    await c.query(
      `UPDATE runs r SET ended_at = $1, result = v.result, exit = coalesce(v.exit, r.exit),
         verify_result = coalesce(v.verify_result, r.verify_result),
         insights = coalesce(v.insights, r.insights), output = coalesce(v.output, r.output)
       FROM unnest($2::text[], $3::bigint[], $4::text[], $5::jsonb[], $6::jsonb[], $7::jsonb[], $8::jsonb[])
         AS v(job_id, epoch, result, exit, verify_result, insights, output)
       WHERE r.job_id = v.job_id AND r.lease_epoch = v.epoch`,
      [
        now,
        runs.job,
        runs.epoch,
        runs.result,
        runJson.exit,
        runJson.verify,
        runMore.insights,
        runMore.output,
      ],
    );
    const locked = ends.filter((e) => e.row.lock !== null).map((e) => e.row.id);
    if (locked.length > 0)
      await c.query('DELETE FROM locks WHERE job_id = ANY($1::text[])', [locked]);
    const updated = await this.move(c, moves);
    const succeeded = updated.filter((r) => r.stage === 'succeeded');
    const dead = updated.filter((r) => r.stage === 'failed' || r.stage === 'cancelled');
    if (succeeded.length > 0) await this.promoteDependents(c, succeeded);
    if (dead.length > 0) await this.failDependents(c, dead);
    return updated;
  }

  /** Applies stage transitions (checked by core) in one write and records each as an event. */
  private async move(c: Client, moves: Move[]): Promise<Row[]> {
    if (moves.length === 0) return [];
    const next = moves.map((m) => ({
      ...m.row,
      ...m.set,
      stage: transition(m.row.stage as JobStage, m.action, m.row.id),
    }));
    const updated = await this.writeRows(c, next);
    await this.insertEvents(
      c,
      updated.map((row, i) => {
        const m = moves[i]!;
        return {
          row,
          type: 'stage',
          epoch: m.epoch,
          data: {
            from: m.row.stage,
            to: row.stage,
            action: m.action,
            reason: row.stage_reason,
            ...m.extra,
          },
        };
      }),
    );
    return updated;
  }

  /**
   * Writes the mutable columns of locked rows back in one statement, bumping the event seq,
   * the rev and `updated_at`. Returns the new rows in the order given, each with
   * `has_dependents`: this statement starts after the rows are locked, so it sees every
   * dependent an enqueue committed before the lock was granted (an enqueue holds its
   * dependencies FOR SHARE until it commits).
   */
  private async writeRows(c: Client, rows: Row[]): Promise<Row[]> {
    const { rows: out } = await c.query<Row>(
      `UPDATE jobs j SET stage = v.stage, stage_reason = v.stage_reason,
         lease_holder = v.lease_holder, lease_expires_at = v.lease_expires_at, run_at = v.run_at,
         last_error = v.last_error, checkpoint = v.checkpoint, finished_at = v.finished_at,
         attempts = v.attempts, approved_at = v.approved_at,
         event_seq = j.event_seq + 1, rev = j.rev + 1, updated_at = $12
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
                   $7::text[], $8::jsonb[], $9::bigint[], $10::int[], $11::bigint[])
         AS v(id, stage, stage_reason, lease_holder, lease_expires_at, run_at, last_error,
              checkpoint, finished_at, attempts, approved_at)
       WHERE j.id = v.id
       RETURNING j.*, EXISTS (SELECT 1 FROM job_deps d WHERE d.dep_id = j.id) AS has_dependents`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.stage),
        rows.map((r) => r.stage_reason),
        rows.map((r) => r.lease_holder),
        rows.map((r) => r.lease_expires_at),
        rows.map((r) => r.run_at),
        rows.map((r) => r.last_error),
        rows.map((r) => jsonOrNull(r.checkpoint)),
        rows.map((r) => r.finished_at),
        rows.map((r) => r.attempts),
        rows.map((r) => r.approved_at),
        this.now(),
      ],
    );
    const byId = new Map(out.map((r) => [r.id, r]));
    return rows.map((r) => byId.get(r.id)!);
  }

  private async insertEvents(
    c: Client,
    events: { row: Row; type: string; epoch: number | null; data: object }[],
  ): Promise<void> {
    if (events.length === 0) return;
    const now = this.now();
    await c.query(
      `INSERT INTO events (job_id, seq, tenant, type, at, epoch, data)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::jsonb[])`,
      [
        events.map((e) => e.row.id),
        events.map((e) => e.row.event_seq),
        events.map((e) => e.row.tenant),
        events.map((e) => e.type),
        events.map(() => now),
        events.map((e) => e.epoch),
        events.map((e) => JSON.stringify(e.data)),
      ],
    );
  }

  private async readyToQueue(c: Client, row: Row): Promise<boolean> {
    if (Number(row.requires_approval) === 1 && row.approved_at === null) return false;
    const { rows } = await c.query(
      `SELECT 1 FROM job_deps d JOIN jobs k ON k.id = d.dep_id
       WHERE d.job_id = $1 AND k.stage <> 'succeeded' LIMIT 1`,
      [row.id],
    );
    return rows.length === 0;
  }

  /** Locks the blocked dependents of `done`, then (in new statements) queues the ready ones. */
  private async promoteDependents(c: Client, finished: Row[]): Promise<void> {
    const done = finished.filter((r) => r.has_dependents !== false);
    if (done.length === 0) return;
    const { rows } = await c.query<Row>(
      `SELECT j.* FROM jobs j WHERE j.stage = 'blocked'
         AND j.id IN (SELECT job_id FROM job_deps WHERE dep_id = ANY($1::text[]))
       ORDER BY j.id FOR UPDATE`,
      [done.map((r) => r.id)],
    );
    const ready: Row[] = [];
    for (const row of rows) if (await this.readyToQueue(c, row)) ready.push(row);
    await this.move(
      c,
      ready.map((row) => ({ row, action: 'unblock', set: {}, epoch: null })),
    );
  }

  /** Fails every job that (transitively) waits on a job that will never succeed. */
  private async failDependents(c: Client, dead: Row[]): Promise<void> {
    let frontier = dead.filter((r) => r.has_dependents !== false);
    while (frontier.length > 0) {
      const { rows } = await c.query<Row & { cause: string }>(
        `SELECT j.*, d.dep_id AS cause FROM jobs j JOIN job_deps d ON d.job_id = j.id
         WHERE d.dep_id = ANY($1::text[]) AND j.stage IN ('blocked', 'queued')
         ORDER BY j.id FOR UPDATE OF j`,
        [frontier.map((r) => r.id)],
      );
      const causes = new Map(frontier.map((r) => [r.id, r]));
      const unique = new Map(rows.map((r) => [r.id, r]));
      const now = this.now();
      frontier = await this.move(
        c,
        [...unique.values()].map(({ cause, ...row }) => {
          const failed = causes.get(cause)!;
          return {
            row,
            action: 'dep_failed' as const,
            set: {
              stage_reason: 'dep_failed',
              last_error: `dependency ${failed.key ?? failed.id} ${failed.stage}`,
              finished_at: now,
            },
            epoch: null,
          };
        }),
      );
      frontier = frontier.filter((r) => r.has_dependents !== false);
    }
  }

  /** After a retry, jobs that failed only because of this one wait for it again. */
  private async reopenDependents(c: Client, reopened: Row[]): Promise<void> {
    let frontier = reopened.filter((r) => r.has_dependents !== false);
    while (frontier.length > 0) {
      const { rows } = await c.query<Row>(
        `SELECT j.* FROM jobs j WHERE j.stage = 'failed' AND j.stage_reason = 'dep_failed'
           AND j.id IN (SELECT job_id FROM job_deps WHERE dep_id = ANY($1::text[]))
         ORDER BY j.id FOR UPDATE`,
        [frontier.map((r) => r.id)],
      );
      frontier = await this.move(
        c,
        rows.map((row) => ({
          row,
          action: 'reopen' as const,
          set: { attempts: 0, stage_reason: null, last_error: null, finished_at: null },
          epoch: null,
        })),
      );
      frontier = frontier.filter((r) => r.has_dependents !== false);
    }
  }
}

/**
 * The claim in one statement (one round trip, one commit): pick queued, due, capable jobs in
 * claim order, skipping rows other claimers hold; take named locks; raise the epoch and lease
 * the jobs; create their runs; record the stage events.
 */
const claimSql = (tenantFilter: string) => /* sql */ `
WITH cand AS (
  SELECT j.id, j.tenant, j.lock, j.priority, j.run_at
  FROM jobs j
  WHERE ${tenantFilter} AND j.stage = 'queued' AND j.kind = 'leaf' AND j.run_at <= $2
    AND (j.lock IS NULL OR NOT EXISTS
          (SELECT 1 FROM locks l WHERE l.tenant = j.tenant AND l.name = j.lock))
    AND j.capabilities <@ $3::jsonb
  ORDER BY j.priority DESC, j.run_at, j.id
  LIMIT $4
  FOR UPDATE SKIP LOCKED
), lk AS (
  INSERT INTO locks (tenant, name, job_id, acquired_at)
  SELECT DISTINCT ON (tenant, lock) tenant, lock, id, $2 FROM cand
  WHERE lock IS NOT NULL
  ORDER BY tenant, lock, priority DESC, run_at, id
  ON CONFLICT DO NOTHING
  RETURNING job_id
), upd AS (
  UPDATE jobs j SET stage = 'claimed', stage_reason = NULL, lease_epoch = j.lease_epoch + 1,
    lease_holder = $5, lease_expires_at = $2 + $6, lease_renewals = 0,
    attempts = j.attempts + 1, event_seq = j.event_seq + 1, rev = j.rev + 1, updated_at = $2
  FROM cand
  WHERE j.id = cand.id AND (cand.lock IS NULL OR cand.id IN (SELECT job_id FROM lk))
  RETURNING j.*
), run AS (
  INSERT INTO runs (id, tenant, job_id, attempt, factory_id, engine, profile_snapshot, lease_epoch, started_at)
  SELECT gen_random_uuid()::text, u.tenant, u.id, u.attempts, $5, u.engine,
    (SELECT jsonb_build_object('name', p.name, 'version', p.version, 'persona', p.persona,
                               'defaults', p.defaults, 'promptParts', p.prompt_parts)
     FROM profiles p
     WHERE u.profile IS NOT NULL AND p.tenant = u.tenant
       AND p.name = regexp_replace(u.profile, '@[0-9]+$', '')
       AND (u.profile !~ '@[0-9]+$' OR p.version = substring(u.profile from '@([0-9]+)$')::int)
     ORDER BY p.version DESC LIMIT 1),
    u.lease_epoch, $2
  FROM upd u
  RETURNING *
), ev AS (
  INSERT INTO events (job_id, seq, tenant, type, at, epoch, data)
  SELECT id, event_seq, tenant, 'stage', $2, lease_epoch,
    jsonb_build_object('from', 'queued', 'to', 'claimed', 'action', 'claim', 'reason', NULL,
                       'factoryId', $5::text)
  FROM upd
)
SELECT to_jsonb(upd) AS job, to_jsonb(run) AS run
FROM upd JOIN run ON run.job_id = upd.id
ORDER BY upd.priority DESC, upd.run_at, upd.id`;

// One tenant (the usual factory) compares with `=`, so the scan walks the `jobs_claim` index in
// claim order and stops after `limit` rows; `= ANY(…)` would scan and sort every queued job.
const CLAIM_ONE_TENANT = claimSql('j.tenant = ($1::text[])[1]');
const CLAIM_MANY_TENANTS = claimSql('j.tenant = ANY($1::text[])');

function holdsLease(row: Row, epoch: number): boolean {
  return (
    Number(row.lease_epoch) === epoch &&
    row.lease_holder !== null &&
    isActive(row.stage as JobStage)
  );
}

function staleFrom(row: Row, epoch: number): StaleLeaseError {
  return new StaleLeaseError(row.id, epoch, row.lease_holder === null ? null : row.lease_epoch);
}

const JSON_COLUMNS = ['manifest', 'capabilities', 'deps', 'verify', 'checkpoint'] as const;

/** newJobRow writes JSON columns as text (SQLite); jsonb_populate_recordset wants values. */
function asJsonValues(row: JobsTable): Record<string, unknown> {
  const out: Record<string, unknown> = { ...row };
  for (const col of JSON_COLUMNS) {
    const v = row[col];
    out[col] = typeof v === 'string' ? JSON.parse(v) : v;
  }
  return out;
}

function isUniqueViolation(err: unknown, constraint: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e.code === '23505' && e.constraint === constraint;
}
