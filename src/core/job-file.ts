import { posix } from 'node:path';
import { buildJobs, keySafe, type BuiltJob, type JobDraft } from './job-file-build.js';
import { JobFileError, sortProblems, type JobFileProblem } from './job-file-error.js';
import { isRecord, YamlText, type Scope } from './job-file-yaml.js';

export type { JobDraft } from './job-file-build.js';
export { JobFileError, formatProblem, type JobFileProblem } from './job-file-error.js';

/** A file's path (as the user gave it, used in messages) and its text. */
export interface SourceFile {
  path: string;
  text: string;
}

export interface JobFileOptions {
  /** Directory a relative `cwd` is resolved against: normally the job file's directory. */
  baseDir: string;
  /** What `~` in `cwd` stands for. */
  homeDir: string;
  /** `cwd` of a job whose header has none (already resolved); none when absent. */
  defaultCwd?: string;
  /** Header fields every job gets unless its own header sets them (e.g. a plan's defaults). */
  defaults?: Record<string, unknown>;
}

const SHAPE =
  'a job file starts with a --- line, YAML front matter, a closing --- line, then the instructions';
const FENCE = /^---[ \t]*\r?$/;

/** A job file cut at its fences; lines are 1-based file lines. */
interface FrontMatter {
  header: string;
  body: string;
  /** Line of the closing `---`. */
  closeLine: number;
}

/**
 * Cuts a job file into front matter and body. The body is everything after the newline that
 * ends the closing `---` line, kept byte for byte (CRLF, leading blank lines, later `---`).
 */
function splitFrontMatter(text: string): FrontMatter | JobFileProblem['message'] {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let start = 0;
  for (let line = 1; start <= source.length; line++) {
    const end = source.indexOf('\n', start);
    const content = source.slice(start, end === -1 ? source.length : end);
    const next = end === -1 ? source.length + 1 : end + 1;
    if (line === 1 && !FENCE.test(content)) return SHAPE;
    if (line > 1 && FENCE.test(content)) {
      const open = source.indexOf('\n') + 1;
      return {
        header: source.slice(open, start),
        body: next > source.length ? '' : source.slice(next),
        closeLine: line,
      };
    }
    start = next;
  }
  return `the front matter opened on line 1 has no closing --- line; ${SHAPE}`;
}

/** The file name without directory and extension, as key characters. */
export function fileStem(path: string): string {
  return keySafe(posix.basename(path).replace(/\.[^.]*$/, ''));
}

/** Reads one job file into built jobs, adding every problem found to `problems`. */
export function readJobFile(
  file: SourceFile,
  options: JobFileOptions & { fallbackKey?: string | null; defaultsScope?: Scope },
  problems: JobFileProblem[],
): BuiltJob[] {
  const split = splitFrontMatter(file.text);
  if (typeof split === 'string') {
    problems.push({ file: file.path, line: 1, field: null, message: split });
    return [];
  }
  const yaml = new YamlText(file.path, split.header, 2);
  if (yaml.problems.length > 0) {
    problems.push(...yaml.problems);
    return [];
  }
  const header = yaml.value ?? {};
  if (!isRecord(header)) {
    problems.push({
      file: file.path,
      line: yaml.lineOf([]),
      field: null,
      message: `the front matter must be a mapping of fields like "engine: shell", got ${Array.isArray(header) ? 'a list' : 'a single value'}; ${SHAPE}`,
    });
    return [];
  }
  const shell = (header.engine ?? options.defaults?.engine ?? 'shell') === 'shell';
  return buildJobs(
    {
      scope: { file: file.path, yaml, base: [] },
      header,
      body: split.body,
      bodyField: null,
      bodyLineOf: (index) => split.closeLine + 1 + index,
      emptyBodyMessage:
        'the job has no instructions after the front matter' +
        (shell ? '; for engine shell the body is the script to run' : ''),
      defaults: options.defaults ?? {},
      defaultsScope: options.defaultsScope ?? { file: file.path, yaml: null, base: ['defaults'] },
      fallbackKey: options.fallbackKey ?? null,
      matrixBaseKey: fileStem(file.path),
      extraFields: [],
      baseDir: options.baseDir,
      homeDir: options.homeDir,
      defaultCwd: options.defaultCwd,
      source: { file: file.path },
    },
    problems,
  );
}

/**
 * Parses one job file: Markdown with YAML front matter. Returns one draft per job (several
 * when the header has a `matrix`). Throws a {@link JobFileError} listing every problem.
 *
 * @example parseJobFile({ path: 'a.md', text: '---\nkey: a\n---\necho hi\n' }, { baseDir: '/w', homeDir: '/h' })
 */
export function parseJobFile(file: SourceFile, options: JobFileOptions): JobDraft[] {
  const problems: JobFileProblem[] = [];
  const jobs = readJobFile(file, options, problems);
  if (problems.length > 0) throw new JobFileError(sortProblems(problems));
  return jobs.map((j) => j.draft);
}

/**
 * Parses several job files as one batch. Every problem of every file is collected, plus keys
 * used twice across the batch; if there is any, a {@link JobFileError} lists them all and
 * nothing is returned. A dependency not found in the batch is left for the server, which
 * resolves it against stored jobs.
 */
export function parseJobFiles(
  files: SourceFile[],
  options: Omit<JobFileOptions, 'baseDir'> & { baseDirOf(path: string): string },
): JobDraft[] {
  const problems: JobFileProblem[] = [];
  const jobs = files.flatMap((file) =>
    readJobFile(file, { ...options, baseDir: options.baseDirOf(file.path) }, problems),
  );
  problems.push(...duplicateKeys(jobs));
  if (problems.length > 0) throw new JobFileError(sortProblems(problems));
  return jobs.map((j) => j.draft);
}

/** A problem at the second and later uses of a key, naming where it was first used. */
export function duplicateKeys(jobs: readonly BuiltJob[]): JobFileProblem[] {
  const first = new Map<string, BuiltJob['keyAt']>();
  const problems: JobFileProblem[] = [];
  for (const { draft, keyAt } of jobs) {
    const key = draft.key ?? null;
    if (key === null) continue;
    const earlier = first.get(key);
    if (earlier === undefined) first.set(key, keyAt);
    else
      problems.push({
        ...keyAt,
        message: `the key '${key}' is also used at ${earlier.file}${earlier.line === null ? '' : `:${earlier.line}`}; every job of a batch needs its own key`,
      });
  }
  return problems;
}
