/** Reading causes out of errors thrown by Node, pg and better-sqlite3, for one-line messages. */

/** The error itself, then its `cause` chain and the members of an AggregateError. */
function* errorChain(err: unknown, depth = 0): Generator<unknown> {
  if (depth > 8 || err === undefined || err === null) return;
  yield err;
  if (err instanceof AggregateError) {
    for (const inner of err.errors) yield* errorChain(inner, depth + 1);
  }
  if (err instanceof Error) yield* errorChain(err.cause, depth + 1);
}

/** The first `code` found along the chain: an errno (`ECONNREFUSED`), SQLSTATE or SQLite code. */
export function errorCode(err: unknown): string | undefined {
  for (const e of errorChain(err)) {
    if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') {
      return e.code;
    }
  }
  return undefined;
}

/** A one-line description of an error (Node's AggregateError often has an empty message). */
export function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.message === '') {
    const inner = err.errors.map(errorText).filter((text) => text !== '');
    if (inner.length > 0) return [...new Set(inner)].join('; ');
  }
  const text = err instanceof Error ? err.message || err.name : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim() || (errorCode(err) ?? 'unknown error');
}
