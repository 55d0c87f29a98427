import type { EventInput } from '../core/index.js';
import type {
  Engine,
  EngineCommand,
  EngineParser,
  EngineRunInput,
  EngineSummary,
} from './engine.js';

/**
 * Runs the job body as a bash script: `bash -c -- <body>`, with bash's default semantics (no
 * `-e`, no `pipefail`), so a script behaves as it would when the user runs it by hand; a script
 * that wants to stop at the first failure says `set -euo pipefail` itself. The exit code decides
 * the outcome. Model, yolo, resume and max turns mean nothing here and are ignored.
 *
 * `--` because bash reads options up to the first non-option argument even after `-c`: a body
 * starting with "-" ("--version", "- x") would be taken for options. The body travels as one
 * argument, so Linux caps it at 128 KiB (MAX_ARG_STRLEN).
 *
 * @example
 * shell.command({ prompt: 'npm ci && npm test', yolo: false });
 * // bash -c -- 'npm ci && npm test'
 */
export const shell: Engine = {
  name: 'shell',
  binary: 'bash',
  versionArgs: ['--version'],
  command: shellCommand,
  parser: createShellParser,
};

function shellCommand(input: EngineRunInput): EngineCommand {
  return { command: 'bash', args: ['-c', '--', input.prompt], env: {}, stdin: 'ignore' };
}

/** Every stdout line is a `log` line; the agent is `acting` while it prints. */
function createShellParser(): EngineParser {
  return {
    parse: (line) => ({ events: [logEvent('stdout', line)], state: 'acting' }),
    summary: (): EngineSummary => ({ insights: {}, sessionId: null, ok: null, error: null }),
  };
}

/**
 * The event for one stderr line of a shell job (the parser sees stdout only).
 *
 * @example
 * shellStderrEvent('rm: cannot remove x'); // { type: 'log', data: { stream: 'stderr', line: … } }
 */
export function shellStderrEvent(line: string): EventInput {
  return logEvent('stderr', line);
}

function logEvent(stream: 'stdout' | 'stderr', line: string): EventInput {
  return { type: 'log', data: { stream, line } };
}
