import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Engine } from './engine.js';

export interface EngineProbe {
  engine: string;
  binary: string;
  /** Where the binary was found on PATH, or null. */
  path: string | null;
  /** The first line the version command printed, or null. */
  version: string | null;
  /** Why the engine cannot be used, or null when it can. */
  problem: string | null;
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
 * Checks one engine: is its CLI installed, and what version does it report. It does not run
 * the agent (that needs a model endpoint and credentials).
 */
export async function probeEngine(
  engine: Engine,
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs = 10_000,
): Promise<EngineProbe> {
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
