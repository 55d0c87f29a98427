import { type Expression, type ExpressionBuilder, type Kysely, type SqlBool, sql } from 'kysely';
import {
  ACTIVE_STAGES,
  ArtifactSpec,
  type Artifact,
  type ArtifactSpecInput,
  ConflictError,
  FactoryPatch,
  FactorySpec,
  type Factory,
  type FactorySpecInput,
  JOB_STAGES,
  type Job,
  type JobEvent,
  JobPatch,
  type JobStage,
  NotFoundError,
  IllegalTransitionError,
  ProfileSpec,
  type Profile,
  type ProfileSpecInput,
  type Run,
  SchedulePatch,
  ScheduleSpec,
  type Schedule,
  type ScheduleSpecInput,
  SignalSpec,
  SignalStatus,
  TokenSpec,
  type Token,
  type TokenSpecInput,
  type Signal,
  type SignalSpecInput,
  StaleLeaseError,
  TERMINAL_STAGES,
  parseInput,
  type FactoryPatch as FactoryPatchT,
  type JobPatch as JobPatchT,
  type SchedulePatch as SchedulePatchT,
  type SignalStatus as SignalStatusT,
} from '../../core/index.js';
import type { FencedRef, JobQuery, Page } from '../port.js';
import { BlobStore } from './blob-store.js';
import { newId } from './ids.js';
import {
  toArtifact,
  toEvent,
  toFactory,
  toJob,
  toProfile,
  toRun,
  toSchedule,
  toSignal,
  toToken,
} from './rows.js';
import type { Tables } from './tables.js';

type RevTable = 'jobs' | 'factories' | 'signals' | 'schedules';

const ENTITY: Record<RevTable, string> = {
  jobs: 'job',
  factories: 'factory',
  signals: 'signal',
  schedules: 'schedule',
};

/** Signal delivery moves forward only: pending → delivered → drained, or → expired. */
const SIGNAL_NEXT: Record<SignalStatusT, readonly SignalStatusT[]> = {
  pending: ['delivered', 'expired'],
  delivered: ['drained', 'expired'],
  drained: [],
  expired: [],
};

/**
 * The part of the store both dialects share: reads and record CRUD written once with Kysely.
 * Each method here is a single statement, so it is atomic on its own; anything that needs
 * several statements in one transaction (the queue verbs) lives in the dialect's folder.
 */
export abstract class KyselyStore {
  protected readonly db: Kysely<Tables>;
  protected readonly blobs: BlobStore;
  protected readonly now: () => number;

  constructor(db: Kysely<Tables>, blobDir: string, clock: () => number) {
    this.db = db;
    this.blobs = new BlobStore(blobDir);
    this.now = clock;
  }

  // --- Jobs ---------------------------------------------------------------

  async getJob(tenant: string, id: string): Promise<Job | null> {
    const row = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? null : toJob(row);
  }

  async listJobs(tenant: string, query: JobQuery = {}): Promise<Page<Job>> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    let q = this.db.selectFrom('jobs').selectAll().where('tenant', '=', tenant);
    if (query.stage !== undefined) {
      const stages = Array.isArray(query.stage) ? query.stage : [query.stage];
      q = q.where('stage', 'in', stages);
    }
    if (query.key !== undefined) q = q.where('key', '=', query.key);
    if (query.lock !== undefined) q = q.where('lock', '=', query.lock);
    if (query.parentId !== undefined) q = q.where('parent_id', '=', query.parentId);
    if (query.kind !== undefined) q = q.where('kind', '=', query.kind);
    // Ids are time-ordered, so the id is the cursor: newest first.
    if (query.after !== undefined) q = q.where('id', '<', query.after);
    const rows = await q
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    const items = rows.slice(0, limit).map(toJob);
    return { items, next: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
  }

  async openComposites(): Promise<{ tenant: string; id: string }[]> {
    return this.db
      .selectFrom('jobs')
      .select(['tenant', 'id'])
      .where('kind', '=', 'composite')
      .where('stage', 'in', ['blocked', 'queued'])
      .orderBy('id')
      .execute();
  }

  async updateJob(tenant: string, id: string, rev: number, patch: JobPatchT): Promise<Job> {
    const p = parseInput(JobPatch, patch, 'job patch');
    const set: Record<string, unknown> = {};
    if (p.priority !== undefined) set.priority = p.priority;
    if (p.manifest !== undefined) set.manifest = JSON.stringify(p.manifest);
    if (p.bodyMd !== undefined) set.body_md = p.bodyMd;
    if (p.runAt !== undefined) set.run_at = p.runAt;
    if (p.timeoutMs !== undefined) set.timeout_ms = p.timeoutMs;
    if (p.maxAttempts !== undefined) set.max_attempts = p.maxAttempts;
    if (p.checkpoint !== undefined)
      set.checkpoint = p.checkpoint === null ? null : JSON.stringify(p.checkpoint);
    return toJob(await this.updateWithRev('jobs', tenant, id, rev, set));
  }

  async deleteJob(tenant: string, id: string): Promise<void> {
    const res = await this.db
      .deleteFrom('jobs')
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .where('stage', 'in', [...TERMINAL_STAGES])
      .executeTakeFirst();
    if (Number(res.numDeletedRows) === 1) return;
    const job = await this.getJob(tenant, id);
    if (job === null) throw new NotFoundError('job', id);
    throw new IllegalTransitionError(job.stage, 'delete', id);
  }

  async countJobs(tenant?: string): Promise<Record<JobStage, number>> {
    let q = this.db
      .selectFrom('jobs')
      .select(['stage', (eb) => eb.fn.countAll<number | string>().as('n')])
      .groupBy('stage');
    if (tenant !== undefined) q = q.where('tenant', '=', tenant);
    const counts = Object.fromEntries(JOB_STAGES.map((s) => [s, 0])) as Record<JobStage, number>;
    for (const row of await q.execute()) counts[row.stage as JobStage] = Number(row.n);
    return counts;
  }

  async countJobsByTenant(): Promise<{ tenant: string; stage: JobStage; count: number }[]> {
    const rows = await this.db
      .selectFrom('jobs')
      .select(['tenant', 'stage', (eb) => eb.fn.countAll<number | string>().as('n')])
      .groupBy(['tenant', 'stage'])
      .orderBy('tenant')
      .orderBy('stage')
      .execute();
    return rows.map((r) => ({ tenant: r.tenant, stage: r.stage as JobStage, count: Number(r.n) }));
  }

  // --- Runs and events ----------------------------------------------------

  async getRun(tenant: string, id: string): Promise<Run | null> {
    const row = await this.db
      .selectFrom('runs')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? null : toRun(row);
  }

  async listRuns(tenant: string, jobId: string): Promise<Run[]> {
    const rows = await this.db
      .selectFrom('runs')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('job_id', '=', jobId)
      .orderBy('lease_epoch')
      .execute();
    return rows.map(toRun);
  }

  async readEvents(
    tenant: string,
    jobId: string,
    options: { afterSeq?: number; limit?: number } = {},
  ): Promise<JobEvent[]> {
    const limit = Math.min(Math.max(options.limit ?? 1000, 1), 10_000);
    const rows = await this.db
      .selectFrom('events')
      .selectAll()
      .where('job_id', '=', jobId)
      .where('tenant', '=', tenant)
      .where('seq', '>', options.afterSeq ?? 0)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map(toEvent);
  }

  // --- Artifacts ----------------------------------------------------------

  /**
   * Stores the bytes content-addressed, then inserts the pointer row in the same statement that
   * checks the lease, so a stale writer adds no row. (Its blob may stay on disk: blobs are
   * immutable and shared by address, so an unreferenced one is garbage, never corruption.)
   */
  async putArtifact(
    ref: FencedRef,
    spec: ArtifactSpecInput,
    content: Uint8Array,
  ): Promise<Artifact> {
    const row = await this.insertArtifact(spec, content, (eb) =>
      eb.and([
        eb('id', '=', ref.jobId),
        eb('lease_epoch', '=', ref.epoch),
        eb('stage', 'in', [...ACTIVE_STAGES]),
      ]),
    );
    if (row === undefined) throw await this.staleLease(ref);
    return toArtifact(row);
  }

  async attachArtifact(
    tenant: string,
    jobId: string,
    spec: ArtifactSpecInput,
    content: Uint8Array,
  ): Promise<Artifact> {
    const row = await this.insertArtifact(spec, content, (eb) =>
      eb.and([eb('tenant', '=', tenant), eb('id', '=', jobId), eb('kind', '=', 'composite')]),
    );
    if (row === undefined) throw new NotFoundError('plan', jobId);
    return toArtifact(row);
  }

  /**
   * Stores the bytes content-addressed, then inserts the pointer row in one statement that
   * selects the owning job through `owner`, so a write the job does not allow (a stale lease)
   * adds no row. (Its blob may stay on disk: blobs are immutable and shared by address, so an
   * unreferenced one is garbage, never corruption.)
   */
  private async insertArtifact(
    spec: ArtifactSpecInput,
    content: Uint8Array,
    owner: (eb: ExpressionBuilder<Tables, 'jobs'>) => Expression<SqlBool>,
  ) {
    const s = parseInput(ArtifactSpec, spec, 'artifact');
    const { sha256, size } = await this.blobs.put(content);
    const id = newId();
    const now = this.now();
    const text = (v: string | null) => sql<string>`CAST(${v} AS TEXT)`;
    return this.db
      .insertInto('artifacts')
      .columns([
        'id',
        'tenant',
        'job_id',
        'run_id',
        'kind',
        'name',
        'sha256',
        'size',
        'media_type',
        'created_at',
      ])
      .expression(
        this.db
          .selectFrom('jobs')
          .select([
            text(id).as('id'),
            'tenant',
            'id as job_id',
            text(s.runId).as('run_id'),
            text(s.kind).as('kind'),
            text(s.name).as('name'),
            text(sha256).as('sha256'),
            sql<number>`CAST(${size} AS BIGINT)`.as('size'),
            text(s.mediaType).as('media_type'),
            sql<number>`CAST(${now} AS BIGINT)`.as('created_at'),
          ])
          .where(owner),
      )
      .returningAll()
      .executeTakeFirst();
  }

  async getArtifact(tenant: string, id: string): Promise<Artifact | null> {
    const row = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? null : toArtifact(row);
  }

  async readArtifact(tenant: string, id: string): Promise<Buffer> {
    const artifact = await this.getArtifact(tenant, id);
    if (artifact === null) throw new NotFoundError('artifact', id);
    return this.blobs.get(artifact.sha256);
  }

  async listArtifacts(tenant: string, jobId: string): Promise<Artifact[]> {
    const rows = await this.db
      .selectFrom('artifacts')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('job_id', '=', jobId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toArtifact);
  }

  // --- Factories ----------------------------------------------------------

  /** Creates the factory, or updates the one with the same name (a factory re-registering). */
  async registerFactory(spec: FactorySpecInput): Promise<Factory> {
    const s = parseInput(FactorySpec, spec, 'factory');
    const now = this.now();
    const row = await this.db
      .insertInto('factories')
      .values({
        id: s.id ?? newId(),
        tenant: s.tenant,
        name: s.name,
        kind: s.kind,
        capabilities: JSON.stringify(s.capabilities),
        seats: s.seats,
        version: s.version,
        status: s.status,
        last_seen_at: now,
        rev: 1,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc.columns(['tenant', 'name']).doUpdateSet({
          kind: s.kind,
          capabilities: JSON.stringify(s.capabilities),
          seats: s.seats,
          version: s.version,
          status: s.status,
          last_seen_at: now,
          updated_at: now,
          rev: sql`factories.rev + 1`,
        }),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return toFactory(row);
  }

  async getFactory(tenant: string, id: string): Promise<Factory | null> {
    const row = await this.db
      .selectFrom('factories')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? null : toFactory(row);
  }

  async listFactories(tenant: string): Promise<Factory[]> {
    const rows = await this.db
      .selectFrom('factories')
      .selectAll()
      .where('tenant', '=', tenant)
      .orderBy('name')
      .execute();
    return rows.map(toFactory);
  }

  async updateFactory(
    tenant: string,
    id: string,
    rev: number,
    patch: FactoryPatchT,
  ): Promise<Factory> {
    const p = parseInput(FactoryPatch, patch, 'factory patch');
    const set: Record<string, unknown> = {};
    if (p.capabilities !== undefined) set.capabilities = JSON.stringify(p.capabilities);
    if (p.seats !== undefined) set.seats = p.seats;
    if (p.version !== undefined) set.version = p.version;
    if (p.status !== undefined) set.status = p.status;
    if (p.lastSeenAt !== undefined) set.last_seen_at = p.lastSeenAt;
    return toFactory(await this.updateWithRev('factories', tenant, id, rev, set));
  }

  async deleteFactory(tenant: string, id: string): Promise<void> {
    const res = await this.db
      .deleteFrom('factories')
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(res.numDeletedRows) !== 1) throw new NotFoundError('factory', id);
  }

  async onlineFactorySeats(): Promise<{ online: number; seats: number }> {
    const row = await this.db
      .selectFrom('factories')
      .select((eb) => [
        eb.fn.countAll<number | string>().as('online'),
        eb.fn.coalesce(eb.fn.sum<number | string>('seats'), eb.lit(0)).as('seats'),
      ])
      .where('status', '=', 'online')
      .executeTakeFirstOrThrow();
    return { online: Number(row.online), seats: Number(row.seats) };
  }

  // --- Profiles -----------------------------------------------------------

  /** Creates the next version of a profile. Versions are immutable once written. */
  async createProfile(spec: ProfileSpecInput): Promise<Profile> {
    const s = parseInput(ProfileSpec, spec, 'profile');
    // Two writers may race for the same next version; the unique key settles it and the loser
    // tries again with the following number.
    for (let attempt = 0; ; attempt++) {
      const latest = await this.db
        .selectFrom('profiles')
        .select((eb) => eb.fn.max('version').as('v'))
        .where('tenant', '=', s.tenant)
        .where('name', '=', s.name)
        .executeTakeFirst();
      const version = Number(latest?.v ?? 0) + 1;
      const row = await this.db
        .insertInto('profiles')
        .values({
          id: newId(),
          tenant: s.tenant,
          name: s.name,
          version,
          persona: s.persona,
          defaults: JSON.stringify(s.defaults),
          prompt_parts: JSON.stringify(s.promptParts),
          created_at: this.now(),
        })
        .onConflict((oc) => oc.columns(['tenant', 'name', 'version']).doNothing())
        .returningAll()
        .executeTakeFirst();
      if (row !== undefined) return toProfile(row);
      if (attempt >= 10) throw new ConflictError('profile', s.name, version, version);
    }
  }

  async getProfile(tenant: string, name: string, version?: number): Promise<Profile | null> {
    let q = this.db
      .selectFrom('profiles')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('name', '=', name);
    q =
      version === undefined
        ? q.orderBy('version', 'desc').limit(1)
        : q.where('version', '=', version);
    const row = await q.executeTakeFirst();
    return row === undefined ? null : toProfile(row);
  }

  async listProfiles(tenant: string): Promise<Profile[]> {
    const rows = await this.db
      .selectFrom('profiles')
      .selectAll()
      .where('tenant', '=', tenant)
      .orderBy('name')
      .orderBy('version')
      .execute();
    return rows.map(toProfile);
  }

  // --- Signals ------------------------------------------------------------

  /**
   * Sends a signal to a job that has not finished. Idempotent by `key`: sending the same key
   * again returns the first signal with `created: false`. A finished job refuses with an
   * {@link IllegalTransitionError}; an unknown job is a {@link NotFoundError}.
   */
  async sendSignal(spec: SignalSpecInput): Promise<{ signal: Signal; created: boolean }> {
    const s = parseInput(SignalSpec, spec, 'signal');
    const existing = await this.signalByKey(s.tenant, s.jobId, s.key);
    if (existing !== null) return { signal: existing, created: false };
    const now = this.now();
    const text = (v: string) => sql<string>`CAST(${v} AS TEXT)`;
    const int = (v: number | null) => sql<number>`CAST(${v} AS BIGINT)`;
    // Insert only while the job is unfinished, in the statement that checks it.
    const row = await this.db
      .insertInto('signals')
      .columns([
        'id',
        'tenant',
        'job_id',
        'key',
        'body',
        'status',
        'created_at',
        'expires_at',
        'rev',
      ])
      .expression(
        this.db
          .selectFrom('jobs')
          .select([
            text(newId()).as('id'),
            'tenant',
            'id as job_id',
            text(s.key).as('key'),
            text(s.body).as('body'),
            text('pending').as('status'),
            int(now).as('created_at'),
            int(s.expiresAt).as('expires_at'),
            int(1).as('rev'),
          ])
          .where('tenant', '=', s.tenant)
          .where('id', '=', s.jobId)
          .where('stage', 'not in', [...TERMINAL_STAGES]),
      )
      .onConflict((oc) => oc.columns(['tenant', 'job_id', 'key']).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (row !== undefined) return { signal: toSignal(row), created: true };
    const raced = await this.signalByKey(s.tenant, s.jobId, s.key);
    if (raced !== null) return { signal: raced, created: false };
    const job = await this.getJob(s.tenant, s.jobId);
    if (job === null) throw new NotFoundError('job', s.jobId);
    throw new IllegalTransitionError(job.stage, 'signal', s.jobId);
  }

  private async signalByKey(tenant: string, jobId: string, key: string): Promise<Signal | null> {
    const row = await this.db
      .selectFrom('signals')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('job_id', '=', jobId)
      .where('key', '=', key)
      .executeTakeFirst();
    return row === undefined ? null : toSignal(row);
  }

  async getSignal(tenant: string, id: string): Promise<Signal | null> {
    const row = await this.db
      .selectFrom('signals')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? null : toSignal(row);
  }

  async listSignals(tenant: string, jobId: string): Promise<Signal[]> {
    const rows = await this.db
      .selectFrom('signals')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('job_id', '=', jobId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toSignal);
  }

  async setSignalStatus(
    tenant: string,
    id: string,
    rev: number,
    status: SignalStatusT,
  ): Promise<Signal> {
    const next = parseInput(SignalStatus, status, 'signal status');
    const current = await this.getSignal(tenant, id);
    if (current === null) throw new NotFoundError('signal', id);
    if (!SIGNAL_NEXT[current.status].includes(next))
      throw new IllegalTransitionError(current.status, `mark signal ${next}`, current.jobId);
    const now = this.now();
    const set: Record<string, unknown> = { status: next };
    if (next === 'delivered') set.delivered_at = now;
    if (next === 'drained') set.drained_at = now;
    return toSignal(await this.updateWithRev('signals', tenant, id, rev, set));
  }

  // --- Schedules ----------------------------------------------------------

  async createSchedule(spec: ScheduleSpecInput): Promise<Schedule> {
    const s = parseInput(ScheduleSpec, spec, 'schedule');
    const now = this.now();
    const row = await this.db
      .insertInto('schedules')
      .values({
        id: newId(),
        tenant: s.tenant,
        name: s.name,
        rule: JSON.stringify(s.rule),
        template: JSON.stringify(s.template),
        paused: s.paused ? 1 : 0,
        allow_overlap: s.allowOverlap ? 1 : 0,
        next_run_at: s.nextRunAt,
        last_run_at: null,
        last_job_id: null,
        rev: 1,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toSchedule(row);
  }

  async getSchedule(tenant: string, id: string): Promise<Schedule | null> {
    const row = await this.db
      .selectFrom('schedules')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    return row === undefined ? null : toSchedule(row);
  }

  async listSchedules(tenant: string): Promise<Schedule[]> {
    const rows = await this.db
      .selectFrom('schedules')
      .selectAll()
      .where('tenant', '=', tenant)
      .orderBy('name')
      .execute();
    return rows.map(toSchedule);
  }

  async listDueSchedules(now: number, limit = 100): Promise<Schedule[]> {
    // Served by the partial index schedules_due (next_run_at WHERE paused = 0).
    const rows = await this.db
      .selectFrom('schedules')
      .selectAll()
      .where('paused', '=', 0)
      .where('next_run_at', '<=', now)
      .orderBy('next_run_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toSchedule);
  }

  async updateSchedule(
    tenant: string,
    id: string,
    rev: number,
    patch: SchedulePatchT,
  ): Promise<Schedule> {
    const p = parseInput(SchedulePatch, patch, 'schedule patch');
    const set: Record<string, unknown> = {};
    if (p.rule !== undefined) set.rule = JSON.stringify(p.rule);
    if (p.template !== undefined) set.template = JSON.stringify(p.template);
    if (p.paused !== undefined) set.paused = p.paused ? 1 : 0;
    if (p.allowOverlap !== undefined) set.allow_overlap = p.allowOverlap ? 1 : 0;
    if (p.nextRunAt !== undefined) set.next_run_at = p.nextRunAt;
    if (p.lastRunAt !== undefined) set.last_run_at = p.lastRunAt;
    if (p.lastJobId !== undefined) set.last_job_id = p.lastJobId;
    return toSchedule(await this.updateWithRev('schedules', tenant, id, rev, set));
  }

  async deleteSchedule(tenant: string, id: string): Promise<void> {
    const res = await this.db
      .deleteFrom('schedules')
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(res.numDeletedRows) !== 1) throw new NotFoundError('schedule', id);
  }

  // --- Tokens -------------------------------------------------------------

  async createToken(
    tenant: string,
    spec: TokenSpecInput,
    secret: { hash: string; prefix: string },
  ): Promise<Token> {
    const s = parseInput(TokenSpec, spec, 'token');
    const row = await this.db
      .insertInto('tokens')
      .values({
        id: newId(),
        tenant,
        name: s.name,
        role: s.role,
        tenants: JSON.stringify(s.tenants),
        job_id: s.jobId,
        hash: secret.hash,
        prefix: secret.prefix,
        created_at: this.now(),
        expires_at: s.expiresAt,
        revoked_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toToken(row);
  }

  async findTokenByHash(hash: string): Promise<Token | null> {
    const now = this.now();
    const row = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('hash', '=', hash)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .executeTakeFirst();
    return row === undefined ? null : toToken(row);
  }

  async listTokens(tenant?: string): Promise<Token[]> {
    let q = this.db.selectFrom('tokens').selectAll();
    if (tenant !== undefined) q = q.where('tenant', '=', tenant);
    const rows = await q.orderBy('created_at').orderBy('id').execute();
    return rows.map(toToken);
  }

  async revokeToken(id: string, tenant?: string): Promise<Token> {
    let q = this.db
      .updateTable('tokens')
      .set({ revoked_at: this.now() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null);
    if (tenant !== undefined) q = q.where('tenant', '=', tenant);
    const row = await q.returningAll().executeTakeFirst();
    if (row !== undefined) return toToken(row);
    let existing = this.db.selectFrom('tokens').selectAll().where('id', '=', id);
    if (tenant !== undefined) existing = existing.where('tenant', '=', tenant);
    const found = await existing.executeTakeFirst();
    if (found === undefined) throw new NotFoundError('token', id);
    return toToken(found); // already revoked: revoking again changes nothing
  }

  // --- Helpers ------------------------------------------------------------

  /**
   * `UPDATE … WHERE rev = expected`, bumping `rev`. On a miss, tells a missing record
   * ({@link NotFoundError}) from a concurrent change ({@link ConflictError}).
   */
  protected async updateWithRev<T extends RevTable>(
    table: T,
    tenant: string,
    id: string,
    rev: number,
    set: Record<string, unknown>,
  ): Promise<Tables[T]> {
    const values: Record<string, unknown> = { ...set, rev: sql`rev + 1` };
    if (table !== 'signals') values.updated_at = this.now();
    // Kysely cannot type a table chosen at run time; the column names above are checked by the
    // callers' patch schemas instead.
    const db = this.db as unknown as Kysely<
      Record<string, { tenant: string; id: string; rev: number }>
    >;
    const name: string = table;
    const row = await db
      .updateTable(name)
      .set(values as never)
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .where('rev', '=', rev)
      .returningAll()
      .executeTakeFirst();
    if (row !== undefined) return row as unknown as Tables[T];
    const current = await db
      .selectFrom(name)
      .select('rev')
      .where('tenant', '=', tenant)
      .where('id', '=', id)
      .executeTakeFirst();
    if (current === undefined) throw new NotFoundError(ENTITY[table], id);
    throw new ConflictError(ENTITY[table], id, rev, Number(current.rev));
  }

  /** Builds the error for a fenced write that matched no live lease. */
  protected async staleLease(ref: FencedRef): Promise<StaleLeaseError | NotFoundError> {
    const row = await this.db
      .selectFrom('jobs')
      .select(['lease_epoch', 'lease_holder'])
      .where('id', '=', ref.jobId)
      .executeTakeFirst();
    if (row === undefined) return new NotFoundError('job', ref.jobId);
    return new StaleLeaseError(
      ref.jobId,
      ref.epoch,
      row.lease_holder === null ? null : Number(row.lease_epoch),
    );
  }
}
