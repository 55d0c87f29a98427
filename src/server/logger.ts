import { pino, type Logger, type LevelWithSilent } from 'pino';

/** Log paths that may carry a credential; pino replaces their values before writing. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  'headers.authorization',
  'authorization',
  'secret',
  'token.secret',
];

export interface ServerLoggerOptions {
  /** Where each JSON line goes (the CLI passes standard error). */
  write: (line: string) => void;
  level?: LevelWithSilent;
}

/** The server's structured log: one JSON object per line, credentials redacted. */
export function createServerLogger(options: ServerLoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    { write: options.write },
  );
}
