import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EventInput } from '../../../src/core/index.js';
import type {
  Engine,
  EngineCommand,
  EngineParser,
  EngineSummary,
} from '../../../src/engines/index.js';

/** Running the real agent CLIs (dev dependencies) in tests. */

const BIN = join(import.meta.dirname, '..', '..', '..', 'node_modules', '.bin');
/** The project's installed CLIs first, then the system's. */
export const PATH = [BIN, process.env.PATH ?? ''].join(delimiter);

/**
 * Whether `<binary> --version` runs (the dev dependency and its platform binary are
 * installed), with a throwaway HOME; `homeVars` names more variables to point at it.
 */
export function cliRunnable(
  engine: Engine,
  homeVars: string[] = [],
): { ok: true; version: string } | { ok: false; why: string } {
  const home = mkdtempSync(join(tmpdir(), `fleet-${engine.binary}-version-`));
  const env: Record<string, string> = { PATH, HOME: home };
  for (const v of homeVars) env[v] = home;
  const r = spawnSync(engine.binary, engine.versionArgs, {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 15_000,
  });
  rmSync(home, { recursive: true, force: true });
  if (r.error) return { ok: false, why: r.error.message };
  if (r.status !== 0) return { ok: false, why: `exit ${r.status}: ${r.stderr.trim()}` };
  // Pi prints its version on stderr (its non-interactive modes keep stdout for JSON).
  return { ok: true, version: r.stdout.trim() || r.stderr.trim() };
}

/**
 * `cliRunnable`, with a warning naming what to install when the CLI does not run (its tests are
 * then skipped): "Real `label` tests skipped: … Run `npm install` (`install`)."
 */
export function probeCli(
  engine: Engine,
  label: string,
  install: string,
  homeVars: string[] = [],
): ReturnType<typeof cliRunnable> {
  const probe = cliRunnable(engine, homeVars);
  if (!probe.ok) {
    console.warn(
      `Real ${label} tests skipped: \`${engine.binary} --version\` failed (${probe.why}). ` +
        `Run \`npm install\` (${install}).`,
    );
  }
  return probe;
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: string[];
  stderr: string;
  events: EventInput[];
  summary: EngineSummary;
  timedOut: boolean;
}

/**
 * Spawns the command in `cwd` with exactly `env` (nothing of the test runner's leaks in), feeds
 * every stdout line to `parser`, and kills the process if it outlives `timeoutMs`.
 */
export function runCli(
  cmd: EngineCommand,
  parser: EngineParser,
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<Run> {
  const child = spawn(cmd.command, cmd.args, {
    cwd: opts.cwd,
    stdio: [cmd.stdin, 'pipe', 'pipe'],
    env: opts.env,
  });
  const lines: string[] = [];
  const events: EventInput[] = [];
  let stderr = '';
  // Both are pipes (stdio above); only stdin follows the command.
  if (child.stdout === null || child.stderr === null) throw new Error('stdout/stderr not piped');
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    lines.push(line);
    events.push(...parser.parse(line).events);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'close' waits for stdout to end, so every line has been parsed.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, lines, stderr, events, summary: parser.summary(), timedOut });
    });
  });
}

/** The data of every event of `type`, in order. */
export function dataOf(events: EventInput[], type: string): Record<string, unknown>[] {
  return events.filter((e) => e.type === type).map((e) => e.data as Record<string, unknown>);
}

/** Explains a failed run: the CLI's stderr and its last lines. */
export function explain(run: Run): string {
  return `exit ${run.code} signal ${run.signal} timedOut ${run.timedOut}\nstderr: ${run.stderr}\nlast stdout lines:\n${run.lines.slice(-5).join('\n')}`;
}

/** Runs git in `cwd` as a test identity; throws with git's stderr when it fails. */
function git(cwd: string, ...args: string[]): void {
  const r = spawnSync(
    'git',
    ['-c', 'user.name=Fleet Test', '-c', 'user.email=fleet@example.invalid', ...args],
    { cwd, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
}

/** Makes `dir` a git repository on `main` with one empty commit, for a CLI to work in. */
function initRepo(dir: string): void {
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'commit', '-q', '--allow-empty', '-m', 'initial');
}

/** `git status --porcelain`, trimmed. */
export function gitStatus(cwd: string): string {
  return spawnSync('git', ['status', '--porcelain'], { cwd, encoding: 'utf8' }).stdout.trim();
}

/**
 * A throwaway directory (`root`, under the OS temp dir, named from `prefix`) holding a
 * `worktree` that is a git repository with one commit, and an empty `home` and `tmp` for the
 * CLI. The caller removes `root`.
 */
export function makeSandbox(prefix: string): {
  root: string;
  worktree: string;
  home: string;
  tmp: string;
} {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const box = {
    root,
    worktree: join(root, 'worktree'),
    home: join(root, 'home'),
    tmp: join(root, 'tmp'),
  };
  for (const dir of [box.worktree, box.home, box.tmp]) mkdirSync(dir);
  initRepo(box.worktree);
  return box;
}
