import type { Insights } from '../../src/core/index.js';
import type { Engine, EngineParser } from '../../src/engines/engine.js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { git } from '../../src/factory/git.js';
import { type ListeningServer, listen } from '../client/helpers.js';
import { STORES } from '../helpers/stores.js';

/** A temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix = 'fleet-factory-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** A real git repository with one commit (README.md, three lines) on `main`. */
export async function makeRepo(): Promise<string> {
  const dir = await tempDir('fleet-repo-');
  await git(dir, ['init', '--quiet', '-b', 'main']);
  await writeFile(path.join(dir, 'README.md'), 'one\ntwo\nthree\n');
  await git(dir, ['add', '-A']);
  await git(dir, ['-c', 'commit.gpgsign=false', 'commit', '--quiet', '-m', 'initial']);
  return dir;
}

/**
 * What a factory daemon test starts from: a listening server on SQLite with the real clock, a
 * factory token and an operator client for tenant `acme`, a work dir and a git repository (both
 * removed after the test).
 */
export async function factoryTestbed(): Promise<{
  server: ListeningServer;
  token: string;
  operator: ReturnType<ListeningServer['client']>;
  workDir: string;
  repo: string;
}> {
  const sqlite = STORES.find((k) => k.name === 'sqlite')!;
  const server = await listen(sqlite, { store: { clock: () => Date.now() } });
  const token = await server.token('factory', ['acme']);
  const operator = server.client(await server.token('operator', ['acme']));
  const workDir = await tempDir('fleet-work-');
  const repo = await makeRepo();
  onTestFinished(() => cleanup(workDir, repo));
  return { server, token, operator, workDir, repo };
}

export async function head(repo: string, ref = 'HEAD'): Promise<string> {
  return (await git(repo, ['rev-parse', ref])).trim();
}

export async function show(repo: string, spec: string): Promise<string> {
  return git(repo, ['show', spec]);
}

export async function cleanup(...dirs: string[]): Promise<void> {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
}

/**
 * Whether `pid` is gone: kill(pid, 0) throws ESRCH. A zombie (killed, not yet reaped by an
 * init that may not reap in a container) also counts as gone.
 */
export async function isGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Polls `isGone` for up to `ms`. */
export async function waitGone(pid: number, ms = 1000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await isGone(pid)) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A fake engine with a session, for fix-loop and stall tests. The first run prints
 * `SESSION fake-1` and runs `firstRun` (a bash snippet); a resumed run prints its session,
 * records its prompt in `promptFile` (outside the worktree) and runs `resumedRun` (by default:
 * writes `ok` to status.txt and answers `REPLY done`, an assistant message).
 */
export function fakeSessionEngine(
  promptFile: string,
  firstRun: string,
  insights: Insights = {},
  /** What a resumed turn does after recording its prompt: by default it answers (REPLY). */
  resumedRun = 'echo ok > status.txt; echo "REPLY done"',
): Engine {
  return {
    name: 'claude-code',
    binary: 'bash',
    versionArgs: ['--version'],
    command: (run) =>
      run.resumeSessionId
        ? {
            command: 'bash',
            args: [
              '-c',
              `echo "SESSION ${run.resumeSessionId}"; printf '%s' "$1" > ${promptFile}; ${resumedRun}`,
              'fake',
              run.prompt,
            ],
            env: {},
            stdin: 'ignore',
          }
        : {
            command: 'bash',
            args: ['-c', `echo "SESSION fake-1"; ${firstRun}`],
            env: {},
            stdin: 'ignore',
          },
    parser: (): EngineParser => {
      let sessionId: string | null = null;
      return {
        parse: (line) => {
          const m = /^SESSION (\S+)$/.exec(line);
          if (m) {
            sessionId = m[1]!;
            return { events: [{ type: 'session', data: { sessionId } }], state: 'thinking' };
          }
          const reply = /^REPLY (.*)$/.exec(line);
          if (reply) {
            const data = { role: 'assistant', text: reply[1]! };
            return { events: [{ type: 'message', data }], state: 'thinking' };
          }
          return { events: [{ type: 'raw', data: { line } }] };
        },
        summary: () => ({ insights, sessionId, ok: null, error: null }),
      };
    },
  };
}
