import { execFile } from 'node:child_process';

/** A git command that failed: its arguments, exit code and stderr. */
export class GitError extends Error {
  constructor(
    readonly args: string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args.join(' ')} failed (exit ${code ?? 'signal'}): ${stderr.trim()}`);
    this.name = 'GitError';
  }
}

/**
 * Identity and settings for the commits Fleet makes, so they work on a host with no git user
 * configured and never stop to sign or run hooks.
 */
export const FLEET_GIT_ENV: Record<string, string> = {
  GIT_AUTHOR_NAME: 'Fleet',
  GIT_AUTHOR_EMAIL: 'fleet@localhost',
  GIT_COMMITTER_NAME: 'Fleet',
  GIT_COMMITTER_EMAIL: 'fleet@localhost',
  GIT_TERMINAL_PROMPT: '0',
};

/**
 * Runs `git <args>` in `cwd` and returns its stdout.
 *
 * @throws GitError when git exits non-zero.
 * @example
 * const head = (await git(repo, ['rev-parse', 'HEAD'])).trim();
 */
export function git(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      { cwd, env: { ...process.env, ...FLEET_GIT_ENV }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === 'number' ? error.code : null;
          reject(new GitError(args, code, stderr || error.message));
        } else resolve(stdout);
      },
    );
  });
}

/** Like `git`, but resolves false instead of throwing when git exits non-zero. */
export async function gitOk(cwd: string, args: string[]): Promise<boolean> {
  try {
    await git(cwd, args);
    return true;
  } catch (error) {
    if (error instanceof GitError) return false;
    throw error;
  }
}
