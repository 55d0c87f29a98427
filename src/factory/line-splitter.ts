import { StringDecoder } from 'node:string_decoder';

/** Lines longer than this are cut into pieces of this many characters (1 MiB of text). */
export const DEFAULT_MAX_LINE_CHARS = 1024 * 1024;

/**
 * Turns a stream of byte chunks into lines. A line may arrive across many chunks (partial
 * lines are held until their newline), a multi-byte UTF-8 character may be split between
 * chunks, and `\r\n` ends a line like `\n`. A line longer than `maxLineChars` is emitted in
 * pieces of at most `maxLineChars` characters, so one runaway line cannot grow memory without
 * bound. `end()` emits the last line when the stream did not end with a newline.
 *
 * @example
 * const lines: string[] = [];
 * const split = new LineSplitter((line) => lines.push(line));
 * split.write(Buffer.from('ab')); split.write(Buffer.from('c\nd')); split.end();
 * // lines: ['abc', 'd']
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineChars: number = DEFAULT_MAX_LINE_CHARS,
  ) {
    if (!Number.isInteger(maxLineChars) || maxLineChars < 2)
      throw new RangeError(`maxLineChars must be an integer >= 2, got ${maxLineChars}`);
  }

  write(chunk: Buffer | string): void {
    this.push(typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
  }

  /** Flushes what is left: the last line, when the stream did not end with a newline. */
  end(): void {
    this.push(this.decoder.end());
    if (this.pending.length > 0) this.emit(this.pending);
    this.pending = '';
  }

  private push(text: string): void {
    if (text.length === 0) return;
    let data = this.pending + text;
    let start = 0;
    for (;;) {
      const nl = data.indexOf('\n', start);
      if (nl === -1) break;
      this.emit(data.slice(start, nl));
      start = nl + 1;
    }
    data = data.slice(start);
    while (data.length > this.maxLineChars) {
      let cut = this.maxLineChars;
      // Never split a UTF-16 surrogate pair.
      const code = data.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
      this.onLine(data.slice(0, cut));
      data = data.slice(cut);
    }
    this.pending = data;
  }

  private emit(line: string): void {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (text.length <= this.maxLineChars) {
      this.onLine(text);
      return;
    }
    this.pending = '';
    this.push(text);
    const rest = this.pending;
    this.pending = '';
    if (rest.length > 0) this.onLine(rest);
  }
}
