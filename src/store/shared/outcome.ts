import type { Outcome } from '../port.js';

/** The value of a one-item batch outcome, or its error thrown. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
