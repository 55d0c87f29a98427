import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Checkpoint } from '../core/index.js';
import { git, gitOk } from './git.js';

export { branchName } from '../core/index.js';

/** Where a run works, and how it got there. */
export interface Workspace {
  /** The worktree's root (the run's own checkout), or the job's cwd when in place. */
  root: string;
  /** Where the agent runs: the job's cwd mapped into the worktree (same subdirectory). */
  cwd: string;
  inPlace: boolean;
  /** The repository the worktree belongs to (its top level); null in place. */
  repo: string | null;
  branch: string | null;
  /** The commit the worktree started from; null in place. */
  start: string | null;
}

/** The top level of the git work tree containing `dir`, or null when `dir` is not in one. */
export async function repoRoot(dir: string): Promise<string | null> {
  try {
    const inside = (await git(dir, ['rev-parse', '--is-inside-work-tree'])).trim();
    if (inside !== 'true') return null;
    return (await git(dir, ['rev-parse', '--show-toplevel'])).trim();
  } catch {
    return null;
  }
}

export interface CreateWorktreeOptions {
  /** The job's cwd: inside the repository to branch from. */
  cwd: string;
  workRoot: string;
  branch: string;
  /** Start from this checkpoint instead of the repository's HEAD. */
  checkpoint?: Checkpoint | null;
  /** Start from this ref (a branch) instead of the repository's HEAD; a checkpoint wins. */
  base?: string | null;
  /** Names the worktree directory (made unique per run). */
  label: string;
}

/** A run's `base` ref that the repository does not have: trying again will not help. */
export class MissingBaseError extends Error {
  readonly code = 'missing_base';
  readonly ref: string;
  readonly repo: string;
  constructor(ref: string, repo: string) {
    super(
      `base branch ${ref} does not exist in ${repo}; create it (or let the job that makes it succeed) and submit again`,
    );
    this.name = 'MissingBaseError';
    this.ref = ref;
    this.repo = repo;
  }
}

/**
 * Adds a worktree for one run under `workRoot`, on `branch` (created, or reset when it exists
 * and is not checked out elsewhere), starting from the checkpoint's commit (its branch when the
 * commit is gone), else from `base`, else from the repository's HEAD.
 *
 * @throws MissingBaseError when `base` names no commit in the repository.
 * @throws GitError when the repository has no commit to start from or git refuses the worktree.
 */
export async function createWorktree(options: CreateWorktreeOptions): Promise<Workspace> {
  const repo = await repoRoot(options.cwd);
  if (repo === null) throw new Error(`${options.cwd} is not inside a git work tree`);
  const prefix = (await git(options.cwd, ['rev-parse', '--show-prefix'])).trim();
  const startRef = await startPoint(repo, options.checkpoint ?? null, options.base ?? null);
  const start = (await git(repo, ['rev-parse', '--verify', `${startRef}^{commit}`])).trim();
  await mkdir(options.workRoot, { recursive: true });
  const slug = options.label.replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 60) || 'run';
  const dir = path.join(
    path.resolve(options.workRoot),
    `${slug}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
  );
  await releaseBranch(repo, options.branch);
  await git(repo, ['worktree', 'add', '-B', options.branch, dir, start]);
  return {
    root: dir,
    cwd: prefix ? path.resolve(dir, prefix) : dir,
    inPlace: false,
    repo,
    branch: options.branch,
    start,
  };
}

/**
 * Frees `branch` if an earlier run of this job still has it checked out: a factory killed
 * mid-run never detached its worktree, and git refuses a branch checked out twice. Holding the
 * job's lease means no one else runs it, so that worktree is dead: forget it when its directory
 * is gone (prune), else detach it, keeping its files for inspection.
 */
async function releaseBranch(repo: string, branch: string): Promise<void> {
  await git(repo, ['worktree', 'prune']);
  const listing = await git(repo, ['worktree', 'list', '--porcelain']);
  for (const entry of listing.split('\n\n')) {
    const lines = entry.split('\n');
    const at = lines.find((l) => l.startsWith('worktree '))?.slice('worktree '.length);
    if (at !== undefined && lines.includes(`branch refs/heads/${branch}`) && at !== repo)
      await detachWorktree(at);
  }
}

async function startPoint(
  repo: string,
  checkpoint: Checkpoint | null,
  base: string | null,
): Promise<string> {
  if (checkpoint === null) {
    if (base === null) return 'HEAD';
    if (!(await gitOk(repo, ['rev-parse', '--verify', '--quiet', `${base}^{commit}`])))
      throw new MissingBaseError(base, repo);
    return base;
  }
  if (await gitOk(repo, ['cat-file', '-e', `${checkpoint.wipCommit}^{commit}`]))
    return checkpoint.wipCommit;
  return checkpoint.wipBranch;
}

/**
 * Leaves a kept worktree on a detached HEAD at its last commit, so its branch is free for the
 * next run (git refuses a branch checked out in two worktrees) while its files stay for
 * inspection.
 */
export async function detachWorktree(root: string): Promise<void> {
  await git(root, ['checkout', '--quiet', '--detach']);
}

/** Removes a worktree (files and registration); its branch stays. */
export async function removeWorktree(repo: string, root: string): Promise<void> {
  await git(repo, ['worktree', 'remove', '--force', root]);
}
