import { posix } from 'node:path';
import type { JobFileProblem } from './job-file-error.js';
import { HEADER_FIELDS, isJobKey, readHeader, type HeaderFields } from './job-file-header.js';
import {
  combinations,
  readMatrix,
  stringsIn,
  substitute,
  substituteDeep,
  unknownReferenceMessage,
  unknownReferences,
  type Matrix,
} from './job-file-matrix.js';
import { problemAt, unknownFieldMessage, type Scope } from './job-file-yaml.js';
import { JobSpec, type JobSpecInput } from './schemas/job.js';

/** A job read from a job file or a plan, ready to submit once a tenant is added. */
export type JobDraft = Omit<JobSpecInput, 'tenant'>;

/** One job definition: header fields and instructions, with where they came from. */
export interface JobSource {
  /** Where the header fields live. */
  scope: Scope;
  /** The header as parsed, without the body. */
  header: Record<string, unknown>;
  body: string;
  /** Field name of the body in messages (null for the text after a job file's front matter). */
  bodyField: string | null;
  /** File line of line `index` (0-based) of the body. */
  bodyLineOf(index: number): number | null;
  /** What to say when the body is empty. */
  emptyBodyMessage: string;
  /** Header defaults (the header wins) and where they were written. */
  defaults: Record<string, unknown>;
  defaultsScope: Scope;
  /** Key of a job whose header has none; null leaves it null (the server assigns an id). */
  fallbackKey: string | null;
  /** Base key of matrix jobs whose header has no key (the file name's stem). */
  matrixBaseKey: string;
  /** Field names allowed beside the header fields (e.g. `body` for inline plan jobs). */
  extraFields: readonly string[];
  baseDir: string;
  homeDir: string;
  defaultCwd: string | undefined;
  /** `manifest.source`. */
  source: { file: string; line?: number };
}

/** Where a field of a built job was written, for problems found after building. */
export type FieldSite = Omit<JobFileProblem, 'message'>;

/** A built job, with where its key and other fields were written. */
export interface BuiltJob {
  draft: JobDraft;
  keyAt: FieldSite;
  at(field: string): FieldSite;
}

const DraftSpec = JobSpec.omit({ tenant: true });
const FIELD_OF_SPEC: Record<string, string> = {
  timeoutMs: 'timeout',
  requiresApproval: 'approval',
  bodyMd: 'body',
};

/**
 * Builds the jobs of one definition: checks field names, applies defaults, expands the matrix
 * (substituting `${name}` in the header and body), reads each field and assembles drafts.
 * Problems are appended to `problems`; the drafts are only meaningful when none were added.
 */
export function buildJobs(source: JobSource, problems: JobFileProblem[]): BuiltJob[] {
  const known = [...HEADER_FIELDS, ...source.extraFields];
  for (const name of Object.keys(source.header))
    if (!known.includes(name))
      problems.push(problemAt(source.scope, [name], unknownFieldMessage(name, known), 'key'));
  for (const name of Object.keys(source.defaults))
    if (!HEADER_FIELDS.includes(name as never))
      problems.push(
        problemAt(source.defaultsScope, [name], unknownFieldMessage(name, HEADER_FIELDS), 'key'),
      );

  const merged: Record<string, unknown> = { ...source.defaults, ...source.header };
  const scopeOf = (field: string): Scope =>
    field in source.header ? source.scope : source.defaultsScope;
  const { matrix: matrixValue, ...rest } = merged;
  const header = Object.fromEntries(
    Object.entries(rest).filter(([k]) => HEADER_FIELDS.includes(k as never)),
  );

  let matrix: Matrix | null = null;
  if (matrixValue !== null && matrixValue !== undefined) {
    matrix = readMatrix(matrixValue, scopeOf('matrix'), problems);
    if (matrix === null) return [];
    checkReferences(source, header, matrix, scopeOf, problems);
  }
  if (source.body.trim() === '')
    problems.push({
      file: source.scope.file,
      line: source.bodyLineOf(0),
      field: source.bodyField,
      message: source.emptyBodyMessage,
    });

  const seen = new Set<string>();
  const jobs: BuiltJob[] = [];
  for (const vars of matrix === null ? [{}] : combinations(matrix)) {
    const expanded =
      matrix === null ? header : (substituteDeep(header, vars) as Record<string, unknown>);
    const read = readHeader(expanded, scopeOf);
    for (const p of read.problems)
      if (!seen.has(JSON.stringify(p))) {
        seen.add(JSON.stringify(p));
        problems.push(p);
      }
    const body = matrix === null ? source.body : substitute(source.body, vars);
    const key = keyOf(source, header.key, read.fields, matrix, vars);
    const draft = assemble(source, read.fields, body, key, matrix === null ? null : vars);
    const at = (field: string): FieldSite => {
      const site = problemAt(scopeOf(field), [field], '', 'key');
      return { file: site.file, line: site.line, field: site.field };
    };
    jobs.push({
      draft,
      keyAt: at('key' in source.header || matrix === null ? 'key' : 'matrix'),
      at,
    });
  }
  if (problems.length === 0) checkDrafts(source, jobs, matrix, scopeOf, problems);
  return jobs;
}

function checkReferences(
  source: JobSource,
  header: Record<string, unknown>,
  matrix: Matrix,
  scopeOf: (field: string) => Scope,
  problems: JobFileProblem[],
): void {
  for (const [path, text] of stringsIn(header))
    for (const name of unknownReferences(text, matrix.names))
      problems.push(
        problemAt(scopeOf(String(path[0])), path, unknownReferenceMessage(name, matrix)),
      );
  source.body.split('\n').forEach((line, i) => {
    for (const name of unknownReferences(line, matrix.names))
      problems.push({
        file: source.scope.file,
        line: source.bodyLineOf(i),
        field: source.bodyField,
        message: unknownReferenceMessage(name, matrix),
      });
  });
}

/**
 * A matrix job's key: the key as written when it uses a matrix variable (`build-${service}`),
 * else the key (or the file stem) with the values appended: `build-risk-dev`.
 */
function keyOf(
  source: JobSource,
  written: unknown,
  fields: HeaderFields,
  matrix: Matrix | null,
  vars: Record<string, string>,
): string | null {
  if (matrix === null) return fields.key ?? source.fallbackKey;
  if (typeof written === 'string' && unknownReferences(written, []).length > 0)
    return fields.key ?? null;
  const base = fields.key ?? source.matrixBaseKey;
  return [base, ...matrix.names.map((n) => keySafe(vars[n]!))].join('-');
}

/** Text turned into key characters: every run of other characters becomes `-`. */
export function keySafe(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '-');
}

function assemble(
  source: JobSource,
  f: HeaderFields,
  body: string,
  key: string | null,
  vars: Record<string, string> | null,
): JobDraft {
  const manifest: Record<string, unknown> = { source: source.source };
  const cwd =
    f.cwd === undefined ? source.defaultCwd : resolveCwd(f.cwd, source.baseDir, source.homeDir);
  if (cwd !== undefined) manifest.cwd = cwd;
  if (f.env !== undefined) manifest.env = f.env;
  if (f.setup !== undefined) manifest.setup = f.setup;
  if (f.fixAttempts !== undefined) manifest.fixAttempts = f.fixAttempts;
  if (f.yolo !== undefined) manifest.yolo = f.yolo;
  if (f.model !== undefined) manifest.model = f.model;
  if (f.stall !== undefined) manifest.stall = f.stall;
  if (vars !== null) manifest.matrix = vars;

  const draft: JobDraft = { bodyMd: body, key, engine: f.engine ?? 'shell', manifest };
  if (f.idempotencyKey !== undefined) draft.idempotencyKey = f.idempotencyKey;
  if (f.priority !== undefined) draft.priority = f.priority;
  if (f.capabilities !== undefined) draft.capabilities = f.capabilities;
  if (f.profile !== undefined) draft.profile = f.profile;
  if (f.deps !== undefined) draft.deps = f.deps;
  if (f.lock !== undefined) draft.lock = f.lock;
  if (f.timeout !== undefined) draft.timeoutMs = f.timeout;
  if (f.maxAttempts !== undefined) draft.maxAttempts = f.maxAttempts;
  if (f.runAt !== undefined) draft.runAt = f.runAt;
  if (f.verify !== undefined) draft.verify = f.verify;
  if (f.approval !== undefined) draft.requiresApproval = f.approval;
  return draft;
}

/**
 * Resolves a job's `cwd` with POSIX rules: `~` and `~/x` against `homeDir`, a relative path
 * against `baseDir`; no trailing slash.
 */
export function resolveCwd(cwd: string, baseDir: string, homeDir: string): string {
  let out: string;
  if (cwd === '~' || cwd.startsWith('~/')) out = posix.join(homeDir, cwd.slice(1));
  else if (posix.isAbsolute(cwd)) out = posix.normalize(cwd);
  else out = posix.join(baseDir, cwd);
  return out.length > 1 && out.endsWith('/') ? out.slice(0, -1) : out;
}

/** Keys, self-dependencies and a last check against the JobSpec schema itself. */
function checkDrafts(
  source: JobSource,
  jobs: BuiltJob[],
  matrix: Matrix | null,
  scopeOf: (field: string) => Scope,
  problems: JobFileProblem[],
): void {
  const keys = new Set<string>();
  for (const { draft } of jobs) {
    const key = draft.key ?? null;
    if (key !== null && !isJobKey(key)) {
      const field = matrix !== null && !('key' in source.header) ? 'matrix' : 'key';
      problems.push(
        problemAt(
          scopeOf(field),
          [field],
          `the job key '${key}' is not valid: a key uses letters, digits, "_", ".", ":", "/" or "-", starts with a letter or digit and has at most 200 characters; set a different key`,
          'key',
        ),
      );
      return;
    }
    if (key !== null && keys.has(key)) {
      problems.push(
        problemAt(
          scopeOf('matrix'),
          ['matrix'],
          `two combinations give the same key '${key}'; use values that differ in letters, digits, "_", "." or "-"`,
          'key',
        ),
      );
      return;
    }
    if (key !== null) keys.add(key);
    if (key !== null && (draft.deps ?? []).includes(key)) {
      problems.push(problemAt(scopeOf('deps'), ['deps'], `the job '${key}' depends on itself`));
      return;
    }
    const result = DraftSpec.safeParse(draft);
    if (!result.success)
      for (const issue of result.error.issues) {
        const field = String(issue.path[0] ?? '');
        problems.push(
          problemAt(
            scopeOf(FIELD_OF_SPEC[field] ?? field),
            [FIELD_OF_SPEC[field] ?? field],
            issue.message,
          ),
        );
      }
  }
}
