import type { Logger } from 'pino';
import type {
  Artifact,
  BackoffPolicy,
  ArtifactSpecInput,
  Checkpoint,
  EventInput,
  Factory,
  FactoryPatch,
  FactorySpecInput,
  FleetError,
  Insights,
  Job,
  JobEvent,
  JobKind,
  JobPatch,
  JobSpecInput,
  JobStage,
  JsonObject,
  Lease,
  Profile,
  ProfileSpecInput,
  Run,
  RunExit,
  RunResult,
  Schedule,
  SchedulePatch,
  ScheduleSpecInput,
  Signal,
  SignalSpecInput,
  SignalStatus,
  Token,
  TokenSpecInput,
  VerifyResult,
} from '../core/index.js';

/** A reference to a job under a lease: every factory write about a job carries one. */
export interface FencedRef {
  jobId: string;
  epoch: number;
}

export interface EnqueueResult {
  job: Job;
  /** False when an existing job with the same idempotency key was returned instead. */
  created: boolean;
}

export interface ClaimRequest {
  factoryId: string;
  /** Tenants the factory serves. */
  tenants: string[];
  /** The factory's capabilities; a job is claimable when it needs a subset of them. */
  capabilities: string[];
  /** At most this many jobs. */
  limit: number;
  /** Lease time to live; defaults to the store's `leaseTtlMs`. */
  leaseTtlMs?: number;
}

export interface Claimed {
  job: Job;
  run: Run;
  lease: Lease;
}

/** Exactly-once appends: the writer's own numbering of its events. */
export interface AppendOptions {
  /**
   * The writer's number for the batch's first event; the others follow one by one. Numbers
   * are per job and lease epoch, from 1, and batches are sent in order. A batch that overlaps
   * what is stored (sent again after a reconnect) skips the stored prefix; a gap (events the
   * writer dropped) is accepted.
   */
  localSeq?: number;
}

/** Where appended events landed in the job's stream. */
export interface Appended {
  /** Stream seq of the first event stored now; `lastSeq + 1` when every event was a duplicate. */
  firstSeq: number;
  lastSeq: number;
  /** With `localSeq`: events skipped because they were already stored. */
  duplicates?: number;
}

/** Per-item result of a batch verb: one stale lease does not fail its neighbours. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: FleetError };

interface AttemptReport extends FencedRef {
  exit?: RunExit | null;
  verifyResult?: VerifyResult | null;
  insights?: Insights;
  output?: JsonObject | null;
  /** Work in progress to keep for the next attempt. */
  checkpoint?: Checkpoint | null;
}

export type CompleteInput = AttemptReport;

export interface FailInput extends AttemptReport {
  result: Exclude<RunResult, 'success' | 'cancelled' | 'lease_lost'>;
  error: string;
  /** False when trying again cannot help; the job fails at once. Default true. */
  retryable?: boolean;
}

export interface ReapedJob {
  jobId: string;
  tenant: string;
  epoch: number;
  /** Where the job went: back to the queue, or failed when its attempts are spent. */
  stage: Extract<JobStage, 'queued' | 'failed'>;
}

export interface JobQuery {
  stage?: JobStage | JobStage[];
  key?: string;
  lock?: string;
  parentId?: string;
  kind?: JobKind;
  /** Page size, default 100, at most 1000. */
  limit?: number;
  /** Cursor from the previous page's `next`. */
  after?: string;
}

export interface Page<T> {
  items: T[];
  /** Cursor for the next page, or null on the last one. */
  next: string | null;
}

/**
 * The persistence port. Two adapters implement it (SQLite, PostgreSQL) with the same
 * behaviour, checked by one conformance suite. Queue verbs are each one transaction.
 *
 * Reads are tenant-scoped: another tenant's record is `null` / `NotFoundError`, never visible.
 * Fenced writes take a {@link FencedRef} and throw `StaleLeaseError` (changing nothing) when the
 * epoch is not the job's live lease.
 */
export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;

  // Jobs
  enqueue(specs: JobSpecInput[]): Promise<EnqueueResult[]>;
  getJob(tenant: string, id: string): Promise<Job | null>;
  listJobs(tenant: string, query?: JobQuery): Promise<Page<Job>>;
  updateJob(tenant: string, id: string, rev: number, patch: JobPatch): Promise<Job>;
  /** Deletes a finished job with its runs, events and artifacts rows. */
  deleteJob(tenant: string, id: string): Promise<void>;
  countJobs(tenant?: string): Promise<Record<JobStage, number>>;
  /**
   * Job counts by tenant and stage across every tenant (not tenant-scoped: for operators'
   * metrics). Only pairs with at least one job are listed, ordered by tenant then stage.
   */
  countJobsByTenant(): Promise<{ tenant: string; stage: JobStage; count: number }[]>;

  // Queue verbs
  claim(request: ClaimRequest): Promise<Claimed[]>;
  renew(ref: FencedRef, ttlMs?: number): Promise<Lease>;
  renewMany(refs: FencedRef[], ttlMs?: number): Promise<Outcome<Lease>[]>;
  /** claimed → running: the agent process started. */
  markRunning(ref: FencedRef): Promise<Job>;
  /** running → verifying: the agent exited 0 and verify commands run. */
  markVerifying(ref: FencedRef): Promise<Job>;
  saveCheckpoint(ref: FencedRef, checkpoint: Checkpoint): Promise<Job>;
  complete(input: CompleteInput): Promise<Job>;
  completeMany(inputs: CompleteInput[]): Promise<Outcome<Job>[]>;
  fail(input: FailInput): Promise<Job>;
  failMany(inputs: FailInput[]): Promise<Outcome<Job>[]>;
  /** Expired leases: run → `lease_lost`, job → queued with backoff, or failed when spent. */
  reapExpired(now?: number): Promise<ReapedJob[]>;
  cancel(tenant: string, id: string, reason?: string): Promise<Job>;
  /** failed | cancelled → queued, with a fresh set of attempts. */
  retry(tenant: string, id: string): Promise<Job>;
  approve(tenant: string, id: string): Promise<Job>;
  /**
   * Closes a composite job (a plan; never claimed): `succeeded` promotes its dependents, `failed`
   * fails them. `reason` becomes the stage reason (e.g. `gate_failed`), `error` the last error.
   * @throws IllegalTransitionError for a leaf job or a job already finished.
   */
  settle(
    tenant: string,
    id: string,
    outcome: { stage: 'succeeded' | 'failed'; reason?: string | null; error?: string | null },
  ): Promise<Job>;
  /** Composite jobs not finished yet, across every tenant (for the plan controller). */
  openComposites(): Promise<{ tenant: string; id: string }[]>;

  // Runs
  getRun(tenant: string, id: string): Promise<Run | null>;
  listRuns(tenant: string, jobId: string): Promise<Run[]>;

  // Events
  /**
   * Appends events under a lease (fenced). With `options.localSeq`, the append is exactly once:
   * events the writer numbered at or below what is already stored for this job and epoch are
   * skipped as duplicates, in the same transaction.
   */
  appendEvents(ref: FencedRef, events: EventInput[], options?: AppendOptions): Promise<Appended>;
  readEvents(
    tenant: string,
    jobId: string,
    options?: { afterSeq?: number; limit?: number },
  ): Promise<JobEvent[]>;

  // Artifacts
  putArtifact(ref: FencedRef, spec: ArtifactSpecInput, content: Uint8Array): Promise<Artifact>;
  /**
   * Stores an artifact of a composite job (a plan's phase report), written by the control plane
   * rather than under a lease. @throws NotFoundError when `jobId` is not a composite job.
   */
  attachArtifact(
    tenant: string,
    jobId: string,
    spec: ArtifactSpecInput,
    content: Uint8Array,
  ): Promise<Artifact>;
  getArtifact(tenant: string, id: string): Promise<Artifact | null>;
  readArtifact(tenant: string, id: string): Promise<Buffer>;
  listArtifacts(tenant: string, jobId: string): Promise<Artifact[]>;

  // Factories
  registerFactory(spec: FactorySpecInput): Promise<Factory>;
  getFactory(tenant: string, id: string): Promise<Factory | null>;
  listFactories(tenant: string): Promise<Factory[]>;
  updateFactory(tenant: string, id: string, rev: number, patch: FactoryPatch): Promise<Factory>;
  deleteFactory(tenant: string, id: string): Promise<void>;
  /** Online factories and their seats, across every tenant (for metrics). */
  onlineFactorySeats(): Promise<{ online: number; seats: number }>;

  // Profiles (immutable; each create makes the next version)
  createProfile(spec: ProfileSpecInput): Promise<Profile>;
  getProfile(tenant: string, name: string, version?: number): Promise<Profile | null>;
  listProfiles(tenant: string): Promise<Profile[]>;

  // Signals
  sendSignal(spec: SignalSpecInput): Promise<{ signal: Signal; created: boolean }>;
  getSignal(tenant: string, id: string): Promise<Signal | null>;
  listSignals(tenant: string, jobId: string): Promise<Signal[]>;
  setSignalStatus(tenant: string, id: string, rev: number, status: SignalStatus): Promise<Signal>;

  // Schedules
  createSchedule(spec: ScheduleSpecInput): Promise<Schedule>;
  getSchedule(tenant: string, id: string): Promise<Schedule | null>;
  listSchedules(tenant: string): Promise<Schedule[]>;
  /**
   * Schedules due at `now` across every tenant (not tenant-scoped: for the scheduler): not
   * paused, `nextRunAt <= now`, earliest first, at most `limit` (default 100).
   */
  listDueSchedules(now: number, limit?: number): Promise<Schedule[]>;
  updateSchedule(tenant: string, id: string, rev: number, patch: SchedulePatch): Promise<Schedule>;
  deleteSchedule(tenant: string, id: string): Promise<void>;

  // Tokens (the caller makes the secret; the store keeps its hash)
  createToken(
    tenant: string,
    spec: TokenSpecInput,
    secret: { hash: string; prefix: string },
  ): Promise<Token>;
  /** The live token with this hash: not revoked, not expired. Not tenant-scoped: it is the login. */
  findTokenByHash(hash: string): Promise<Token | null>;
  /** Tokens made in a tenant, or every token when `tenant` is undefined. */
  listTokens(tenant?: string): Promise<Token[]>;
  revokeToken(id: string, tenant?: string): Promise<Token>;
}

export interface StoreOptions {
  /** Directory for artifact blobs. */
  blobDir: string;
  /** Milliseconds since the epoch; tests pass a controllable clock. */
  clock?: () => number;
  /** [0, 1); used for retry jitter. */
  random?: () => number;
  leaseTtlMs?: number;
  backoff?: BackoffPolicy;
  /** Structured log for conditions the store survives (a dropped idle connection). */
  logger?: Logger;
}
