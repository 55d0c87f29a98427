/**
 * The one place Fleet API URLs are built. A route is named by its template
 * (`/v1/jobs/:id/events`); the same template labels errors, so a message says which route
 * failed without echoing ids or query strings.
 */

/** A query parameter value; `undefined` and `null` leave the parameter out, arrays join with ",". */
export type QueryValue = string | number | boolean | readonly string[] | null | undefined;
export type Query = Readonly<Record<string, QueryValue>>;
export type PathParams = Readonly<Record<string, string | number>>;

/** A checked server address. */
export interface BaseUrl {
  /** `http://127.0.0.1:7070` */
  origin: string;
  /** A path prefix without trailing slash (`/fleet` behind a proxy), usually "". */
  prefix: string;
  /** What to show a person: `origin + prefix`. */
  display: string;
}

/**
 * Checks and normalizes a server address: http(s) only; no user info (use a token), query or
 * fragment; a trailing slash is dropped. A path prefix is kept, for a server behind a proxy.
 *
 * @throws TypeError when `raw` is not such a URL.
 */
export function parseBaseUrl(raw: string): BaseUrl {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`server URL "${raw}" is not a URL; expected e.g. http://127.0.0.1:7070`);
  }
  const problem =
    url.protocol !== 'http:' && url.protocol !== 'https:'
      ? 'must start with http:// or https://'
      : url.username !== '' || url.password !== ''
        ? 'must not contain a user name or password (pass a token instead)'
        : url.search !== '' || url.hash !== ''
          ? 'must not have a query or fragment'
          : null;
  const prefix = url.pathname.replace(/\/+$/, '');
  if (problem !== null) throw new TypeError(`server URL "${url.origin}${prefix}" ${problem}`);
  return { origin: url.origin, prefix, display: `${url.origin}${prefix}` };
}

/** Path segments that a URL parser would resolve away (`..`, `%2e`) instead of sending. */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/** Encodes one path segment, refusing values that are empty or would change the path. */
export function encodeSegment(value: string | number, name = 'segment'): string {
  const s = String(value);
  if (s === '' || DOT_SEGMENT.test(s))
    throw new TypeError(`${name} "${s}" cannot be used in a URL path`);
  return encodeURIComponent(s);
}

/**
 * Fills a route template: each `:name` becomes the encoded `params[name]`.
 *
 * @example fillPath('/v1/jobs/:id/cancel', { id: 'a/b' }) // '/v1/jobs/a%2Fb/cancel'
 */
export function fillPath(template: string, params: PathParams = {}): string {
  return template.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new TypeError(`route ${template} needs a value for :${name}`);
    return encodeSegment(value, name);
  });
}

/** `a=1&b=x%2Cy`: parameters in the given order, values percent-encoded, empty ones left out. */
export function encodeQuery(query: Query = {}): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    const text = Array.isArray(value) ? value.join(',') : String(value);
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(text)}`);
  }
  return parts.join('&');
}

/** The full URL of a route on the server at `base`. */
export function buildUrl(
  base: BaseUrl,
  template: string,
  params?: PathParams,
  query?: Query,
): string {
  const search = encodeQuery(query);
  return `${base.origin}${base.prefix}${fillPath(template, params)}${search === '' ? '' : `?${search}`}`;
}

/** The factory socket's URL (`ws://…/v1/factory`, `wss://` behind https) on the server at `base`. */
export function factorySocketUrl(base: BaseUrl, query?: Query): string {
  return buildUrl(base, '/v1/factory', undefined, query).replace(/^http/, 'ws');
}
