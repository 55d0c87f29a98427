import { LineCounter, Scalar, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import type { JobFileProblem } from './job-file-error.js';

/** A path into parsed YAML: mapping keys and list indexes. */
export type YamlPath = readonly (string | number)[];

/**
 * YAML text parsed with positions, so a problem at any path can name its line in the file.
 * `firstLine` is the file line the text starts on (2 for front matter after a `---` line).
 */
export class YamlText {
  readonly file: string;
  readonly value: unknown;
  readonly problems: JobFileProblem[] = [];
  private readonly doc: Document;
  private readonly lines = new LineCounter();
  private readonly firstLine: number;

  constructor(file: string, text: string, firstLine = 1) {
    this.file = file;
    this.firstLine = firstLine;
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false });
    const textLines = text.split('\n');
    for (const error of this.doc.errors) {
      const { line } = this.lines.linePos(error.pos[0]);
      // `[build-${service}]` is a YAML error: `{` opens a flow mapping inside a flow list.
      const hint = textLines[line - 1]?.includes('${')
        ? '; inside [ ] or { }, quote values holding ${...}, like ["build-${service}"]'
        : '';
      this.problems.push({
        file,
        line: this.lineAt(error.pos[0]),
        field: null,
        message: `invalid YAML: ${error.message}${hint}`,
      });
    }
    this.value = this.problems.length === 0 ? this.doc.toJS({ maxAliasCount: 100 }) : undefined;
  }

  /**
   * The file line of the value at `path` (of its key when `at` is 'key', or when the value is a
   * list or mapping that starts on a later line); the nearest enclosing line when `path` is
   * absent; null when the text has no such place at all.
   */
  lineOf(path: YamlPath, at: 'key' | 'value' = 'value'): number | null {
    let node: unknown = this.doc.contents;
    let line = node === null ? null : this.nodeLine(node);
    for (const segment of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyName(p.key) === String(segment));
        if (pair === undefined) return line;
        line = this.nodeLine(pair.key) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
        node = node.items[segment];
        line = this.nodeLine(node) ?? line;
      } else {
        return line;
      }
    }
    if (at === 'value' && isScalar(node)) return this.nodeLine(node) ?? line;
    return line;
  }

  /** The file line of line `index` (0-based) of a block scalar (`|`) at `path`, for bodies. */
  blockLineOf(path: YamlPath, index: number): number | null {
    const node = this.doc.getIn(path, true);
    const start = this.lineOf(path);
    if (start === null) return null;
    return isScalar(node) &&
      (node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED)
      ? start + 1 + index
      : start;
  }

  private nodeLine(node: unknown): number | null {
    const range = (node as Node | null)?.range;
    return range === undefined || range === null ? null : this.lineAt(range[0]);
  }

  private lineAt(offset: number): number {
    return this.lines.linePos(offset).line + this.firstLine - 1;
  }
}

function keyName(key: unknown): string | null {
  return isScalar(key) ? String(key.value) : null;
}

/** `phases[1].gate.checks[0].run` for `['phases', 1, 'gate', 'checks', 0, 'run']`. */
export function formatPath(path: YamlPath): string | null {
  let out = '';
  for (const segment of path)
    out += typeof segment === 'number' ? `[${segment}]` : out === '' ? segment : `.${segment}`;
  return out === '' ? null : out;
}

/** A value as a message shows it: `'soon'`, `90`, `true`, `a list`, `a mapping`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'string') {
    const short = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return `'${short.replace(/\n/g, '\\n')}'`;
  }
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** True for a YAML mapping turned into a plain object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date)
  );
}

/** "unknown field" with a suggestion when a known name is within two edits of `name`. */
export function unknownFieldMessage(name: string, known: readonly string[]): string {
  let best: string | null = null;
  // Two edits for longer names ("timout"), one for short ones ("foo" is not "yolo").
  let bestDistance = Math.min(2, Math.max(1, Math.floor(name.length / 3))) + 1;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best === null
    ? `unknown field; known fields are ${known.join(', ')}`
    : `unknown field; did you mean "${best}"?`;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Where the fields being read live: a file, its parsed YAML (null when the fields did not come
 * from YAML with positions) and the path of the fields inside it.
 */
export interface Scope {
  file: string;
  yaml: YamlText | null;
  base: YamlPath;
}

/** A problem at `path` below `scope`, with its line. */
export function problemAt(
  scope: Scope,
  path: YamlPath,
  message: string,
  at: 'key' | 'value' = 'value',
): JobFileProblem {
  const full = [...scope.base, ...path];
  return {
    file: scope.file,
    line: scope.yaml === null ? null : scope.yaml.lineOf(full, at),
    field: formatPath(full),
    message,
  };
}
