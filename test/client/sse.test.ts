import { describe, expect, it } from 'vitest';
import { SseParser, type SseMessage } from '../../src/client/index.js';

const bytes = (s: string) => new TextEncoder().encode(s);

/** Feeds `text` to a fresh parser in pieces of `size` bytes. */
function parse(text: string, size = Infinity): SseMessage[] {
  const parser = new SseParser();
  const all = bytes(text);
  const out: SseMessage[] = [];
  const step = Number.isFinite(size) ? size : all.length || 1;
  for (let i = 0; i < all.length; i += step) out.push(...parser.push(all.subarray(i, i + step)));
  out.push(...parser.end());
  return out;
}

describe('SSE parser', () => {
  const stream =
    '\uFEFF: ping\n\n' +
    'id: 1\r\nevent: log\r\ndata: {"a":"é—ü"}\r\n\r\n' +
    'id: 2\revent: stage\rdata: one\rdata: two\r\r' +
    'retry: 1500\n\n' +
    'data:no-space\nid\n\n' +
    'event: end\ndata: {"stage":"succeeded"}\n\n' +
    'id: 9\nevent: cut\ndata: partial';

  const expected: SseMessage[] = [
    { event: 'log', data: '{"a":"é—ü"}', id: '1' },
    { event: 'stage', data: 'one\ntwo', id: '2' },
    { event: 'message', data: 'no-space', id: '' },
    { event: 'end', data: '{"stage":"succeeded"}', id: '' },
  ];

  it('parses fields, comments and every line ending; drops the unfinished last event', () => {
    expect(parse(stream)).toEqual(expected);
  });

  it('gives the same events however the bytes are split (inside CRLF or a character)', () => {
    for (const size of [1, 2, 3, 5, 7, 13]) expect(parse(stream, size)).toEqual(expected);
  });

  it('remembers the last id and the retry delay', () => {
    const parser = new SseParser();
    parser.push(bytes('id: 7\ndata: x\n\nretry: 1500\n\nretry: soon\n\n'));
    expect(parser.lastEventId).toBe('7');
    expect(parser.retryMs).toBe(1500);
  });

  it('does not dispatch an event without data', () => {
    expect(parse('event: nothing\n\nid: 3\n\n')).toEqual([]);
  });
});
