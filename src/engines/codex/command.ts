import { InvalidInputError } from '../../core/index.js';
import type { EngineCommand, EngineRunInput } from '../engine.js';

/**
 * The command line for one `codex exec` run, as observed with Codex CLI 0.169.0
 * (`/work/shared/AGENT-CLIS.md`):
 *
 *   codex exec --json --skip-git-repo-check <mode> [-m MODEL] [resume THREAD_ID] PROMPT
 *
 * `<mode>` is `--dangerously-bypass-approvals-and-sandbox` for a yolo job. Otherwise the agent
 * runs sandboxed and can never stop to ask: `-c approval_policy="never"` (a command the sandbox
 * blocks fails and the model sees the failure, instead of the process waiting for an approval
 * nobody can give) and `-c sandbox_mode="workspace-write"` (it may edit the worktree, no
 * network). These are config keys set through `-c`, the override mechanism observed to work
 * here; `exec` in this version has no `--full-auto`, and the flag spellings of
 * `--sandbox`/`--ask-for-approval` differ between versions, so the config keys are the sturdier
 * choice. Where the OS sandbox (Landlock/bubblewrap) is unavailable, sandboxed commands fail
 * rather than hang.
 *
 * Stdin is closed: with an open pipe `codex exec` waits for input. A prompt that starts with
 * `-` (a Markdown list, say) goes after `--` so it is not read as a flag. `maxTurns` has no
 * Codex equivalent (`exec` runs one turn) and is ignored. Provider settings are not here: see
 * {@link codexProviderArgs}.
 */
export function codexCommand(input: EngineRunInput): EngineCommand {
  const args = ['exec', '--json', '--skip-git-repo-check'];
  if (input.yolo) args.push('--dangerously-bypass-approvals-and-sandbox');
  else args.push('-c', 'approval_policy="never"', '-c', 'sandbox_mode="workspace-write"');
  if (input.model) args.push('-m', input.model);
  if (input.resumeSessionId) args.push('resume', input.resumeSessionId);
  if (input.prompt.startsWith('-')) args.push('--');
  args.push(input.prompt);
  return { command: 'codex', args, env: {}, stdin: 'ignore' };
}

/** A custom model provider for Codex (an OpenAI Responses-compatible endpoint). */
export interface CodexProvider {
  /** Provider id, used as a TOML key: letters, digits, `_` and `-`. */
  name: string;
  /** The endpoint including `/v1`, e.g. `http://127.0.0.1:8080/v1`. */
  baseUrl: string;
  /** The environment variable that holds the API key (the runner sets it in the env). */
  envKey: string;
}

const TOML_BARE_KEY = /^[A-Za-z0-9_-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `-c` flags that point Codex at a custom provider. Codex ignores `OPENAI_BASE_URL`; a provider
 * must be configured, either in `$CODEX_HOME/config.toml` or with these flags. The runner adds
 * them to the command's args after `exec` (an `EngineRunInput` carries no provider).
 *
 * @example
 * codexProviderArgs({ name: 'fleet', baseUrl: 'http://127.0.0.1:8080/v1', envKey: 'FLEET_KEY' })
 * // ['-c', 'model_provider="fleet"', '-c', 'model_providers.fleet.name="fleet"', …]
 */
export function codexProviderArgs(provider: CodexProvider): string[] {
  const issues = [];
  if (!TOML_BARE_KEY.test(provider.name))
    issues.push({ path: 'name', message: 'expected letters, digits, "_" or "-"' });
  if (provider.baseUrl === '') issues.push({ path: 'baseUrl', message: 'expected a URL' });
  if (!ENV_NAME.test(provider.envKey))
    issues.push({ path: 'envKey', message: 'expected an environment variable name' });
  if (issues.length > 0) throw new InvalidInputError('codex provider', issues);

  const key = `model_providers.${provider.name}`;
  // JSON string syntax is valid TOML basic-string syntax; `-c` values are parsed as TOML.
  const q = (s: string): string => JSON.stringify(s);
  return [
    '-c',
    `model_provider=${q(provider.name)}`,
    // `name` is a required field of a provider table.
    '-c',
    `${key}.name=${q(provider.name)}`,
    '-c',
    `${key}.base_url=${q(provider.baseUrl)}`,
    '-c',
    `${key}.wire_api="responses"`,
    '-c',
    `${key}.env_key=${q(provider.envKey)}`,
  ];
}
