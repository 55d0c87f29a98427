import { posix } from 'node:path';
import { buildJobs, resolveCwd, type BuiltJob, type JobDraft } from './job-file-build.js';
import { JobFileError, sortProblems, type JobFileProblem } from './job-file-error.js';
import { HEADER_FIELDS, isJobKey, readHeader } from './job-file-header.js';
import { duplicateKeys, fileStem, readJobFile, type SourceFile } from './job-file.js';
import { rewritePlanDeps, type PlannedJob } from './plan-file-deps.js';
import { parseDuration } from './duration.js';
import {
  describeValue,
  isRecord,
  problemAt,
  unknownFieldMessage,
  YamlText,
  type Scope,
  type YamlPath,
} from './job-file-yaml.js';

/** A command a gate runs on the result of its phase. */
export interface GateCheck {
  /** A label; defaults to the command. */
  name: string;
  run: string;
  /** A failing check that is not required makes the gate CONDITIONAL instead of FAIL. */
  required: boolean;
}

export interface PlanPhase {
  name: string;
  jobs: JobDraft[];
  gate: { checks: GateCheck[]; timeoutMs: number | null } | null;
  /** `required`: wait for a person even when the gate passes. */
  approval: 'required' | 'auto';
}

export interface PlanDefinition {
  name: string;
  description: string | null;
  /** The plan file's path as given. */
  source: string;
  /**
   * `workspace: {seed: DIR}`: run the plan in a fresh scratch git repository made from a copy
   * of DIR (absolute, resolved against the plan's directory) rather than in an existing `cwd`.
   * The caller makes the repository and points every job's `cwd` at it.
   */
  workspace: { seed: string } | null;
  phases: PlanPhase[];
}

export interface PlanOptions {
  /** What `~` in `cwd` stands for. */
  homeDir: string;
  /** A job file by its path relative to the plan's directory; null when there is none. */
  readFile(path: string): SourceFile | null;
  /** Paths (relative to the plan's directory) matching a glob like `jobs/*.md`. */
  listFiles?(glob: string): string[];
}

const PLAN_FIELDS = ['name', 'description', 'cwd', 'workspace', 'defaults', 'phases'];
const PHASE_FIELDS = ['name', 'jobs', 'gate', 'approval'];
const GATE_FIELDS = ['checks', 'timeout'];
const CHECK_FIELDS = ['name', 'run', 'required'];
/** Header fields that make no sense as a default for every job of a plan, and why. */
const NOT_DEFAULTS: Record<string, string> = {
  key: 'every job needs its own key',
  idempotencyKey: 'every job needs its own idempotency key',
  matrix: 'set matrix on the jobs that need it',
  deps: 'set deps on the jobs that need them',
  cwd: "set cwd at the top of the plan: it is every job's default directory",
};
const GLOB = /[*?[]/;

/** Collects problems for one plan file. */
class PlanReader {
  readonly problems: JobFileProblem[] = [];
  readonly scope: Scope;
  constructor(
    readonly yaml: YamlText,
    readonly options: PlanOptions,
  ) {
    this.scope = { file: yaml.file, yaml, base: [] };
  }

  report(path: YamlPath, message: string, at: 'key' | 'value' = 'value'): void {
    this.problems.push(problemAt(this.scope, path, message, at));
  }

  /** Reports fields of `value` (at `path`) not in `known`. */
  checkFields(value: Record<string, unknown>, path: YamlPath, known: readonly string[]): void {
    for (const name of Object.keys(value))
      if (!known.includes(name))
        this.report([...path, name], unknownFieldMessage(name, known), 'key');
  }

  /** A string matching `test`, or undefined after reporting `expected`. */
  text(
    value: unknown,
    path: YamlPath,
    expected: string,
    test = (s: string) => s.trim() !== '',
  ): string | undefined {
    if (typeof value === 'string' && test(value)) return value;
    this.report(path, `expected ${expected}, got ${describeValue(value)}`);
    return undefined;
  }

  /** A non-empty list, or undefined after reporting. */
  list(value: unknown, path: YamlPath, what: string): unknown[] | undefined {
    if (Array.isArray(value) && value.length > 0) return value;
    this.report(
      path,
      `expected a non-empty list of ${what}, got ${Array.isArray(value) ? 'an empty list' : describeValue(value)}`,
    );
    return undefined;
  }
}

/**
 * Parses a plan: phases in order, each with jobs (job files or inline) and an optional gate.
 * Job keys get the prefix `<plan>/<phase>/`; deps naming a job of the plan by its short key (or
 * `<phase>/<key>`) are rewritten to the full key. Throws a {@link JobFileError} listing every
 * problem, in the plan and in the job files it names.
 *
 * `plan.path` should be absolute: relative `cwd` values are resolved against its directory.
 */
export function parsePlan(plan: SourceFile, options: PlanOptions): PlanDefinition {
  const yaml = new YamlText(plan.path, plan.text);
  if (yaml.problems.length > 0) throw new JobFileError(yaml.problems);
  const r = new PlanReader(yaml, options);
  const root = yaml.value;
  if (!isRecord(root)) {
    r.report([], `a plan is a YAML mapping with name and phases, got ${describeValue(root)}`);
    throw new JobFileError(r.problems);
  }
  r.checkFields(root, [], PLAN_FIELDS);
  const planDir = posix.dirname(plan.path);
  const name =
    r.text(
      root.name,
      ['name'],
      'a plan name of letters, digits, "_", ".", ":", "/" or "-"',
      isJobKey,
    ) ?? 'plan';
  const description =
    root.description === undefined || root.description === null
      ? null
      : (r.text(root.description, ['description'], 'a text') ?? null);
  const cwd =
    root.cwd === undefined || root.cwd === null
      ? undefined
      : resolveOptional(r.text(root.cwd, ['cwd'], 'a directory path'), planDir, options.homeDir);
  const defaults = readDefaults(r, root.defaults);
  const workspace = readWorkspace(r, root.workspace, planDir, options.homeDir);
  if (workspace !== null && cwd !== undefined)
    r.report(
      ['workspace'],
      'a plan runs either in cwd or in a workspace made from a seed, not both',
    );

  const phaseList = r.list(root.phases, ['phases'], 'phases, each with a name and jobs') ?? [];
  const planned: PlannedJob[] = [];
  const phases: PlanPhase[] = [];
  const names = new Map<string, number>();
  phaseList.forEach((raw, index) => {
    const path: YamlPath = ['phases', index];
    if (!isRecord(raw)) {
      r.report(path, `expected a phase (a mapping with name and jobs), got ${describeValue(raw)}`);
      return;
    }
    r.checkFields(raw, path, PHASE_FIELDS);
    const phaseName =
      r.text(
        raw.name,
        [...path, 'name'],
        'a phase name of letters, digits, "_", ".", ":" or "-"',
        (s) => isJobKey(s) && !s.includes('/'),
      ) ?? `phase-${index}`;
    const earlier = names.get(phaseName);
    if (earlier !== undefined)
      r.report(
        [...path, 'name'],
        `phase '${phaseName}' is already defined by phases[${earlier}]; phase names must be unique`,
      );
    names.set(phaseName, index);
    const jobs = readPhaseJobs(r, raw.jobs, path, { planDir, cwd, defaults });
    for (const job of jobs) planned.push({ job, phase: phaseName, phaseIndex: index });
    phases.push({
      name: phaseName,
      jobs: jobs.map((j) => j.draft),
      gate: readGate(r, raw.gate, [...path, 'gate']),
      approval: readApproval(r, raw.approval, [...path, 'approval']),
    });
  });
  if (r.problems.length === 0) {
    r.problems.push(...rewritePlanDeps(name, planned));
    r.problems.push(...duplicateKeys(planned.map((p) => p.job)));
  }
  if (r.problems.length > 0) throw new JobFileError(sortProblems(r.problems));
  return { name, description, source: plan.path, workspace, phases };
}

function readWorkspace(
  r: PlanReader,
  value: unknown,
  planDir: string,
  homeDir: string,
): { seed: string } | null {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) {
    r.report(['workspace'], `expected {seed: DIR}, got ${describeValue(value)}`);
    return null;
  }
  r.checkFields(value, ['workspace'], ['seed']);
  const seed = r.text(value.seed, ['workspace', 'seed'], 'a directory to copy into the repository');
  return seed === undefined ? null : { seed: resolveCwd(seed, planDir, homeDir) };
}

function resolveOptional(cwd: string | undefined, dir: string, home: string): string | undefined {
  return cwd === undefined ? undefined : resolveCwd(cwd, dir, home);
}

/** The plan's `defaults`, keeping only fields that are valid (the others are reported). */
function readDefaults(r: PlanReader, value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) {
    r.report(
      ['defaults'],
      `expected a mapping of job header fields, like {engine: shell, timeout: 5m}, got ${describeValue(value)}`,
    );
    return {};
  }
  const kept: Record<string, unknown> = {};
  for (const [field, item] of Object.entries(value)) {
    const path = ['defaults', field];
    if (field in NOT_DEFAULTS)
      r.report(path, `not allowed in defaults: ${NOT_DEFAULTS[field]}`, 'key');
    else if (!HEADER_FIELDS.includes(field as never))
      r.report(path, unknownFieldMessage(field, HEADER_FIELDS), 'key');
    else {
      const { problems } = readHeader({ [field]: item }, () => ({
        ...r.scope,
        base: ['defaults'],
      }));
      r.problems.push(...problems);
      if (problems.length === 0) kept[field] = item;
    }
  }
  return kept;
}

interface PhaseContext {
  planDir: string;
  cwd: string | undefined;
  defaults: Record<string, unknown>;
}

function readPhaseJobs(
  r: PlanReader,
  value: unknown,
  phasePath: YamlPath,
  ctx: PhaseContext,
): BuiltJob[] {
  const path = [...phasePath, 'jobs'];
  const list = r.list(value, path, 'job file paths or inline jobs');
  if (list === undefined) return [];
  return list.flatMap((entry, j) => {
    const at = [...path, j];
    if (typeof entry === 'string') return fileJobs(r, entry, at, ctx);
    if (isRecord(entry)) return inlineJob(r, entry, at, ctx);
    r.report(
      at,
      `expected a job file path or an inline job (a mapping with key and body), got ${describeValue(entry)}`,
    );
    return [];
  });
}

function fileJobs(r: PlanReader, ref: string, at: YamlPath, ctx: PhaseContext): BuiltJob[] {
  let paths = [ref];
  if (GLOB.test(ref)) {
    if (r.options.listFiles === undefined) {
      r.report(
        at,
        `'${ref}' is a pattern, and patterns are not supported here; list the job files one by one`,
      );
      return [];
    }
    paths = [...r.options.listFiles(ref)].sort();
    if (paths.length === 0)
      r.report(
        at,
        `'${ref}' matches no files (paths are relative to the plan's directory, ${ctx.planDir})`,
      );
  }
  return paths.flatMap((path) => {
    const file = r.options.readFile(path);
    if (file === null) {
      r.report(
        at,
        `no job file at '${path}' (paths are relative to the plan's directory, ${ctx.planDir})`,
      );
      return [];
    }
    return readJobFile(
      file,
      {
        baseDir: posix.dirname(posix.join(ctx.planDir, path)),
        homeDir: r.options.homeDir,
        ...(ctx.cwd === undefined ? {} : { defaultCwd: ctx.cwd }),
        defaults: ctx.defaults,
        defaultsScope: { ...r.scope, base: ['defaults'] },
        fallbackKey: fileStem(path),
      },
      r.problems,
    );
  });
}

function inlineJob(
  r: PlanReader,
  entry: Record<string, unknown>,
  at: YamlPath,
  ctx: PhaseContext,
): BuiltJob[] {
  const { body, ...header } = entry;
  if (header.key === undefined || header.key === null)
    r.report(
      at,
      'an inline job needs a key (a job file without one is named after its file)',
      'key',
    );
  const bodyText = typeof body === 'string' ? body : '';
  if (body !== undefined && body !== null && typeof body !== 'string')
    r.report(
      [...at, 'body'],
      `expected the instructions as text (use body: | and indent them), got ${describeValue(body)}`,
    );
  return buildJobs(
    {
      scope: { ...r.scope, base: at },
      header,
      body: bodyText,
      bodyField: problemAt(r.scope, [...at, 'body'], '').field,
      bodyLineOf: (index) => r.yaml.blockLineOf([...at, 'body'], index),
      emptyBodyMessage: 'the job has no instructions; write them under body: |',
      defaults: ctx.defaults,
      defaultsScope: { ...r.scope, base: ['defaults'] },
      fallbackKey: null,
      matrixBaseKey: typeof header.key === 'string' ? header.key : 'job',
      extraFields: ['body'],
      baseDir: ctx.planDir,
      homeDir: r.options.homeDir,
      defaultCwd: ctx.cwd,
      source: { file: r.yaml.file, ...lineField(r.yaml.lineOf(at)) },
    },
    r.problems,
  );
}

function lineField(line: number | null): { line?: number } {
  return line === null ? {} : { line };
}

function readGate(r: PlanReader, value: unknown, path: YamlPath): PlanPhase['gate'] {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) {
    r.report(path, `expected a gate (a mapping with checks), got ${describeValue(value)}`);
    return null;
  }
  r.checkFields(value, path, GATE_FIELDS);
  const checks = (
    r.list(value.checks, [...path, 'checks'], 'checks like {run: npm test}') ?? []
  ).flatMap((raw, i) => readCheck(r, raw, [...path, 'checks', i]));
  let timeoutMs: number | null = null;
  if (value.timeout !== undefined && value.timeout !== null) {
    try {
      timeoutMs = typeof value.timeout === 'string' ? parseDuration(value.timeout) : NaN;
    } catch {
      timeoutMs = NaN;
    }
    if (!(timeoutMs > 0)) {
      r.report(
        [...path, 'timeout'],
        `expected a duration like 90s or 4h, got ${describeValue(value.timeout)}`,
      );
      timeoutMs = null;
    }
  }
  return { checks, timeoutMs };
}

function readCheck(r: PlanReader, raw: unknown, path: YamlPath): GateCheck[] {
  if (typeof raw === 'string' && raw.trim() !== '')
    return [{ name: raw, run: raw, required: true }];
  if (!isRecord(raw)) {
    r.report(
      path,
      `expected a check like {run: npm test, required: false}, got ${describeValue(raw)}`,
    );
    return [];
  }
  r.checkFields(raw, path, CHECK_FIELDS);
  const run = r.text(raw.run, [...path, 'run'], 'a shell command to run');
  const name =
    raw.name === undefined || raw.name === null
      ? run
      : r.text(raw.name, [...path, 'name'], 'a label');
  let required = true;
  if (raw.required !== undefined && raw.required !== null) {
    if (typeof raw.required === 'boolean') required = raw.required;
    else
      r.report([...path, 'required'], `expected true or false, got ${describeValue(raw.required)}`);
  }
  return run === undefined || name === undefined ? [] : [{ name, run, required }];
}

function readApproval(r: PlanReader, value: unknown, path: YamlPath): PlanPhase['approval'] {
  if (value === undefined || value === null) return 'auto';
  if (value === 'required' || value === 'auto') return value;
  r.report(path, `expected 'required' or 'auto', got ${describeValue(value)}`);
  return 'auto';
}
