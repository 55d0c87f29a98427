import type { JobFileProblem } from './job-file-error.js';
import { describeValue, isRecord, problemAt, type Scope, type YamlPath } from './job-file-yaml.js';

/** The most jobs one matrix may expand into. */
export const MAX_MATRIX_JOBS = 1000;

/** A valid matrix: variable names in file order, each with its values as text. */
export interface Matrix {
  names: string[];
  values: string[][];
}

const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** `${name}` (group 2), or `$${name}` (group 1 is `$`), which stands for a literal `${name}`. */
const REFERENCE = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Reads `matrix: { name: [v1, v2], … }`, reporting every problem; null when it is wrong. */
export function readMatrix(
  value: unknown,
  scope: Scope,
  problems: JobFileProblem[],
): Matrix | null {
  const before = problems.length;
  if (!isRecord(value) || Object.keys(value).length === 0) {
    problems.push(
      problemAt(
        scope,
        ['matrix'],
        `expected a mapping of variables to lists of values, like {service: [api, web]}, got ${isRecord(value) ? 'an empty mapping' : describeValue(value)}`,
      ),
    );
    return null;
  }
  const matrix: Matrix = { names: [], values: [] };
  for (const [name, list] of Object.entries(value)) {
    const at: YamlPath = ['matrix', name];
    if (!VARIABLE.test(name))
      problems.push(
        problemAt(
          scope,
          at,
          'a matrix variable name uses letters, digits and "_", not starting with a digit',
          'key',
        ),
      );
    if (!Array.isArray(list) || list.length === 0) {
      problems.push(
        problemAt(
          scope,
          at,
          `expected a non-empty list of values, like [api, web], got ${Array.isArray(list) ? 'an empty list' : describeValue(list)}`,
        ),
      );
      continue;
    }
    const values: string[] = [];
    list.forEach((item, i) => {
      if (['string', 'number', 'boolean'].includes(typeof item)) values.push(String(item));
      else
        problems.push(
          problemAt(
            scope,
            [...at, i],
            `expected a string, number or boolean, got ${describeValue(item)}`,
          ),
        );
    });
    const repeated = values.find((v, i) => values.indexOf(v) !== i);
    if (repeated !== undefined)
      problems.push(problemAt(scope, at, `the value '${repeated}' is listed twice`));
    matrix.names.push(name);
    matrix.values.push(values);
  }
  const size = matrix.values.reduce((n, v) => n * v.length, 1);
  if (problems.length === before && size > MAX_MATRIX_JOBS)
    problems.push(
      problemAt(
        scope,
        ['matrix'],
        `expands into ${size} jobs; at most ${MAX_MATRIX_JOBS} are allowed`,
        'key',
      ),
    );
  return problems.length === before ? matrix : null;
}

/** Every combination of values, the first variable outermost: one record per job. */
export function combinations(matrix: Matrix): Record<string, string>[] {
  let out: Record<string, string>[] = [{}];
  matrix.names.forEach((name, i) => {
    out = out.flatMap((combo) => matrix.values[i]!.map((value) => ({ ...combo, [name]: value })));
  });
  return out;
}

/** Replaces `${name}` by its value and `$${name}` by a literal `${name}`. */
export function substitute(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(REFERENCE, (whole, escape: string, name: string) =>
    escape === '$' ? `\${${name}}` : (vars[name] ?? whole),
  );
}

/** {@link substitute} in every string inside a value (list items, mapping values). */
export function substituteDeep(value: unknown, vars: Readonly<Record<string, string>>): unknown {
  if (typeof value === 'string') return substitute(value, vars);
  if (Array.isArray(value)) return value.map((item) => substituteDeep(item, vars));
  if (isRecord(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteDeep(v, vars)]));
  return value;
}

/** Names referenced as `${name}` in `text` (not `$${name}`) that are not in `known`. */
export function unknownReferences(text: string, known: readonly string[]): string[] {
  const out: string[] = [];
  for (const match of text.matchAll(REFERENCE))
    if (match[1] === '' && !known.includes(match[2]!) && !out.includes(match[2]!))
      out.push(match[2]!);
  return out;
}

/** Every string inside a value with its path, for checking references field by field. */
export function stringsIn(value: unknown, path: YamlPath = []): [YamlPath, string][] {
  if (typeof value === 'string') return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((item, i) => stringsIn(item, [...path, i]));
  if (isRecord(value)) return Object.entries(value).flatMap(([k, v]) => stringsIn(v, [...path, k]));
  return [];
}

/** The message for a `${name}` that names no matrix variable. */
export function unknownReferenceMessage(name: string, matrix: Matrix): string {
  return `\${${name}} is not a matrix variable (the matrix has ${matrix.names.join(', ')}); write $\${${name}} for a literal \${${name}}`;
}
