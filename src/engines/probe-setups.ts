import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine, EngineRunInput } from './engine.js';

/** Where one JSON probe runs: a throwaway directory tree and the dead model endpoint. */
export interface ProbeSandbox {
  /** The CLI's `HOME` (empty at first; a setup may write configuration into it). */
  home: string;
  /** `http://127.0.0.1:PORT` of a loopback server that drops every connection it accepts. */
  endpoint: string;
}

/** How to run one engine's CLI headless so that its model calls can only reach the sandbox. */
export interface ProbeSetup {
  /** The run input for the engine's own command builder: no yolo, so no tool may write. */
  input: EngineRunInput;
  /**
   * Writes the CLI's configuration into the sandbox and returns the variables that point the
   * CLI at it (model endpoint, key, configuration directory, retries and outside traffic off).
   */
  prepare(sandbox: ProbeSandbox): Promise<Record<string, string>>;
}

/** The prompt of every probe. It never reaches a model: the endpoint drops the connection. */
const PROMPT = 'Reply with OK.';

/**
 * A key for the dead endpoint, so that no CLI looks for a login. It is never checked: nothing
 * answers at the endpoint.
 */
const PROBE_KEY = 'fleet-probe';

/**
 * Per-engine probe settings, each checked against the real CLI (AGENT-CLIS.md,
 * docs/engines-pi.md). Every CLI gets a temporary `HOME`, so it neither reads the user's login
 * nor writes into the user's configuration; all of them were observed (strace) to connect only
 * to the endpoint given here, and to print their session line before that request.
 */
export const PROBE_SETUPS: Record<Exclude<Engine['name'], 'shell'>, ProbeSetup> = {
  'claude-code': {
    input: { prompt: PROMPT, yolo: false },
    // Claude Code 2.1.197: `system/init`, then one request (two connections) to the base URL,
    // then a `result` with "API Error: Unable to connect to API (ECONNRESET)", exit 1.
    prepare: async ({ endpoint }) => ({
      ANTHROPIC_BASE_URL: endpoint,
      ANTHROPIC_API_KEY: PROBE_KEY,
      CLAUDE_CODE_MAX_RETRIES: '0',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_ERROR_REPORTING: '1',
    }),
  },
  codex: {
    // No `-m`: the default model of this version has metadata (`gpt-5` prints a warning item).
    input: { prompt: PROMPT, yolo: false },
    // Codex ignores OPENAI_BASE_URL: the provider comes from `$CODEX_HOME/config.toml`. A fresh
    // CODEX_HOME also means the user's login (auth.json) is never read.
    prepare: async ({ home, endpoint }) => {
      const codexHome = join(home, '.codex');
      await mkdir(codexHome, { recursive: true });
      await writeFile(
        join(codexHome, 'config.toml'),
        [
          'model_provider = "fleet-probe"',
          'check_for_update_on_startup = false',
          '',
          '[features]',
          'plugins = false',
          '',
          '[model_providers.fleet-probe]',
          'name = "fleet-probe"',
          `base_url = ${JSON.stringify(`${endpoint}/v1`)}`,
          'wire_api = "responses"',
          'env_key = "FLEET_PROBE_KEY"',
          'request_max_retries = 0',
          'stream_max_retries = 0',
          '',
        ].join('\n'),
      );
      return { CODEX_HOME: codexHome, FLEET_PROBE_KEY: PROBE_KEY };
    },
  },
  gemini: {
    // A model, so the CLI makes no router-model request first.
    input: { prompt: PROMPT, yolo: false, model: 'gemini-2.5-flash' },
    // The auth type must be named (else 0.61.0 picks `gateway` auth and exits 41), one attempt
    // per request, no auto-update, usage statistics or telemetry.
    prepare: async ({ home, endpoint }) => {
      await mkdir(join(home, '.gemini'), { recursive: true });
      await writeFile(
        join(home, '.gemini', 'settings.json'),
        JSON.stringify({
          security: { auth: { selectedType: 'gemini-api-key' } },
          general: { enableAutoUpdate: false, enableAutoUpdateNotification: false, maxAttempts: 1 },
          privacy: { usageStatisticsEnabled: false },
          telemetry: { enabled: false },
        }),
      );
      return { GEMINI_API_KEY: PROBE_KEY, GOOGLE_GEMINI_BASE_URL: endpoint };
    },
  },
  pi: {
    input: { prompt: PROMPT, yolo: false, model: 'fleet-probe/probe' },
    // A models.json provider at the endpoint, no agent-level or SDK retries, and PI_OFFLINE so
    // pi makes no startup request (and downloads no fd/rg).
    prepare: async ({ home, endpoint }) => {
      const agentDir = join(home, '.pi', 'agent');
      await mkdir(agentDir, { recursive: true });
      const provider = {
        baseUrl: `${endpoint}/v1`,
        api: 'openai-completions',
        apiKey: 'FLEET_PROBE_KEY', // the name of the variable holding the key
        models: [{ id: 'probe' }],
      };
      await writeFile(
        join(agentDir, 'models.json'),
        JSON.stringify({ providers: { 'fleet-probe': provider } }),
      );
      await writeFile(
        join(agentDir, 'settings.json'),
        JSON.stringify({ retry: { enabled: false, provider: { maxRetries: 0 } } }),
      );
      return { PI_CODING_AGENT_DIR: agentDir, PI_OFFLINE: '1', FLEET_PROBE_KEY: PROBE_KEY };
    },
  },
};
