import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import {
  JobFileError,
  formatProblem,
  type JobDraft,
  type PlanDefinition,
  type SourceFile,
  expandPlan,
  parseJobFiles,
  parsePlan,
} from '../core/index.js';
import { git } from '../factory/git.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './io.js';

/** What the paths on a command line hold: job files, or one plan. */
export type Work =
  | { kind: 'jobs'; drafts: JobDraft[]; files: string[] }
  | { kind: 'plan'; plan: PlanDefinition; drafts: JobDraft[] };

const PLAN_FILE = 'plan.yaml';

/**
 * Reads job files and plans named on the command line: a `.md` file is a job file; a `.yaml`
 * or `.yml` file, or a directory holding `plan.yaml`, is a plan; any other directory stands for
 * the `.md` job files in it. Every file is checked before anything is returned, and a bad one
 * throws a JobFileError listing every problem (`file:line: field: message`).
 */
export function loadWork(paths: readonly string[], io: CliIo): Work {
  try {
    return readWork(paths, io);
  } catch (err) {
    if (!(err instanceof JobFileError)) throw err;
    // Paths as the user would type them, relative to where they are.
    const shown = err.problems.map((p) => ({ ...p, file: displayPath(p.file, io.cwd) }));
    const head =
      shown.length === 1
        ? 'a job file has a problem; nothing was submitted'
        : `${shown.length} problems in the job files; nothing was submitted`;
    throw new CliError(`${head}:\n${shown.map((p) => `  ${formatProblem(p)}`).join('\n')}`, {
      cause: err,
    });
  }
}

function displayPath(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

function readWork(paths: readonly string[], io: CliIo): Work {
  if (paths.length === 0) throw new CliError('name at least one job file, directory or plan');
  const inputs = paths.map((p) => classify(resolve(io.cwd, p), p));
  const plans = inputs.filter((i) => i.kind === 'plan');
  if (plans.length > 0) {
    if (inputs.length > 1)
      throw new CliError(
        `${plans[0]!.given} is a plan: give one plan at a time, without other files`,
      );
    const plan = readPlan(plans[0]!.path);
    return { kind: 'plan', plan, drafts: expandPlan(plan) };
  }
  const files = inputs.flatMap((i) => i.files);
  const drafts = parseJobFiles(
    files.map((f) => ({ path: f, text: readText(f) })),
    { homeDir: homedir(), baseDirOf: (f) => dirname(f) },
  );
  return { kind: 'jobs', drafts, files };
}

/** A fresh scratch repository for a plan with `workspace.seed`, and every job pointed at it. */
export async function prepareWorkspace(work: Work, root: string): Promise<string | null> {
  if (work.kind !== 'plan' || work.plan.workspace === null) return null;
  const seed = work.plan.workspace.seed;
  if (!existsSync(seed) || !statSync(seed).isDirectory())
    throw new CliError(`workspace seed ${seed} is not a directory`);
  const dir = join(
    root,
    'workspaces',
    `${work.plan.name.replace(/[^A-Za-z0-9_.-]+/g, '-')}-${Date.now().toString(36)}`,
  );
  mkdirSync(dir, { recursive: true });
  cpSync(seed, dir, { recursive: true });
  await git(dir, ['init', '--quiet', '--initial-branch=main']);
  await git(dir, ['add', '--all']);
  // git() commits as Fleet (FLEET_GIT_ENV), so a host with no git identity works too.
  await git(dir, ['commit', '--quiet', '--allow-empty', '-m', `seed of plan ${work.plan.name}`]);
  for (const draft of work.drafts)
    if (draft.kind !== 'composite') draft.manifest = { ...draft.manifest, cwd: dir };
  return dir;
}

interface Input {
  kind: 'plan' | 'jobs';
  given: string;
  path: string;
  files: string[];
}

function classify(path: string, given: string): Input {
  if (!existsSync(path)) throw new CliError(`${given}: no such file or directory`);
  if (statSync(path).isDirectory()) {
    const plan = join(path, PLAN_FILE);
    if (existsSync(plan)) return { kind: 'plan', given, path: plan, files: [] };
    const files = readdirSync(path)
      .filter((f) => f.endsWith('.md') && f.toLowerCase() !== 'readme.md')
      .sort()
      .map((f) => join(path, f));
    if (files.length === 0)
      throw new CliError(`${given} holds no job files (*.md) and no ${PLAN_FILE}`);
    return { kind: 'jobs', given, path, files };
  }
  if (/\.ya?ml$/i.test(path)) return { kind: 'plan', given, path, files: [] };
  return { kind: 'jobs', given, path, files: [path] };
}

function readPlan(path: string): PlanDefinition {
  const dir = dirname(path);
  return parsePlan(
    { path, text: readText(path) },
    {
      homeDir: homedir(),
      readFile: (rel): SourceFile | null => {
        const file = resolve(dir, rel);
        return existsSync(file) && statSync(file).isFile()
          ? { path: file, text: readText(file) }
          : null;
      },
      listFiles: (glob) => listGlob(dir, glob),
    },
  );
}

/** Paths relative to `dir` matching `glob`, where `*` and `?` match within the last segment. */
function listGlob(dir: string, glob: string): string[] {
  const folder = dirname(glob);
  const pattern = new RegExp(
    `^${basename(glob)
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]')}$`,
  );
  const base = resolve(dir, folder);
  if (!existsSync(base)) return [];
  return readdirSync(base)
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => (folder === '.' ? f : join(folder, f)));
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
}
