import { describe, expect, it } from 'vitest';
import {
  ConflictError,
  DependencyCycleError,
  FleetError,
  IllegalTransitionError,
  InternalError,
  InvalidInputError,
  NotFoundError,
  StaleLeaseError,
  UnknownDependencyError,
  coerceError,
} from '../../src/core/index.js';

describe('StaleLeaseError', () => {
  it('carries job, held and current epoch', () => {
    const e = new StaleLeaseError('job-1', 3, 4);
    expect(e).toBeInstanceOf(FleetError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('stale_lease');
    expect(e.name).toBe('StaleLeaseError');
    expect(e.jobId).toBe('job-1');
    expect(e.heldEpoch).toBe(3);
    expect(e.currentEpoch).toBe(4);
    expect(e.message).toBe(
      'stale lease on job job-1: write carried epoch 3, but the live lease has epoch 4',
    );
  });

  it('says so when the job holds no live lease', () => {
    const e = new StaleLeaseError('job-2', 7, null);
    expect(e.currentEpoch).toBeNull();
    expect(e.message).toBe(
      'stale lease on job job-2: write carried epoch 7, but the job holds no live lease',
    );
  });

  it('distinguishes epoch 0 from no lease', () => {
    expect(new StaleLeaseError('j', 1, 0).message).toContain('live lease has epoch 0');
  });
});

describe('error classes', () => {
  it.each([
    [
      new ConflictError('job', 'j1', 2, 5),
      'conflict',
      'ConflictError',
      'job j1 was changed concurrently: expected rev 2, found 5',
    ],
    [new NotFoundError('job', 'j9'), 'not_found', 'NotFoundError', 'job j9 not found'],
    [
      new IllegalTransitionError('running', 'claim', 'j3', 'already leased'),
      'illegal_transition',
      'IllegalTransitionError',
      'cannot claim a job in stage running (job j3): already leased',
    ],
    [
      new InvalidInputError('job', [{ path: '', message: 'expected object' }]),
      'invalid_input',
      'InvalidInputError',
      'invalid job: expected object',
    ],
    [
      new UnknownDependencyError('b', 'a'),
      'unknown_dependency',
      'UnknownDependencyError',
      'job b depends on "a", which is neither a job key or id in the same batch nor an existing job of this tenant',
    ],
    [
      new DependencyCycleError(['a', 'b', 'a']),
      'dependency_cycle',
      'DependencyCycleError',
      'dependency cycle: a -> b -> a',
    ],
    [new InternalError('boom'), 'internal', 'InternalError', 'boom'],
  ])('%s has code %s, name %s and message', (err, code, name, message) => {
    expect(err).toBeInstanceOf(FleetError);
    expect(err.code).toBe(code);
    expect(err.name).toBe(name);
    expect(err.message).toBe(message);
    expect(String(err)).toBe(`${name}: ${message}`);
  });

  it('ConflictError and NotFoundError expose their fields', () => {
    const c = new ConflictError('schedule', 's1', 1, 2);
    expect([c.entity, c.id, c.expectedRev, c.actualRev]).toEqual(['schedule', 's1', 1, 2]);
    const n = new NotFoundError('profile', 'p1');
    expect([n.entity, n.id]).toEqual(['profile', 'p1']);
  });

  it('InvalidInputError joins issues, prefixing non-empty paths', () => {
    const e = new InvalidInputError('job batch', [
      { path: '0.priority', message: 'too big' },
      { path: '', message: 'too many jobs' },
      { path: '3.key', message: 'duplicate' },
    ]);
    expect(e.message).toBe(
      'invalid job batch: 0.priority: too big; too many jobs; 3.key: duplicate',
    );
    expect(e.issues).toHaveLength(3);
  });

  it('InternalError keeps its cause', () => {
    const cause = new Error('root');
    expect(new InternalError('wrapped', { cause }).cause).toBe(cause);
  });
});

describe('coerceError', () => {
  it('returns an Error unchanged (same instance, subclasses too)', () => {
    const plain = new Error('x');
    expect(coerceError(plain)).toBe(plain);
    const typed = new TypeError('t');
    expect(coerceError(typed)).toBe(typed);
    const fleet = new NotFoundError('job', 'j');
    expect(coerceError(fleet)).toBe(fleet);
  });

  it('wraps a string as an Error with that message', () => {
    const e = coerceError('disk full');
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(FleetError);
    expect(e.message).toBe('disk full');
  });

  it('wraps an object as an InternalError with its JSON and the original as cause', () => {
    const thrown = { code: 42, reason: 'nope' };
    const e = coerceError(thrown);
    expect(e).toBeInstanceOf(InternalError);
    expect((e as InternalError).code).toBe('internal');
    expect(e.message).toBe('non-error thrown: {"code":42,"reason":"nope"}');
    expect(e.cause).toBe(thrown);
  });

  it.each<[unknown, string]>([
    [42, 'non-error thrown: 42'],
    [null, 'non-error thrown: null'],
    [undefined, 'non-error thrown: undefined'],
    [true, 'non-error thrown: true'],
    [[1, 'a'], 'non-error thrown: [1,"a"]'],
    [10n, 'non-error thrown: 10'],
    [Symbol('s'), 'non-error thrown: Symbol(s)'],
  ])('wraps %s without throwing', (thrown, message) => {
    const e = coerceError(thrown);
    expect(e).toBeInstanceOf(InternalError);
    expect(e.message).toBe(message);
    expect(e.cause).toBe(thrown);
  });

  it('survives values JSON cannot encode (circular objects)', () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const e = coerceError(circular);
    expect(e).toBeInstanceOf(InternalError);
    expect(e.message).toBe('non-error thrown: [object Object]');
    expect(e.cause).toBe(circular);
  });
});
