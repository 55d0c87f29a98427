import { describe, expect, it } from 'vitest';
import {
  buildUrl,
  encodeQuery,
  encodeSegment,
  fillPath,
  parseBaseUrl,
} from '../../src/client/index.js';

describe('client URLs', () => {
  it('normalizes the server address and keeps a path prefix', () => {
    expect(parseBaseUrl('http://127.0.0.1:7070')).toEqual({
      origin: 'http://127.0.0.1:7070',
      prefix: '',
      display: 'http://127.0.0.1:7070',
    });
    expect(parseBaseUrl('https://example.com/fleet//')).toMatchObject({
      prefix: '/fleet',
      display: 'https://example.com/fleet',
    });
  });

  it('refuses addresses it cannot use, without echoing a password', () => {
    expect(() => parseBaseUrl('localhost:7070')).toThrow(/must start with http:\/\/ or https/);
    expect(() => parseBaseUrl('127.0.0.1:7070')).toThrow(/is not a URL; expected e.g. http:/);
    expect(() => parseBaseUrl('not a url')).toThrow(/is not a URL/);
    expect(() => parseBaseUrl('http://h:7070/?x=1')).toThrow(/query or fragment/);
    let message = '';
    try {
      parseBaseUrl('http://me:hunter2@h:7070');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/user name or password/);
    expect(message).not.toContain('hunter2');
  });

  it('encodes path segments and refuses ones that would change the path', () => {
    expect(fillPath('/v1/jobs/:id/cancel', { id: 'a/b c?#' })).toBe(
      '/v1/jobs/a%2Fb%20c%3F%23/cancel',
    );
    expect(fillPath('/v1/artifacts/:id', { id: 'ünï' })).toBe('/v1/artifacts/%C3%BCn%C3%AF');
    for (const bad of ['', '.', '..', '%2e', '.%2E'])
      expect(() => encodeSegment(bad, 'id')).toThrow(/cannot be used in a URL path/);
    expect(() => fillPath('/v1/jobs/:id', {})).toThrow(/needs a value for :id/);
  });

  it('encodes query values, joins lists and leaves out empty ones', () => {
    expect(
      encodeQuery({
        stage: ['queued', 'blocked'],
        key: 'a&b=c d',
        limit: 5,
        follow: true,
        after: undefined,
        runId: null,
      }),
    ).toBe('stage=queued%2Cblocked&key=a%26b%3Dc%20d&limit=5&follow=true');
    expect(encodeQuery({})).toBe('');
  });

  it('builds full URLs under the prefix', () => {
    const base = parseBaseUrl('https://example.com/fleet/');
    expect(buildUrl(base, '/v1/jobs/:id/events', { id: 'j 1' }, { after: 3 })).toBe(
      'https://example.com/fleet/v1/jobs/j%201/events?after=3',
    );
    expect(buildUrl(parseBaseUrl('http://h:1'), '/healthz')).toBe('http://h:1/healthz');
  });
});
