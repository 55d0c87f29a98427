/**
 * Fleet's error classes. Few of them, each with a stable `code` that the server maps to an
 * HTTP status and the CLI to a message. Every class carries typed fields so callers can act
 * on them without parsing messages.
 */
export type FleetErrorCode =
  | 'stale_lease'
  | 'conflict'
  | 'not_found'
  | 'illegal_transition'
  | 'invalid_input'
  | 'unknown_dependency'
  | 'dependency_cycle'
  | 'internal';

export abstract class FleetError extends Error {
  abstract readonly code: FleetErrorCode;
}

/** A write carried a lease epoch that is no longer the job's live lease. Nothing was changed. */
export class StaleLeaseError extends FleetError {
  readonly code = 'stale_lease';
  readonly jobId: string;
  readonly heldEpoch: number;
  /** The job's current epoch, or null when the job holds no live lease any more. */
  readonly currentEpoch: number | null;

  constructor(jobId: string, heldEpoch: number, currentEpoch: number | null) {
    super(
      `stale lease on job ${jobId}: write carried epoch ${heldEpoch}, ` +
        (currentEpoch === null
          ? 'but the job holds no live lease'
          : `but the live lease has epoch ${currentEpoch}`),
    );
    this.name = 'StaleLeaseError';
    this.jobId = jobId;
    this.heldEpoch = heldEpoch;
    this.currentEpoch = currentEpoch;
  }
}

/** Optimistic concurrency: the record changed since the caller read it. */
export class ConflictError extends FleetError {
  readonly code = 'conflict';
  readonly entity: string;
  readonly id: string;
  readonly expectedRev: number;
  readonly actualRev: number;

  constructor(entity: string, id: string, expectedRev: number, actualRev: number) {
    super(
      `${entity} ${id} was changed concurrently: expected rev ${expectedRev}, found ${actualRev}`,
    );
    this.name = 'ConflictError';
    this.entity = entity;
    this.id = id;
    this.expectedRev = expectedRev;
    this.actualRev = actualRev;
  }
}

export class NotFoundError extends FleetError {
  readonly code = 'not_found';
  readonly entity: string;
  readonly id: string;

  constructor(entity: string, id: string) {
    super(`${entity} ${id} not found`);
    this.name = 'NotFoundError';
    this.entity = entity;
    this.id = id;
  }
}

export class IllegalTransitionError extends FleetError {
  readonly code = 'illegal_transition';
  readonly from: string;
  readonly action: string;
  readonly jobId: string | undefined;

  constructor(from: string, action: string, jobId?: string, detail?: string) {
    super(
      `cannot ${action} a job in stage ${from}` +
        (jobId === undefined ? '' : ` (job ${jobId})`) +
        (detail === undefined ? '' : `: ${detail}`),
    );
    this.name = 'IllegalTransitionError';
    this.from = from;
    this.action = action;
    this.jobId = jobId;
  }
}

export interface InputIssue {
  /** Dotted path of the offending field, e.g. `jobs.2.timeoutMs`; empty for the whole input. */
  path: string;
  message: string;
}

/** Input failed validation. `issues` names every offending field and what was expected. */
export class InvalidInputError extends FleetError {
  readonly code = 'invalid_input';
  readonly issues: InputIssue[];

  constructor(what: string, issues: InputIssue[]) {
    super(
      `invalid ${what}: ` +
        issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('; '),
    );
    this.name = 'InvalidInputError';
    this.issues = issues;
  }
}

/** A job named a dependency that is neither in its batch nor stored for its tenant. */
export class UnknownDependencyError extends FleetError {
  readonly code = 'unknown_dependency';
  readonly jobRef: string;
  readonly dependency: string;

  constructor(jobRef: string, dependency: string) {
    super(
      `job ${jobRef} depends on "${dependency}", which is neither a job key or id in the same ` +
        `batch nor an existing job of this tenant`,
    );
    this.name = 'UnknownDependencyError';
    this.jobRef = jobRef;
    this.dependency = dependency;
  }
}

export class DependencyCycleError extends FleetError {
  readonly code = 'dependency_cycle';
  readonly cycle: string[];

  constructor(cycle: string[]) {
    super(`dependency cycle: ${cycle.join(' -> ')}`);
    this.name = 'DependencyCycleError';
    this.cycle = cycle;
  }
}

export class InternalError extends FleetError {
  readonly code = 'internal';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InternalError';
  }
}

/** Turns anything thrown into an Error, so every catch site can log and rethrow uniformly. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  return new InternalError(`non-error thrown: ${safeStringify(thrown)}`, { cause: thrown });
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
