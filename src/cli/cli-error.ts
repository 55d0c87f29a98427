/**
 * An error meant for the person at the terminal: its message is one line that says what went
 * wrong and what to do next. The CLI prints it without a stack trace (unless FLEET_DEBUG=1).
 */
export class CliError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
  }
}

/**
 * `text` as a whole number from `min` to `max`, for a numeric flag.
 *
 * @throws CliError naming the flag, the range and what was given.
 * @example
 * wholeNumber('--seats', '4', 1, 10_000); // 4
 */
export function wholeNumber(flag: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new CliError(`${flag} must be a whole number from ${min} to ${max}, not "${text}"`);
  return n;
}
