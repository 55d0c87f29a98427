import { describe, expect, it } from 'vitest';
import { formatChildLine, LineTail } from '../../src/supervisor/child-output.js';

describe('formatChildLine', () => {
  it('adds a child field to a JSON log line and keeps it one parseable object', () => {
    const line = formatChildLine('server', '{"level":30,"msg":"listening"}');
    expect(line).toBe('{"child":"server","level":30,"msg":"listening"}');
    expect(JSON.parse(line)).toEqual({ child: 'server', level: 30, msg: 'listening' });
    expect(formatChildLine('server', ' { } ')).toBe('{"child":"server"}');
  });

  it('prefixes any other line with the child’s name', () => {
    expect(formatChildLine('factory', 'control socket /tmp/f.sock')).toBe(
      '[factory] control socket /tmp/f.sock',
    );
    expect(formatChildLine('factory', '{not json')).toBe('[factory] {not json');
    expect(formatChildLine('factory', '[1,2]')).toBe('[factory] [1,2]');
    expect(formatChildLine('factory', '')).toBe('[factory] ');
  });
});

describe('LineTail', () => {
  it('keeps the last lines only', () => {
    const tail = new LineTail(2);
    for (const line of ['a', 'b', 'c']) tail.push({ stream: 'stdout', line });
    expect(tail.get().map((l) => l.line)).toEqual(['b', 'c']);
  });
});
