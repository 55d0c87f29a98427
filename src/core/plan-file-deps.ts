import type { BuiltJob } from './job-file-build.js';
import type { JobFileProblem } from './job-file-error.js';
import { isJobKey } from './job-file-header.js';

/** A job of a plan and the phase it belongs to. */
export interface PlannedJob {
  job: BuiltJob;
  phase: string;
  phaseIndex: number;
}

interface Target {
  full: string;
  phase: string;
  phaseIndex: number;
}

/**
 * Gives every job of a plan its full key `<plan>/<phase>/<key>` and `manifest.plan`, and
 * rewrites deps that name a job of the plan (by `key`, `<phase>/<key>` or the full key) to the
 * full key. A short key names the job of the same phase, else the only earlier one with it.
 * Deps naming nothing in the plan are left for the server. Returns the problems found:
 * invalid full keys, ambiguous deps, deps on a later phase.
 */
export function rewritePlanDeps(plan: string, jobs: readonly PlannedJob[]): JobFileProblem[] {
  const problems: JobFileProblem[] = [];
  const byName = new Map<string, Target[]>();
  const add = (name: string, target: Target) =>
    byName.set(name, [...(byName.get(name) ?? []), target]);
  for (const { job, phase, phaseIndex } of jobs) {
    const short = job.draft.key ?? '';
    const target = { full: `${plan}/${phase}/${short}`, phase, phaseIndex };
    add(short, target);
    add(`${phase}/${short}`, target);
    add(target.full, target);
  }
  for (const { job, phase, phaseIndex } of jobs) {
    const full = `${plan}/${phase}/${job.draft.key ?? ''}`;
    if (!isJobKey(full))
      problems.push({
        ...job.keyAt,
        message: `the full key '${full}' is not a valid key (at most 200 characters); use a shorter key, phase or plan name`,
      });
    const report = (message: string) => problems.push({ ...job.at('deps'), message });
    job.draft.deps = (job.draft.deps ?? []).map((dep) => {
      const target = resolve(byName.get(dep) ?? [], phaseIndex);
      if (target === null) return dep;
      if (typeof target === 'string')
        report(`'${dep}' is ambiguous: it names ${target}; write <phase>/${dep}`);
      else if (target.phaseIndex > phaseIndex)
        report(
          `'${dep}' is in phase '${target.phase}', which runs after phase '${phase}'; a job can only depend on jobs of its own or an earlier phase`,
        );
      else return target.full;
      return dep;
    });
    job.draft.key = full;
    job.draft.manifest = { ...job.draft.manifest, plan: { name: plan, phase, index: phaseIndex } };
  }
  return problems;
}

/** The job a dep names: same phase first, else the only earlier one; a string when ambiguous. */
function resolve(candidates: Target[], phaseIndex: number): Target | string | null {
  if (candidates.length <= 1) return candidates[0] ?? null;
  const same = candidates.find((c) => c.phaseIndex === phaseIndex);
  if (same !== undefined) return same;
  const earlier = candidates.filter((c) => c.phaseIndex < phaseIndex);
  if (earlier.length === 1) return earlier[0]!;
  return (earlier.length > 0 ? earlier : candidates).map((c) => c.full).join(' and ');
}
