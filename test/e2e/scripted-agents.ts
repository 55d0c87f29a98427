import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import {
  SCRIPT_USAGE as ANTHROPIC_USAGE,
  startAnthropicServer,
} from '../helpers/model-servers/anthropic.js';
import {
  SCRIPT_USAGE as CHAT_USAGE,
  startOpenAIChatServer,
} from '../helpers/model-servers/openai-chat.js';
import {
  SCRIPT_USAGE as RESPONSES_USAGE,
  startOpenAIResponsesServer,
} from '../helpers/model-servers/openai-responses.js';

/**
 * The real agent CLIs' "create hello.txt" case, shared by the end-to-end tests that run them
 * through the factory (real-agents.test.ts) and through `fleet run` of a job file
 * (job-file-agents.test.ts): per engine a scripted model server on 127.0.0.1 playing a tool call
 * that writes hello.txt and then "done", the environment that points the CLI at it (to be passed
 * to the process that runs the agent: the factory hands its environment to its agents), the
 * model the job names, and the tokens the run must record for the two requests.
 */

export const CONTENT = 'hello from the scripted model\n';

/** What the run's insights must hold after the script's two model requests. */
export interface ExpectedTokens {
  tokensIn: number;
  tokensOut: number;
  tokensCached: number;
}

/**
 * The parent's environment without anything that could point an agent elsewhere (keys, base
 * URLs, config directories) or colour its output.
 */
export function cleanAgentEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(FLEET_|ANTHROPIC_|CLAUDE|OPENAI_|CODEX_|GEMINI_|GOOGLE_|PI_|FORCE_COLOR$)/.test(k))
      continue;
    out[k] = v;
  }
  return out;
}

/**
 * Asserts that `events` hold `expected` types in this order (other events may come between
 * them).
 */
export function expectInOrder(
  events: { type: string }[],
  expected: string[],
  explain: string,
): void {
  const types = events.map((e) => e.type);
  let from = 0;
  for (const t of expected) {
    const at = types.indexOf(t, from);
    expect(
      at,
      `no ${t} after index ${from} in ${types.join(', ')}\n${explain}`,
    ).toBeGreaterThanOrEqual(0);
    from = at + 1;
  }
}

/**
 * Claude Code: a Write of hello.txt (a relative path, which Claude Code resolves against its
 * cwd, the job's worktree: only known once the factory made it), against the Anthropic
 * Messages server. Claude Code reports its own cost.
 */
export async function scriptedClaude(home: string) {
  const model = await startAnthropicServer([
    [
      { type: 'text', text: "I'll create hello.txt." },
      { type: 'tool_use', name: 'Write', input: { file_path: 'hello.txt', content: CONTENT } },
    ],
    [{ type: 'text', text: 'done' }],
  ]);
  onTestFinished(() => model.close());
  const u = ANTHROPIC_USAGE;
  return {
    model,
    modelName: 'claude-sonnet-4-5',
    env: {
      HOME: home,
      ANTHROPIC_BASE_URL: model.url,
      ANTHROPIC_API_KEY: 'test',
      CLAUDE_CODE_MAX_RETRIES: '0',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_ERROR_REPORTING: '1',
    },
    tokens: {
      tokensIn: 2 * (u.input_tokens + u.cache_creation_input_tokens),
      tokensOut: 2 * u.output_tokens,
      tokensCached: 2 * u.cache_read_input_tokens,
    } satisfies ExpectedTokens,
  };
}

/**
 * Codex: a shell command writing hello.txt, against the OpenAI Responses server. The provider
 * comes from $CODEX_HOME/config.toml (the factory adds no provider flags). gpt-5 is a model
 * Fleet's price table knows, so the cost is estimated rather than unknown (Codex has no metadata
 * for it and says so in a warning; the run goes on).
 */
export async function scriptedCodex(home: string) {
  const model = await startOpenAIResponsesServer([
    [
      { type: 'message', text: "I'll create hello.txt." },
      {
        type: 'function_call',
        name: 'exec_command',
        arguments: { cmd: "printf '%s\\n' 'hello from the scripted model' > hello.txt" },
        callId: 'call_script_hello',
      },
    ],
    [{ type: 'message', text: 'done' }],
  ]);
  onTestFinished(() => model.close());
  const codexHome = join(home, '.codex');
  await mkdir(codexHome, { recursive: true });
  await writeFile(
    join(codexHome, 'config.toml'),
    [
      'model_provider = "fleet"',
      'check_for_update_on_startup = false',
      '',
      '[features]',
      'plugins = false',
      '',
      '[model_providers.fleet]',
      'name = "fleet"',
      `base_url = ${JSON.stringify(model.baseUrl)}`,
      'wire_api = "responses"',
      'env_key = "FLEET_TEST_CODEX_KEY"',
      'request_max_retries = 0',
      'stream_max_retries = 0',
      '',
    ].join('\n'),
  );
  const u = RESPONSES_USAGE;
  const cached = 2 * u.input_tokens_details.cached_tokens;
  return {
    model,
    modelName: 'gpt-5',
    env: { HOME: home, CODEX_HOME: codexHome, FLEET_TEST_CODEX_KEY: 'test-key' },
    tokens: {
      tokensIn: 2 * u.input_tokens - cached,
      tokensOut: 2 * u.output_tokens,
      tokensCached: cached,
    } satisfies ExpectedTokens,
  };
}

/**
 * Pi: its `write` tool on hello.txt (relative, resolved against its cwd), against the OpenAI
 * Chat Completions server. gpt-4.1 is not one of pi's built-in models: it reaches the server as
 * a model of a `models.json` provider `fleet` in $PI_CODING_AGENT_DIR, given no price there, so
 * pi prices every request at $0 and the adapter estimates the cost from Fleet's price table. The
 * job names it `fleet/gpt-4.1` (`jobModel`). Retries are bounded so a failing request ends the
 * run in seconds; PI_OFFLINE: no startup requests and no download of fd/rg.
 */
export async function scriptedPi(home: string) {
  const modelName = 'gpt-4.1';
  const model = await startOpenAIChatServer([
    [
      { type: 'text', text: "I'll create hello.txt." },
      { type: 'tool_call', name: 'write', arguments: { path: 'hello.txt', content: CONTENT } },
    ],
    [{ type: 'text', text: 'done' }],
  ]);
  onTestFinished(() => model.close());
  const agentDir = join(home, '.pi', 'agent');
  await mkdir(agentDir, { recursive: true });
  await writeFile(
    join(agentDir, 'models.json'),
    JSON.stringify({
      providers: {
        fleet: {
          baseUrl: model.baseUrl,
          api: 'openai-completions',
          apiKey: 'FLEET_TEST_PI_KEY', // the name of the variable holding the key
          models: [{ id: modelName }],
        },
      },
    }),
  );
  await writeFile(
    join(agentDir, 'settings.json'),
    JSON.stringify({
      retry: { enabled: true, maxRetries: 1, baseDelayMs: 50, provider: { maxRetries: 0 } },
    }),
  );
  const u = CHAT_USAGE;
  // Chat Completions' prompt tokens include the cached ones.
  const cached = 2 * u.prompt_tokens_details.cached_tokens;
  return {
    model,
    modelName,
    jobModel: `fleet/${modelName}`,
    env: {
      HOME: home,
      PI_CODING_AGENT_DIR: agentDir,
      PI_OFFLINE: '1',
      FLEET_TEST_PI_KEY: 'test-key',
    },
    tokens: {
      tokensIn: 2 * u.prompt_tokens - cached,
      tokensOut: 2 * u.completion_tokens,
      tokensCached: cached,
    } satisfies ExpectedTokens,
  };
}
