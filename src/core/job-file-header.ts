import { parseDuration } from './duration.js';
import type { JobFileProblem } from './job-file-error.js';
import { describeValue, isRecord, problemAt, type Scope, type YamlPath } from './job-file-yaml.js';
import { JobSpec } from './schemas/job.js';

/** Reports a problem at a path relative to the field being read. */
type Report = (path: YamlPath, message: string) => void;
/** Reads one header value; returns undefined after reporting when the value is wrong. */
type Reader<T> = (value: unknown, report: Report) => T | undefined;

const KEY_RULE =
  'a key of letters, digits, "_", ".", ":", "/" or "-", starting with a letter or digit, at most 200 characters';

/** True when `key` is a valid job key. */
export function isJobKey(key: string): boolean {
  return JobSpec.shape.key.safeParse(key).success;
}

const text =
  (expected = 'a non-empty string', max = Infinity): Reader<string> =>
  (value, report) => {
    if (typeof value === 'string' && value.trim() !== '' && value.length <= max) return value;
    report([], `expected ${expected}, got ${describeValue(value)}`);
    return undefined;
  };

const jobKey: Reader<string> = (value, report) => {
  if (typeof value === 'string' && isJobKey(value)) return value;
  report([], `expected ${KEY_RULE}, got ${describeValue(value)}`);
  return undefined;
};

const int =
  (min: number, max: number, expected: string): Reader<number> =>
  (value, report) => {
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max)
      return value;
    report([], `expected ${expected}, got ${describeValue(value)}`);
    return undefined;
  };

const bool: Reader<boolean> = (value, report) => {
  if (typeof value === 'boolean') return value;
  report([], `expected true or false, got ${describeValue(value)}`);
  return undefined;
};

const stringList =
  (example: string, acceptSingle = false): Reader<string[]> =>
  (value, report) => {
    if (acceptSingle && typeof value === 'string') value = [value];
    if (!Array.isArray(value)) {
      report([], `expected a list like ${example}, got ${describeValue(value)}`);
      return undefined;
    }
    let ok = true;
    value.forEach((item, i) => {
      if (typeof item === 'string' && item.trim() !== '') return;
      report([i], `expected a non-empty string, got ${describeValue(item)}`);
      ok = false;
    });
    return ok ? (value as string[]) : undefined;
  };

const duration: Reader<number> = (value, report) => {
  let ms: number | null = null;
  if (typeof value === 'string')
    try {
      ms = parseDuration(value);
    } catch {
      ms = null;
    }
  if (ms !== null && ms > 0) return ms;
  report(
    [],
    ms === 0
      ? `expected a duration longer than 0s, got ${describeValue(value)}`
      : `expected a duration like 90s or 4h, got ${describeValue(value)}`,
  );
  return undefined;
};

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

const timestamp: Reader<number> = (value, report) => {
  const ms =
    value instanceof Date
      ? value.getTime()
      : typeof value === 'string' && ISO_DATE_TIME.test(value)
        ? Date.parse(value)
        : NaN;
  if (Number.isInteger(ms) && ms >= 0) return ms;
  report(
    [],
    `expected an ISO 8601 date-time with a time zone, like 2025-06-01T09:00:00Z, got ${describeValue(value)}`,
  );
  return undefined;
};

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const envMap: Reader<Record<string, string>> = (value, report) => {
  if (!isRecord(value)) {
    report(
      [],
      `expected a mapping of variable names to strings, like {NODE_ENV: test}, got ${describeValue(value)}`,
    );
    return undefined;
  }
  let ok = true;
  for (const [name, item] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) {
      report(
        [name],
        'not an environment variable name: use letters, digits and "_", not starting with a digit',
      );
      ok = false;
    } else if (typeof item !== 'string') {
      report(
        [name],
        `expected a string, got ${describeValue(item)}; quote it: ${name}: "${String(item)}"`,
      );
      ok = false;
    }
  }
  return ok ? (value as Record<string, string>) : undefined;
};

const mapping: Reader<Record<string, unknown>> = (value, report) => {
  if (isRecord(value)) return value;
  report(
    [],
    `expected a mapping like {afterMs: 600000, policy: restart}, got ${describeValue(value)}`,
  );
  return undefined;
};

const approval: Reader<boolean> = (value, report) => {
  if (value === 'required' || value === 'auto') return value === 'required';
  report([], `expected 'required' or 'auto', got ${describeValue(value)}`);
  return undefined;
};

/** Every header field but `matrix` (read by the matrix expansion), with its reader. */
const READERS = {
  key: jobKey,
  engine: text('an engine name like shell or claude-code'),
  cwd: text('a directory path'),
  lock: text('a lock name (a non-empty string of at most 200 characters)', 200),
  timeout: duration,
  priority: int(-1000, 1000, 'a whole number from -1000 to 1000'),
  capabilities: stringList('[linux, node]'),
  deps: stringList('[build, test]'),
  verify: stringList('["npm test"]', true),
  fixAttempts: int(0, 100, 'a whole number from 0 to 100'),
  maxAttempts: int(1, 100, 'a whole number from 1 to 100'),
  env: envMap,
  profile: text('a profile name like backend-dev@3'),
  yolo: bool,
  setup: text('a shell command'),
  runAt: timestamp,
  model: text('a model name'),
  approval,
  stall: mapping,
  idempotencyKey: text('a non-empty string of at most 200 characters', 200),
} satisfies Record<string, Reader<unknown>>;

/** Names of the header fields of a job file, in the order the docs list them. */
export const HEADER_FIELDS = [...Object.keys(READERS), 'matrix'] as const;

/** The typed header of one job (after matrix expansion): each field present was valid. */
export type HeaderFields = {
  [K in keyof typeof READERS]?: Exclude<ReturnType<(typeof READERS)[K]>, undefined>;
};

/**
 * Reads header fields (names already checked to be known, `matrix` left out). `scopeOf` says
 * where each field was written, so a plan default that is wrong points at the plan.
 */
export function readHeader(
  header: Record<string, unknown>,
  scopeOf: (field: string) => Scope,
): { fields: HeaderFields; problems: JobFileProblem[] } {
  const fields: Record<string, unknown> = {};
  const problems: JobFileProblem[] = [];
  for (const [name, value] of Object.entries(header)) {
    const reader = (READERS as Record<string, Reader<unknown>>)[name];
    if (reader === undefined || value === null || value === undefined) continue;
    const scope = scopeOf(name);
    const result = reader(value, (path, message) =>
      problems.push(problemAt(scope, [name, ...path], message)),
    );
    if (result !== undefined) fields[name] = result;
  }
  return { fields: fields as HeaderFields, problems };
}
