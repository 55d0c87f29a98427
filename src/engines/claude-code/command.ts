import type { EngineCommand, EngineRunInput } from '../engine.js';

/**
 * Keeps an unattended run quiet and offline apart from the model endpoint: no update checks, no
 * telemetry or error reports, no other non-essential requests (AGENT-CLIS.md).
 */
const QUIET_ENV: Record<string, string> = {
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_ERROR_REPORTING: '1',
};

/**
 * The command line for one headless Claude Code run, as observed with 2.1.197:
 *
 *   claude -p --output-format stream-json --verbose [--model M] [--max-turns N] <permissions>
 *          [--resume SESSION_ID] -- PROMPT
 *
 * `--verbose` is required by `-p` with `stream-json`. Permissions:
 * - yolo: `--dangerously-skip-permissions`, with `IS_SANDBOX=1` in the environment, because as
 *   root the CLI refuses that flag otherwise (it prints an error and runs nothing).
 * - otherwise `--permission-mode dontAsk`: the mode that never prompts. A tool call not already
 *   allowed by the user's or project's permission rules is denied at once; the model gets the
 *   denial as an error tool_result and carries on or stops, and the `result` line lists it in
 *   `permission_denials`. Observed on 2.1.197 with stdin closed: `dontAsk` denies Bash with an
 *   explicit "running in don't ask mode" message. `default` (and `acceptEdits`, for what it does
 *   not auto-accept) is built around asking a person; headless it happened to deny too, with a
 *   misleading reason, but it is not specified to, and a run that waits for an answer nobody
 *   can give would hang until the job's timeout. `plan` would never act at all.
 *
 * The prompt goes last, after `--`: a prompt starting with "-" (a Markdown list, "--model is…")
 * is otherwise taken for an option ("error: unknown option"). It travels as one argument, so
 * Linux caps it at 128 KiB (MAX_ARG_STRLEN). Stdin is closed: `-p` then reads no input. A resumed
 * session must be started from the same cwd as the first run, or the CLI answers "No
 * conversation found".
 */
export function claudeCodeCommand(input: EngineRunInput): EngineCommand {
  const args = ['-p', '--output-format', 'stream-json', '--verbose'];
  if (input.model !== undefined) args.push('--model', input.model);
  if (input.maxTurns !== undefined) args.push('--max-turns', String(input.maxTurns));
  if (input.yolo) args.push('--dangerously-skip-permissions');
  else args.push('--permission-mode', 'dontAsk');
  if (input.resumeSessionId !== undefined) args.push('--resume', input.resumeSessionId);
  args.push('--', input.prompt);
  const env = input.yolo ? { ...QUIET_ENV, IS_SANDBOX: '1' } : { ...QUIET_ENV };
  return { command: 'claude', args, env, stdin: 'ignore' };
}
