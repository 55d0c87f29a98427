import { FleetError } from './errors.js';

/** One thing wrong with a job file or a plan, located as precisely as the input allows. */
export interface JobFileProblem {
  /** The file as given by the caller. */
  file: string;
  /** 1-based line in `file`, or null when no line can be named (e.g. a missing closing fence). */
  line: number | null;
  /** The offending field, e.g. `timeout`, `env.PORT`, `phases[1].gate.checks[0].run`. */
  field: string | null;
  message: string;
}

/**
 * Job files or a plan could not be read. `problems` lists every problem found (not only the
 * first); the message prints one per line as `file:line: field: message`, ready for a terminal.
 */
export class JobFileError extends FleetError {
  readonly code = 'invalid_input';
  readonly problems: JobFileProblem[];

  constructor(problems: JobFileProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'JobFileError';
    this.problems = problems;
  }
}

/** `file:line: field: message`, leaving out the line or the field when unknown. */
export function formatProblem(problem: JobFileProblem): string {
  const where = problem.line === null ? problem.file : `${problem.file}:${problem.line}`;
  return problem.field === null
    ? `${where}: ${problem.message}`
    : `${where}: ${problem.field}: ${problem.message}`;
}

/** Problems grouped by file (in order of first appearance), each file's by line. */
export function sortProblems(problems: readonly JobFileProblem[]): JobFileProblem[] {
  const files = [...new Set(problems.map((p) => p.file))];
  return [...problems].sort(
    (a, b) => files.indexOf(a.file) - files.indexOf(b.file) || (a.line ?? 0) - (b.line ?? 0),
  );
}
