/** Which of a child's output streams a line came from. */
export type ChildStream = 'stdout' | 'stderr';

/**
 * One line of a child's output as the supervisor forwards it, marked with the child's name. A
 * JSON object line (a pino log record) stays one JSON object, with a `child` field first, so
 * log tools still parse it; any other line gets a `[name] ` prefix.
 *
 * @example formatChildLine('server', '{"level":30,"msg":"hi"}') // '{"child":"server","level":30,"msg":"hi"}'
 * @example formatChildLine('factory', 'control socket /tmp/f.sock') // '[factory] control socket /tmp/f.sock'
 */
export function formatChildLine(name: string, line: string): string {
  if (isJsonObject(line)) {
    const rest = line.trim().slice(1).trimStart();
    const field = `"child":${JSON.stringify(name)}`;
    return rest === '}' ? `{${field}}` : `{${field},${rest}`;
  }
  return `[${name}] ${line}`;
}

function isJsonObject(line: string): boolean {
  if (!line.trimStart().startsWith('{')) return false;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** One line of a child's output and the stream it came from. */
export interface ChildLine {
  stream: ChildStream;
  line: string;
}

/** The last `size` lines a child wrote, to explain why it exited. */
export class LineTail {
  private readonly lines: ChildLine[] = [];

  constructor(private readonly size = 50) {}

  push(line: ChildLine): void {
    this.lines.push(line);
    if (this.lines.length > this.size) this.lines.shift();
  }

  get(): readonly ChildLine[] {
    return [...this.lines];
  }
}
