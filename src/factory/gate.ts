import type { GateDecision, RunResult, VerifyResult } from '../core/index.js';
import { diffstat } from './checkpoint.js';
import { git, GitError, gitOk } from './git.js';
import {
  guarded,
  initialOutcome,
  LEASE_LOST,
  messageOf,
  prepareWorkspace,
  type RunJobInput,
  type RunOutcome,
  inheritedEnv,
} from './run-job.js';
import { DEFAULT_GRACE_MS } from './spawn-agent.js';
import { runVerify } from './verify.js';
import {
  branchName,
  createWorktree,
  detachWorktree,
  removeWorktree,
  repoRoot,
  type Workspace,
} from './worktree.js';

/** One check of a gate: a `bash -c` command; a failing `required: false` one only warns. */
export interface GateCheck {
  name: string;
  run: string;
  required: boolean;
}

/** `manifest.gate` of a gate job: the phase it closes, its checks, the job keys to merge. */
export interface GateSpec {
  phase: string;
  checks: GateCheck[];
  merge: string[];
}

export interface GateCheckResult {
  name: string;
  required: boolean;
  /** Null when the command was killed or could not start. */
  exit: number | null;
  passed: boolean;
}

/** What a gate run reports as `output.gate`. */
export interface GateReport {
  phase: string;
  decision: GateDecision;
  checks: GateCheckResult[];
  /** The gate's branch, holding the merged phase; null in place. */
  branch: string | null;
  commit: string | null;
  /** Set when a merge failed: the branch and its conflicting files. */
  conflict?: { branch: string; files: string[] };
}

/** A `manifest.gate` that is not a GateSpec; the message names the field. */
export class GateManifestError extends Error {
  readonly code = 'invalid_gate';
  readonly field: string;
  readonly expected: string;
  constructor(field: string, expected: string, got: unknown) {
    super(`${field} must be ${expected} (got ${describe(got)})`);
    this.name = 'GateManifestError';
    this.field = field;
    this.expected = expected;
  }
}

/**
 * Reads a job's `manifest.gate`: `{phase, checks: [{name, run, required}], merge: [job key]}`.
 *
 * @throws GateManifestError naming the first bad field, e.g. `manifest.gate.checks[1].run`.
 * @example
 * parseGate({ phase: 'build', checks: [{ name: 'test', run: 'npm test', required: true }], merge: ['a'] });
 */
export function parseGate(value: unknown, field = 'manifest.gate'): GateSpec {
  const gate = objectAt(value, field, 'an object {phase, checks, merge}');
  const phase = textAt(gate.phase, `${field}.phase`);
  if (!Array.isArray(gate.checks))
    throw new GateManifestError(`${field}.checks`, 'a list of {name, run, required}', gate.checks);
  const checks = gate.checks.map((item: unknown, i): GateCheck => {
    const at = `${field}.checks[${i}]`;
    const check = objectAt(item, at, 'an object {name, run, required}');
    if (typeof check.required !== 'boolean')
      throw new GateManifestError(`${at}.required`, 'true or false', check.required);
    return {
      name: textAt(check.name, `${at}.name`),
      run: textAt(check.run, `${at}.run`),
      required: check.required,
    };
  });
  if (!Array.isArray(gate.merge))
    throw new GateManifestError(`${field}.merge`, 'a list of job keys', gate.merge);
  const merge = gate.merge.map((key: unknown, i) => textAt(key, `${field}.merge[${i}]`));
  return { phase, checks, merge };
}

/**
 * Runs a gate job (a job whose manifest has `gate`) with no engine:
 *
 * 1. Workspace: a worktree on the gate's own branch (`fleet/<key or id>`) from `job.base` or
 *    the repository's HEAD, never from a checkpoint (the merges are simply made again). A cwd
 *    outside git runs the checks in place with no merge, and the `workspace` event says so.
 * 2. Merges: each `fleet/<key>` of `gate.merge` in order (`git merge --no-ff`, as Fleet, no
 *    hooks), one `merge` event each. A conflict aborts that merge and decides FAIL, naming the
 *    files; a missing branch decides FAIL too.
 * 3. Checks: every one, in order, each through runVerify (same output tail and process-group
 *    handling as verify), with `verify_started` and `verify` events naming the check.
 * 4. A `gate` event `{phase, decision, checks: [{name, required, exit, passed}]}`.
 *
 * PASS and CONDITIONAL succeed: the gate branch (the phase's combined result) is the
 * deliverable `commit`, the worktree is removed. FAIL ends `gate_failed`, not retryable, with
 * `error` naming the failed checks or the conflict; the worktree is kept (HEAD detached).
 * `output.gate` carries the GateReport either way. Nothing is committed beyond the merges.
 *
 * The job's engine, body, `setup` and `verify` are not used: the gate's checks are its verify.
 * `job.timeoutMs` bounds the whole gate; a timeout or an abort ends the run as run-job's would
 * (`timeout`, `cancelled`, `lease_lost`) with no decision. Never rejects.
 */
export async function runGate(input: RunJobInput, gate: GateSpec): Promise<RunOutcome> {
  const { job } = input;
  const onEvent = guarded(input.onEvent);
  const emit = (type: string, data: Record<string, unknown>): void => onEvent({ type, data });
  const deadline = job.timeoutMs == null ? null : Date.now() + job.timeoutMs;
  const outcome = initialOutcome(job.cwd);
  const open = () => openGateWorkspace(input, gate, emit);
  const ws = await prepareWorkspace(open, "the gate's workspace", outcome, emit);
  if (ws === null) return outcome;

  try {
    await decideGate(input, gate, ws, deadline, outcome, emit);
  } catch (error) {
    outcome.result = 'crashed';
    outcome.error = `the gate failed to run: ${messageOf(error)}`;
    emit('error', { message: outcome.error });
  }
  await finishGate(ws, outcome, emit);
  return outcome;
}

type Emit = (type: string, data: Record<string, unknown>) => void;

async function openGateWorkspace(input: RunJobInput, gate: GateSpec, emit: Emit) {
  const { job } = input;
  if ((await repoRoot(job.cwd)) === null) {
    const merging = gate.merge.length > 0 ? `, without merging ${gate.merge.join(', ')}` : '';
    emit('workspace', {
      inPlace: true,
      path: job.cwd,
      reason: `${job.cwd} is not a git repository; the gate runs its checks in place${merging}`,
    });
    return { root: job.cwd, cwd: job.cwd, inPlace: true, repo: null, branch: null, start: null };
  }
  const ws = await createWorktree({
    cwd: job.cwd,
    workRoot: input.workRoot,
    branch: branchName(job.key, job.id),
    base: job.base ?? null,
    label: job.key ?? job.id,
  });
  emit('workspace', {
    inPlace: false,
    path: ws.cwd,
    branch: ws.branch,
    base: ws.start,
    baseRef: job.base ?? 'HEAD',
  });
  return ws;
}

/** Merges, runs the checks and fills `outcome` with the decision (or why there is none). */
async function decideGate(
  input: RunJobInput,
  gate: GateSpec,
  ws: Workspace,
  deadline: number | null,
  outcome: RunOutcome,
  emit: Emit,
): Promise<void> {
  const report: GateReport = {
    phase: gate.phase,
    decision: 'FAIL',
    checks: [],
    branch: ws.branch,
    commit: null,
  };
  const stopped = (): RunResult | null => {
    if (input.signal?.aborted)
      return input.signal.reason === LEASE_LOST ? 'lease_lost' : 'cancelled';
    if (deadline !== null && Date.now() >= deadline) return 'timeout';
    return null;
  };

  if (!ws.inPlace) {
    for (const key of gate.merge) {
      const why = stopped();
      if (why) {
        outcome.result = why;
        return;
      }
      const branch = branchName(key, key);
      const merged = await mergeBranch(ws.root, branch, gate.phase);
      emit('merge', { key, branch, ...merged });
      if (!merged.ok) {
        report.conflict = { branch, files: merged.conflicts };
        report.commit = await headOf(ws);
        conclude(outcome, report, merged.error, emit);
        return;
      }
    }
  }

  const env = { ...inheritedEnv(process.env), ...(input.job.env ?? {}), ...input.env };
  const verify: VerifyResult = { passed: true, commands: [] };
  outcome.verifyResult = verify;
  for (const check of gate.checks) {
    emit('verify_started', { check: check.name, required: check.required, commands: [check.run] });
    const ran = await runVerify([check.run], {
      cwd: ws.cwd,
      env,
      deadline,
      graceMs: input.graceMs ?? DEFAULT_GRACE_MS,
      signal: input.signal,
    });
    emit('verify', { check: check.name, required: check.required, ...ran.result });
    verify.commands.push(...ran.result.commands);
    verify.passed &&= ran.result.passed;
    if (ran.stopped) {
      outcome.result = stopped() ?? (ran.stopped === 'timeout' ? 'timeout' : 'cancelled');
      if (outcome.result === 'timeout')
        outcome.error = `the gate timed out while running check "${check.name}"`;
      return;
    }
    const exit = ran.result.commands[0]?.exit ?? null;
    report.checks.push({ name: check.name, required: check.required, exit, passed: exit === 0 });
  }
  report.decision = decisionOf(report.checks);
  report.commit = await headOf(ws);
  conclude(outcome, report, failedChecks(report.checks), emit);
}

/** Fills `outcome` from a decided gate and emits the `gate` event. */
function conclude(outcome: RunOutcome, report: GateReport, why: string, emit: Emit): void {
  outcome.output = { gate: report };
  outcome.commit = report.commit;
  if (report.decision === 'FAIL') {
    outcome.result = 'gate_failed';
    outcome.retryable = false;
    outcome.error = `gate ${report.phase}: FAIL: ${why}`;
  } else {
    outcome.result = 'success';
  }
  emit('gate', {
    phase: report.phase,
    decision: report.decision,
    checks: report.checks,
    ...(report.conflict ? { conflict: report.conflict } : {}),
  });
}

/**
 * PASS: every check passed. CONDITIONAL: only `required: false` checks failed. FAIL: a required
 * check failed (a failed merge decides FAIL before any check runs).
 */
export function decisionOf(checks: GateCheckResult[]): GateDecision {
  if (checks.some((c) => !c.passed && c.required)) return 'FAIL';
  if (checks.some((c) => !c.passed)) return 'CONDITIONAL';
  return 'PASS';
}

function failedChecks(checks: GateCheckResult[]): string {
  const failed = checks.filter((c) => !c.passed && c.required);
  const list = failed.map((c) => `"${c.name}" (${c.exit === null ? 'killed' : `exit ${c.exit}`})`);
  return `required check${failed.length === 1 ? '' : 's'} failed: ${list.join(', ')}`;
}

type MergeResult = { ok: true; commit: string } | { ok: false; conflicts: string[]; error: string };

/**
 * Merges `branch` into the worktree's HEAD as a merge commit. A conflict is aborted (the
 * worktree is left at its last good merge) and reported with the conflicting files.
 */
async function mergeBranch(root: string, branch: string, phase: string): Promise<MergeResult> {
  if (!(await gitOk(root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`])))
    return {
      ok: false,
      conflicts: [],
      error: `branch ${branch} does not exist: the job that makes it has not succeeded`,
    };
  try {
    await git(root, [
      '-c',
      'commit.gpgsign=false',
      'merge',
      '--no-ff',
      '--no-edit',
      '--no-verify',
      '-m',
      `fleet: gate ${phase}: merge ${branch}`,
      `refs/heads/${branch}`,
    ]);
  } catch (error) {
    if (!(error instanceof GitError)) throw error;
    const conflicts = (await git(root, ['diff', '--name-only', '--diff-filter=U']))
      .split('\n')
      .filter((f) => f !== '');
    // Leave no half-made merge behind; a failed abort means there was no merge in progress.
    await gitOk(root, ['merge', '--abort']);
    return {
      ok: false,
      conflicts,
      error:
        conflicts.length > 0
          ? `merging ${branch} conflicts in ${conflicts.join(', ')} (merge aborted)`
          : `merging ${branch} failed: ${error.stderr.trim()}`,
    };
  }
  return { ok: true, commit: (await git(root, ['rev-parse', 'HEAD'])).trim() };
}

/**
 * Removes the worktree of a passed gate (its branch stays, the deliverable) or keeps a failed
 * one on a detached HEAD, like a failed run.
 */
async function finishGate(ws: Workspace, outcome: RunOutcome, emit: Emit): Promise<void> {
  if (ws.inPlace || ws.repo === null || ws.start === null) return;
  try {
    const commit = await headOf(ws);
    if (commit !== null) Object.assign(outcome.insights, await diffstat(ws.root, ws.start, commit));
    if (outcome.result === 'success') {
      await removeWorktree(ws.repo, ws.root);
      emit('commit', { branch: ws.branch, commit, base: ws.start });
      return;
    }
    await detachWorktree(ws.root);
    emit('worktree_kept', { path: ws.root });
  } catch (error) {
    emit('error', { message: `could not finish the gate's worktree: ${messageOf(error)}` });
    if (outcome.result === 'success') {
      outcome.result = 'crashed';
      outcome.commit = null;
    }
  }
}

async function headOf(ws: Workspace): Promise<string | null> {
  return ws.inPlace ? null : (await git(ws.root, ['rev-parse', 'HEAD'])).trim();
}

function objectAt(value: unknown, field: string, expected: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new GateManifestError(field, expected, value);
  return value as Record<string, unknown>;
}

function textAt(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new GateManifestError(field, 'a non-empty string', value);
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return typeof value === 'string' ? JSON.stringify(value) : `${typeof value} ${String(value)}`;
}
