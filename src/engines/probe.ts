import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Engine } from './engine.js';
import { probeJsonOutput, type JsonProbe } from './json-probe.js';

export type { JsonProbe } from './json-probe.js';

export interface EngineProbe {
  engine: string;
  binary: string;
  /** Where the binary was found on PATH, or null. */
  path: string | null;
  /** The first line the version command printed, or null. */
  version: string | null;
  /** Why the engine cannot be used, or null when it can. */
  problem: string | null;
  /**
   * Whether its headless JSON output works ({@link probeJsonOutput}); null when not probed (the
   * `json: false` fast path, or an engine with a `problem`).
   */
  json: JsonProbe | null;
}

export interface ProbeOptions {
  /** How long the version command may take; 10 s by default. */
  versionTimeoutMs?: number;
  /** Whether to run the JSON probe (true by default); false checks only PATH and version. */
  json?: boolean;
  /** How long the CLI may run in the JSON probe; 20 s by default. */
  jsonTimeoutMs?: number;
}

/** Finds `binary` on `PATH` the way a shell would (first executable match). */
export async function which(binary: string, path: string | undefined): Promise<string | null> {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, binary);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here (or not executable): keep looking, as a shell does.
    }
  }
  return null;
}

/**
 * Checks one engine: is its CLI installed, what version does it report, and (unless
 * `options.json` is false) does its headless JSON output reach the engine's parser. The JSON
 * probe runs the agent against a loopback endpoint that drops every connection, with a
 * temporary HOME: no model is called and no credential is used (see {@link probeJsonOutput}).
 *
 * @example
 * const p = await probeEngine(ENGINES.gemini, process.env);
 * // { engine: 'gemini', version: '0.61.0', problem: null, json: { ok: true, … } }
 */
export async function probeEngine(
  engine: Engine,
  env: Readonly<Record<string, string | undefined>>,
  options: ProbeOptions = {},
): Promise<EngineProbe> {
  const found = await probeVersion(engine, env, options.versionTimeoutMs ?? 10_000);
  if (found.problem !== null || found.path === null || options.json === false)
    return { ...found, json: null };
  const json = await probeJsonOutput(engine, found.path, {
    env,
    ...(options.jsonTimeoutMs === undefined ? {} : { timeoutMs: options.jsonTimeoutMs }),
  });
  return { ...found, json };
}

/** Is the CLI on PATH, and what does its version command print. */
async function probeVersion(
  engine: Engine,
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs: number,
): Promise<Omit<EngineProbe, 'json'>> {
  const base = { engine: engine.name, binary: engine.binary };
  const path = await which(engine.binary, env.PATH);
  if (path === null)
    return { ...base, path, version: null, problem: `${engine.binary} is not on PATH` };
  return new Promise((resolve) => {
    execFile(
      path,
      engine.versionArgs,
      { timeout: timeoutMs, env: env as NodeJS.ProcessEnv },
      (err, stdout, stderr) => {
        const first = `${stdout}\n${stderr}`.split('\n').find((l) => l.trim() !== '');
        if (err !== null)
          resolve({
            ...base,
            path,
            version: null,
            problem: `${path} ${engine.versionArgs.join(' ')} failed: ${
              (err as NodeJS.ErrnoException & { killed?: boolean }).killed
                ? `no answer within ${timeoutMs} ms`
                : (first ?? err.message).trim()
            }`,
          });
        else resolve({ ...base, path, version: first?.trim() ?? '', problem: null });
      },
    );
  });
}
