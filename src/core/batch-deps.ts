import { DependencyCycleError, InvalidInputError, UnknownDependencyError } from './errors.js';
import type { JobSpec, JobStage } from './schemas/job.js';

/** A stored job a batch may depend on. */
export interface ExistingDep {
  id: string;
  stage: JobStage;
}

export interface PlannedJob {
  /** Index into the batch as given. */
  index: number;
  id: string;
  deps: string[];
  /** The parent's id: `spec.parentId` as given, or the id of the batch job it names by key. */
  parentId: string | null;
  stage: Extract<JobStage, 'blocked' | 'queued' | 'failed'>;
  stageReason: string | null;
}

/** Dependency references of a batch that do not name a job in the batch itself. */
export function externalRefs(specs: readonly JobSpec[]): string[] {
  const keys = new Set(specs.map((s) => s.key).filter((k): k is string => k !== null));
  const refs = new Set<string>();
  for (const spec of specs) for (const dep of spec.deps) if (!keys.has(dep)) refs.add(dep);
  return [...refs];
}

/**
 * Resolves the `deps` of a batch to job ids and computes each job's first stage.
 *
 * A dependency names a job of the batch by key, or a stored job (by id or key) found in
 * `existing`. Jobs come back in dependency order (a job after everything it depends on), so
 * inserting them in that order never references a missing row. A `parentId` may also name a job
 * of the batch by key (a plan and its jobs go in one batch); the parent comes first. A job whose dependency already
 * failed or was cancelled starts `failed` with reason `dep_failed`; one whose dependencies all
 * succeeded starts `queued` unless it needs approval; anything else starts `blocked`.
 */
export function planBatch(
  specs: readonly JobSpec[],
  ids: readonly string[],
  existing: ReadonlyMap<string, ExistingDep>,
  /** Where each spec stood in the caller's batch, for error paths; default: its index here. */
  positions: readonly number[] = specs.map((_, i) => i),
): PlannedJob[] {
  const at = (i: number) => positions[i] ?? i;
  const byKey = new Map<string, number>();
  const issues: { path: string; message: string }[] = [];
  specs.forEach((spec, i) => {
    if (spec.key === null) return;
    const first = byKey.get(spec.key);
    if (first !== undefined) {
      issues.push({
        path: `${at(i)}.key`,
        message: `duplicate key "${spec.key}" (also job ${at(first)})`,
      });
    } else byKey.set(spec.key, i);
  });
  if (issues.length > 0) throw new InvalidInputError('job batch', issues);

  const ref = (i: number) => specs[i]?.key ?? `#${at(i)}`;
  const parentIndex = (spec: JobSpec) =>
    spec.parentId === null ? undefined : byKey.get(spec.parentId);
  // Edges inside the batch, by index: dependencies, and the parent (inserted before its child).
  const inner = specs.map((spec, i) => {
    const edges = spec.deps.flatMap((dep) => {
      const j = byKey.get(dep);
      if (j !== undefined) return [j];
      if (!existing.has(dep)) throw new UnknownDependencyError(ref(i), dep);
      return [];
    });
    const parent = parentIndex(spec);
    return parent === undefined ? edges : [...edges, parent];
  });

  const order = topologicalOrder(inner, ref);
  const planned = new Map<number, PlannedJob>();
  for (const i of order) {
    const spec = specs[i]!;
    const depIds: string[] = [];
    let anyFailed = false;
    let allSucceeded = true;
    for (const dep of spec.deps) {
      const j = byKey.get(dep);
      if (j !== undefined) {
        const p = planned.get(j)!;
        depIds.push(p.id);
        allSucceeded = false;
        if (p.stage === 'failed') anyFailed = true;
      } else {
        const e = existing.get(dep)!;
        depIds.push(e.id);
        if (e.stage === 'failed' || e.stage === 'cancelled') anyFailed = true;
        if (e.stage !== 'succeeded') allSucceeded = false;
      }
    }
    const stage = anyFailed
      ? 'failed'
      : allSucceeded && !spec.requiresApproval
        ? 'queued'
        : 'blocked';
    const parent = parentIndex(spec);
    planned.set(i, {
      index: i,
      id: ids[i]!,
      deps: [...new Set(depIds)],
      parentId: parent === undefined ? spec.parentId : ids[parent]!,
      stage,
      stageReason: anyFailed ? 'dep_failed' : null,
    });
  }
  return order.map((i) => planned.get(i)!);
}

/**
 * Depth-first post-order over `edges` (a job after its deps). Iterative, so a long dependency
 * chain in a full batch cannot overflow the call stack.
 */
function topologicalOrder(edges: number[][], ref: (i: number) => string): number[] {
  const state = new Array<0 | 1 | 2>(edges.length).fill(0);
  const order: number[] = [];
  // The current DFS path, and for each node on it the index of the next edge to follow.
  const stack: number[] = [];
  const next: number[] = [];
  for (let root = 0; root < edges.length; root++) {
    if (state[root] !== 0) continue;
    state[root] = 1;
    stack.push(root);
    next.push(0);
    while (stack.length > 0) {
      const top = stack.length - 1;
      const i = stack[top]!;
      const out = edges[i]!;
      const k = next[top]!;
      if (k < out.length) {
        next[top] = k + 1;
        const j = out[k]!;
        if (state[j] === 1) {
          throw new DependencyCycleError([...stack.slice(stack.indexOf(j)), j].map(ref));
        }
        if (state[j] === 0) {
          state[j] = 1;
          stack.push(j);
          next.push(0);
        }
      } else {
        stack.pop();
        next.pop();
        state[i] = 2;
        order.push(i);
      }
    }
  }
  return order;
}
