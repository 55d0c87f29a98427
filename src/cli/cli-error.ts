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
