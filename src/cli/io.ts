/**
 * What a command may use of its process. `main.ts` fills it from `process`; everything below
 * it takes this instead, so commands can run in tests without touching the real process.
 */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths in options and environment variables are resolved against. */
  readonly cwd: string;
  /** Writes to standard output, as is (no newline added). */
  out(text: string): void;
  /** Writes to standard error, as is (no newline added). */
  err(text: string): void;
  /** Whether standard output / error is a terminal (colours, redrawing); false when unset. */
  readonly isTTY?: { readonly out: boolean; readonly err: boolean };
}
