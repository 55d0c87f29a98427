import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DependencyCycleError,
  InvalidInputError,
  JobSpec,
  UnknownDependencyError,
  externalRefs,
  planBatch,
  type ExistingDep,
  type JobSpecInput,
  type JobStage,
  type PlannedJob,
} from '../../src/core/index.js';

type SpecIn = Partial<JobSpecInput>;

const spec = (s: SpecIn = {}): JobSpec => JobSpec.parse({ tenant: 't', bodyMd: 'do it', ...s });
const specs = (...xs: SpecIn[]): JobSpec[] => xs.map(spec);
const idsFor = (n: number): string[] => Array.from({ length: n }, (_, i) => `id-${i}`);
const existingOf = (...deps: [ref: string, id: string, stage: JobStage][]) =>
  new Map<string, ExistingDep>(deps.map(([ref, id, stage]) => [ref, { id, stage }]));
const NONE = new Map<string, ExistingDep>();

function plan(
  batch: JobSpec[],
  existing: ReadonlyMap<string, ExistingDep> = NONE,
): { list: PlannedJob[]; byIndex: Map<number, PlannedJob> } {
  const list = planBatch(batch, idsFor(batch.length), existing);
  return { list, byIndex: new Map(list.map((p) => [p.index, p])) };
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to throw');
}

/** Asserts each job comes after all of its dependencies (by id). */
function expectTopological(list: PlannedJob[]): void {
  const pos = new Map(list.map((p, i) => [p.id, i]));
  list.forEach((p, i) => {
    for (const dep of p.deps) {
      const at = pos.get(dep);
      if (at !== undefined) expect(at).toBeLessThan(i);
    }
  });
}

describe('externalRefs', () => {
  it('lists deps that are not keys in the batch, once each, in first-seen order', () => {
    const batch = specs(
      { key: 'a', deps: ['x', 'b'] },
      { key: 'b', deps: ['y', 'x'] },
      { deps: ['a', 'z', 'y'] },
    );
    expect(externalRefs(batch)).toEqual(['x', 'y', 'z']);
  });

  it('is empty when every dep is in the batch or there are none', () => {
    expect(externalRefs(specs({ key: 'a' }, { key: 'b', deps: ['a'] }))).toEqual([]);
    expect(externalRefs([])).toEqual([]);
  });
});

describe('planBatch: stages', () => {
  it('a job without deps is queued with no reason', () => {
    const { list } = plan(specs({}));
    expect(list).toEqual([
      { index: 0, id: 'id-0', deps: [], parentId: null, stage: 'queued', stageReason: null },
    ]);
  });

  it('a job needing approval starts blocked even without deps', () => {
    const { list } = plan(specs({ requiresApproval: true }));
    expect(list[0]).toMatchObject({ stage: 'blocked', stageReason: null, deps: [] });
  });

  it('a job depending on another in the batch (by key) is blocked on its id', () => {
    const { byIndex } = plan(specs({ key: 'b', deps: ['a'] }, { key: 'a' }));
    expect(byIndex.get(0)).toEqual({
      index: 0,
      id: 'id-0',
      deps: ['id-1'],
      parentId: null,
      stage: 'blocked',
      stageReason: null,
    });
    expect(byIndex.get(1)).toMatchObject({ stage: 'queued', deps: [] });
  });

  it('resolves deps on existing jobs to their ids', () => {
    const existing = existingOf(['done-key', 'J1', 'succeeded'], ['J2', 'J2', 'succeeded']);
    const { list } = plan(specs({ deps: ['done-key', 'J2'] }), existing);
    expect(list[0]).toEqual({
      index: 0,
      id: 'id-0',
      deps: ['J1', 'J2'],
      parentId: null,
      stage: 'queued',
      stageReason: null,
    });
  });

  it('resolves a parent named by key in the batch to its id, and orders it first', () => {
    const { list } = plan(
      specs(
        { key: 'plan/a', parentId: 'plan' },
        { key: 'plan', kind: 'composite' },
        {
          parentId: 'STORED',
        },
      ),
    );
    expect(list.map((p) => p.index)).toEqual([1, 0, 2]);
    expect(list[1]).toMatchObject({ index: 0, parentId: 'id-1', deps: [] });
    expect(list[2]).toMatchObject({ index: 2, parentId: 'STORED' });
  });

  it('all existing deps succeeded but approval required -> blocked', () => {
    const existing = existingOf(['a', 'A', 'succeeded']);
    const { list } = plan(specs({ deps: ['a'], requiresApproval: true }), existing);
    expect(list[0]).toMatchObject({ stage: 'blocked', stageReason: null, deps: ['A'] });
  });

  it.each<[JobStage, 'queued' | 'blocked' | 'failed']>([
    ['succeeded', 'queued'],
    ['blocked', 'blocked'],
    ['queued', 'blocked'],
    ['claimed', 'blocked'],
    ['running', 'blocked'],
    ['verifying', 'blocked'],
    ['failed', 'failed'],
    ['cancelled', 'failed'],
  ])('existing dep %s -> job starts %s', (depStage, expected) => {
    const { list } = plan(specs({ deps: ['e'] }), existingOf(['e', 'E', depStage]));
    expect(list[0]!.stage).toBe(expected);
    expect(list[0]!.stageReason).toBe(expected === 'failed' ? 'dep_failed' : null);
    expect(list[0]!.deps).toEqual(['E']);
  });

  it('a failed dep wins over approval and over other succeeded deps', () => {
    const existing = existingOf(['ok', 'OK', 'succeeded'], ['bad', 'BAD', 'failed']);
    const { list } = plan(specs({ deps: ['ok', 'bad'], requiresApproval: true }), existing);
    expect(list[0]).toMatchObject({ stage: 'failed', stageReason: 'dep_failed' });
    expect(list[0]!.deps).toEqual(['OK', 'BAD']);
  });

  it('a failed existing dep cascades to in-batch dependents, transitively', () => {
    const existing = existingOf(['gone', 'G', 'cancelled']);
    const batch = specs(
      { key: 'c', deps: ['b'] },
      { key: 'b', deps: ['a'] },
      { key: 'a', deps: ['gone'] },
      { key: 'side' },
      { key: 'd', deps: ['side'] },
    );
    const { byIndex } = plan(batch, existing);
    for (const i of [0, 1, 2]) {
      expect(byIndex.get(i)).toMatchObject({ stage: 'failed', stageReason: 'dep_failed' });
    }
    expect(byIndex.get(3)).toMatchObject({ stage: 'queued', stageReason: null });
    expect(byIndex.get(4)).toMatchObject({ stage: 'blocked', stageReason: null });
  });

  it('a running existing dep blocks; an in-batch dep blocks even if it is queued', () => {
    const existing = existingOf(['r', 'R', 'running']);
    const batch = specs({ key: 'x', deps: ['r'] }, { key: 'y' }, { deps: ['y'] });
    const { byIndex } = plan(batch, existing);
    expect(byIndex.get(0)!.stage).toBe('blocked');
    expect(byIndex.get(1)!.stage).toBe('queued');
    expect(byIndex.get(2)!.stage).toBe('blocked');
  });

  it('a batch key shadows an existing job with the same ref', () => {
    const existing = existingOf(['a', 'OLD', 'failed']);
    const batch = specs({ key: 'a' }, { deps: ['a'] });
    const { byIndex } = plan(batch, existing);
    expect(byIndex.get(1)).toMatchObject({ deps: ['id-0'], stage: 'blocked', stageReason: null });
    expect(externalRefs(batch)).toEqual([]);
  });
});

describe('planBatch: dep references', () => {
  it('deduplicates repeated dep refs', () => {
    const batch = specs({ key: 'a' }, { deps: ['a', 'a', 'E', 'E'] });
    const { byIndex } = plan(batch, existingOf(['E', 'E', 'succeeded']));
    expect(byIndex.get(1)!.deps).toEqual(['id-0', 'E']);
  });

  it('deduplicates two refs (key and id) that resolve to the same existing job', () => {
    const existing = existingOf(['old-key', 'OLD', 'succeeded'], ['OLD', 'OLD', 'succeeded']);
    const { list } = plan(specs({ deps: ['old-key', 'OLD'] }), existing);
    expect(list[0]!.deps).toEqual(['OLD']);
    expect(list[0]!.stage).toBe('queued');
  });

  it('unknown dep -> UnknownDependencyError naming the job (by key) and the dep', () => {
    const err = catchError(() =>
      plan(
        specs({ key: 'a' }, { key: 'b', deps: ['a', 'nope'] }),
        existingOf(['x', 'X', 'failed']),
      ),
    );
    expect(err).toBeInstanceOf(UnknownDependencyError);
    const e = err as UnknownDependencyError;
    expect(e.code).toBe('unknown_dependency');
    expect(e.jobRef).toBe('b');
    expect(e.dependency).toBe('nope');
    expect(e.message).toContain('job b depends on "nope"');
  });

  it('unknown dep of a job without key names it by batch index', () => {
    const err = catchError(() => plan(specs({}, {}, { deps: ['ghost'] })));
    expect(err).toBeInstanceOf(UnknownDependencyError);
    expect((err as UnknownDependencyError).jobRef).toBe('#2');
    expect((err as UnknownDependencyError).dependency).toBe('ghost');
  });

  it('deps cannot name in-batch jobs by their (generated) ids', () => {
    const err = catchError(() => plan(specs({}, { deps: ['id-0'] })));
    expect(err).toBeInstanceOf(UnknownDependencyError);
  });
});

describe('planBatch: cycles', () => {
  it('a self-dependency is a cycle', () => {
    const err = catchError(() => plan(specs({ key: 'a', deps: ['a'] })));
    expect(err).toBeInstanceOf(DependencyCycleError);
    expect((err as DependencyCycleError).cycle).toEqual(['a', 'a']);
    expect((err as DependencyCycleError).code).toBe('dependency_cycle');
  });

  it('reports the cycle path, closing on its first job', () => {
    const err = catchError(() =>
      plan(specs({ key: 'a', deps: ['b'] }, { key: 'b', deps: ['c'] }, { key: 'c', deps: ['a'] })),
    );
    expect(err).toBeInstanceOf(DependencyCycleError);
    const e = err as DependencyCycleError;
    expect(e.cycle).toEqual(['a', 'b', 'c', 'a']);
    expect(e.message).toBe('dependency cycle: a -> b -> c -> a');
  });

  it('the path contains only the cycle, not the jobs leading into it', () => {
    const err = catchError(() =>
      plan(
        specs(
          { key: 'entry', deps: ['x'] },
          { key: 'x', deps: ['y'] },
          { key: 'y', deps: ['z'] },
          { key: 'z', deps: ['y'] },
        ),
      ),
    );
    expect((err as DependencyCycleError).cycle).toEqual(['y', 'z', 'y']);
  });

  it('every consecutive pair in a reported cycle is a real dependency edge', () => {
    const batch = specs(
      { key: 'p', deps: ['q', 'r'] },
      { key: 'q', deps: ['s'] },
      { key: 'r', deps: ['s'] },
      { key: 's', deps: ['t'] },
      { key: 't', deps: ['r'] },
    );
    const err = catchError(() => plan(batch)) as DependencyCycleError;
    expect(err).toBeInstanceOf(DependencyCycleError);
    const depsOf = new Map(batch.map((s) => [s.key, s.deps]));
    expect(err.cycle[0]).toBe(err.cycle.at(-1));
    for (let i = 0; i + 1 < err.cycle.length; i++) {
      expect(depsOf.get(err.cycle[i]!)).toContain(err.cycle[i + 1]);
    }
  });
});

describe('planBatch: duplicate keys', () => {
  it('rejects duplicate keys with InvalidInputError at path N.key', () => {
    const err = catchError(() =>
      plan(specs({ key: 'a' }, { key: 'b' }, { key: 'a' }, { key: 'b' }, { key: 'a' })),
    );
    expect(err).toBeInstanceOf(InvalidInputError);
    const e = err as InvalidInputError;
    expect(e.code).toBe('invalid_input');
    expect(e.issues.map((i) => i.path)).toEqual(['2.key', '3.key', '4.key']);
    expect(e.issues[0]!.message).toBe('duplicate key "a" (also job 0)');
    expect(e.issues[1]!.message).toBe('duplicate key "b" (also job 1)');
    expect(e.message).toContain('invalid job batch: 2.key: duplicate key "a"');
  });

  it('jobs without keys never collide', () => {
    const { list } = plan(specs({}, {}, {}));
    expect(list.map((p) => p.index)).toEqual([0, 1, 2]);
  });

  it('checks duplicates before resolving deps', () => {
    const err = catchError(() => plan(specs({ key: 'a', deps: ['ghost'] }, { key: 'a' })));
    expect(err).toBeInstanceOf(InvalidInputError);
  });
});

describe('planBatch: order', () => {
  it('returns every job once, each after its deps', () => {
    const batch = specs(
      { key: 'd', deps: ['b', 'c'] },
      { key: 'c', deps: ['a'] },
      { key: 'b', deps: ['a'] },
      { key: 'a' },
      { key: 'lonely' },
    );
    const { list } = plan(batch);
    expect(list.map((p) => p.index).sort()).toEqual([0, 1, 2, 3, 4]);
    const at = (key: string) => list.findIndex((p) => batch[p.index]!.key === key);
    expect(at('a')).toBeLessThan(at('b'));
    expect(at('a')).toBeLessThan(at('c'));
    expect(at('b')).toBeLessThan(at('d'));
    expect(at('c')).toBeLessThan(at('d'));
    expectTopological(list);
    // ids stay tied to their batch index.
    for (const p of list) expect(p.id).toBe(`id-${p.index}`);
  });

  it('keeps batch order for independent jobs', () => {
    const { list } = plan(specs({ key: 'x' }, { key: 'y' }, { key: 'z' }));
    expect(list.map((p) => p.index)).toEqual([0, 1, 2]);
  });

  it('handles a 10,000-job chain (the maximum batch) without overflowing the stack', () => {
    const n = 10_000;
    // Job i depends on job i+1: the worst case for a depth-first walk.
    const batch = Array.from({ length: n }, (_, i) =>
      spec({ key: `k${i}`, deps: i === n - 1 ? [] : [`k${i + 1}`] }),
    );
    const list = planBatch(batch, idsFor(n), NONE);
    expect(list).toHaveLength(n);
    expect(list[0]).toMatchObject({ index: n - 1, stage: 'queued' });
    expect(list[n - 1]).toMatchObject({ index: 0, stage: 'blocked', deps: ['id-1'] });
    expectTopological(list);
  });

  it('finds a cycle at the end of a long chain', () => {
    const n = 10_000;
    const batch = Array.from({ length: n }, (_, i) =>
      spec({ key: `k${i}`, deps: [`k${(i + 1) % n}`] }),
    );
    const err = catchError(() => planBatch(batch, idsFor(n), NONE));
    expect(err).toBeInstanceOf(DependencyCycleError);
    expect((err as DependencyCycleError).cycle).toHaveLength(n + 1);
  });

  it('returns an empty plan for an empty batch', () => {
    expect(planBatch([], [], NONE)).toEqual([]);
  });
});

describe('planBatch: properties', () => {
  /**
   * A random DAG of n jobs: node r may depend only on nodes of lower rank, which keeps it
   * acyclic. Nodes are placed in the batch in a random order (so the batch is not already
   * sorted), and some deps point at existing jobs with random stages.
   */
  const EXISTING_STAGES: JobStage[] = ['succeeded', 'running', 'queued', 'failed', 'cancelled'];
  const dagArb = fc.integer({ min: 1, max: 25 }).chain((n) =>
    fc.record({
      n: fc.constant(n),
      deps: fc.tuple(
        ...Array.from({ length: n }, (_, r) =>
          fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, r - 1) }), {
            maxLength: r === 0 ? 0 : Math.min(r, 4),
          }),
        ),
      ),
      externals: fc.array(
        fc.tuple(fc.integer({ min: 0, max: n - 1 }), fc.constantFrom(...EXISTING_STAGES)),
        { maxLength: 6 },
      ),
      approval: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      placement: fc.shuffledSubarray(
        Array.from({ length: n }, (_, i) => i),
        { minLength: n, maxLength: n },
      ),
    }),
  );

  it('random DAGs: every job appears once, after its deps, with the right stage', () => {
    fc.assert(
      fc.property(dagArb, ({ n, deps, externals, approval, placement }) => {
        // placement[p] = rank of the node at batch position p
        const posOfRank = new Map(placement.map((rank, pos) => [rank, pos]));
        const existing = new Map<string, ExistingDep>();
        const extDeps = new Map<number, string[]>();
        externals.forEach(([rank, stage], e) => {
          existing.set(`ext${e}`, { id: `EXT${e}`, stage });
          extDeps.set(rank, [...(extDeps.get(rank) ?? []), `ext${e}`]);
        });
        const batch = placement.map((rank) =>
          spec({
            key: `n${rank}`,
            deps: [...deps[rank]!.map((d) => `n${d}`), ...(extDeps.get(rank) ?? [])],
            requiresApproval: approval[rank]!,
          }),
        );
        const list = planBatch(batch, idsFor(n), existing);

        expect(list).toHaveLength(n);
        expect(new Set(list.map((p) => p.index)).size).toBe(n);
        expectTopological(list);

        // Independent model of the stage: failed iff some dep, transitively through the batch,
        // is a failed/cancelled existing job; queued iff no in-batch deps, all existing deps
        // succeeded and no approval needed; blocked otherwise.
        const doomed = new Map<number, boolean>();
        const isDoomed = (rank: number): boolean => {
          const known = doomed.get(rank);
          if (known !== undefined) return known;
          const v =
            (extDeps.get(rank) ?? []).some((ref) => {
              const s = existing.get(ref)!.stage;
              return s === 'failed' || s === 'cancelled';
            }) || deps[rank]!.some(isDoomed);
          doomed.set(rank, v);
          return v;
        };
        for (const p of list) {
          const rank = placement[p.index]!;
          const expectedDeps = [
            ...new Set([
              ...deps[rank]!.map((d) => `id-${posOfRank.get(d)!}`),
              ...(extDeps.get(rank) ?? []).map((ref) => existing.get(ref)!.id),
            ]),
          ];
          expect(p.id).toBe(`id-${p.index}`);
          expect(p.deps).toEqual(expectedDeps);
          const allExternalSucceeded = (extDeps.get(rank) ?? []).every(
            (ref) => existing.get(ref)!.stage === 'succeeded',
          );
          const expected = isDoomed(rank)
            ? 'failed'
            : deps[rank]!.length === 0 && allExternalSucceeded && !approval[rank]
              ? 'queued'
              : 'blocked';
          expect(p.stage).toBe(expected);
          expect(p.stageReason).toBe(expected === 'failed' ? 'dep_failed' : null);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('adding a back edge to a random chain always yields a DependencyCycleError', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 30 })
          .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
        ([n, back]) => {
          // k0 <- k1 <- ... <- k(n-1), and k(back) depends on k(n-1).
          const batch = Array.from({ length: n }, (_, i) =>
            spec({
              key: `k${i}`,
              deps: [...(i > 0 ? [`k${i - 1}`] : []), ...(i === back ? [`k${n - 1}`] : [])],
            }),
          );
          const err = catchError(() => planBatch(batch, idsFor(n), NONE));
          expect(err).toBeInstanceOf(DependencyCycleError);
          const cycle = (err as DependencyCycleError).cycle;
          expect(cycle[0]).toBe(cycle.at(-1));
          expect(new Set(cycle).size).toBe(n - back);
        },
      ),
    );
  });
});
