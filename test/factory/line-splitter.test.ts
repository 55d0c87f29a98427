import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/factory/line-splitter.js';

function split(chunks: (string | Buffer)[], max?: number): string[] {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), max);
  for (const c of chunks) s.write(c);
  s.end();
  return lines;
}

describe('LineSplitter', () => {
  it('joins partial lines across chunks and flushes the last line at end', () => {
    expect(split(['ab', 'c\nd', 'e\n\nf'])).toEqual(['abc', 'de', '', 'f']);
    expect(split(['a\n'])).toEqual(['a']);
    expect(split([])).toEqual([]);
  });

  it('treats \\r\\n as a line end', () => {
    expect(split(['a\r', '\nb\r\n'])).toEqual(['a', 'b']);
  });

  it('keeps a UTF-8 character split between chunks whole', () => {
    const bytes = Buffer.from('é€😀\n');
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    expect(split(chunks)).toEqual(['é€😀']);
  });

  it('cuts very long lines into pieces of at most maxLineChars, losing nothing', () => {
    const long = 'x'.repeat(25);
    expect(split([long.slice(0, 7), long.slice(7), '\nafter\n'], 10)).toEqual([
      'x'.repeat(10),
      'x'.repeat(10),
      'x'.repeat(5),
      'after',
    ]);
    // One chunk holding a complete long line.
    expect(split([`${'y'.repeat(21)}\n`], 10)).toEqual(['y'.repeat(10), 'y'.repeat(10), 'y']);
    // Without a newline at all.
    expect(split(['z'.repeat(12)], 10)).toEqual(['z'.repeat(10), 'zz']);
  });

  it('does not split a surrogate pair at the cut', () => {
    const lines = split([`${'a'.repeat(9)}😀b\n`], 10);
    expect(lines.join('')).toBe(`${'a'.repeat(9)}😀b`);
    expect(lines[0]).toBe('a'.repeat(9));
  });

  it('rejects a useless maximum', () => {
    expect(() => new LineSplitter(() => {}, 1)).toThrow(RangeError);
  });
});
