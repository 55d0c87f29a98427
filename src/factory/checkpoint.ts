import type { Insights } from '../core/index.js';
import { git, gitOk } from './git.js';

/**
 * Commits everything in the worktree (`git add -A`: new, changed and deleted files, minus what
 * .gitignore excludes) as Fleet <fleet@localhost>, without hooks or signing, and returns HEAD.
 * When there is nothing to commit no commit is made, and HEAD is returned as it is (the agent
 * may have committed on its own).
 *
 * @example
 * const head = await commitAll(worktree, 'fleet: WIP of job j_1 (timeout)');
 */
export async function commitAll(root: string, message: string): Promise<string> {
  await git(root, ['add', '-A']);
  const clean = await gitOk(root, ['diff', '--cached', '--quiet']);
  if (!clean) {
    await git(root, [
      '-c',
      'commit.gpgsign=false',
      'commit',
      '--quiet',
      '--no-verify',
      '--allow-empty-message',
      '-m',
      message,
    ]);
  }
  return (await git(root, ['rev-parse', 'HEAD'])).trim();
}

export type Diffstat = Required<Pick<Insights, 'filesChanged' | 'linesAdded' | 'linesDeleted'>>;

/**
 * Files changed and lines added / deleted between two commits (`git diff --numstat`). Binary
 * files count as changed files with no lines.
 *
 * @example
 * await diffstat(repo, base, head); // { filesChanged: 2, linesAdded: 10, linesDeleted: 1 }
 */
export async function diffstat(root: string, base: string, head: string): Promise<Diffstat> {
  const out = await git(root, ['diff', '--numstat', '--no-renames', base, head]);
  const stat: Diffstat = { filesChanged: 0, linesAdded: 0, linesDeleted: 0 };
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    const [added, deleted] = line.split('\t');
    stat.filesChanged += 1;
    if (added !== undefined && added !== '-') stat.linesAdded += Number(added);
    if (deleted !== undefined && deleted !== '-') stat.linesDeleted += Number(deleted);
  }
  return stat;
}
