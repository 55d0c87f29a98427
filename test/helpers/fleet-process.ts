import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onTestFinished } from 'vitest';

export const root = join(import.meta.dirname, '..', '..');
const exec = promisify(execFile);
const entry = ['--import', 'tsx', join(root, 'src/cli/main.ts')];

export interface Served {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Runs one `fleet` command in a child process to its end. */
export async function runFleet(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [...entry, ...args], {
      cwd: root,
      env: { ...process.env, FLEET_DEBUG: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * Starts `fleet <args>` in a child process, killed when the test ends if still running. The
 * environment is this process's without any `FLEET_*` variable (so the host's settings never
 * leak in), plus `env`; pass `inherit: false` to start from `env` alone.
 */
export function launchFleet(
  args: string[],
  env: Record<string, string> = {},
  options: { inherit?: boolean } = {},
): Omit<Served, 'url'> {
  const base: Record<string, string | undefined> =
    options.inherit === false ? {} : { ...process.env };
  for (const name of Object.keys(base)) if (name.startsWith('FLEET_')) delete base[name];
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: root,
    env: { ...base, FLEET_DEBUG: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Starts `fleet serve …` in a child process. */
export function launchServe(args: string[], env: Record<string, string> = {}): Omit<Served, 'url'> {
  return launchFleet(['serve', ...args], env);
}

/** Polls `check` every 50 ms until it holds; fails after `ms` with `why()` in the message. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms = 15_000,
  why: () => string | Promise<string> = () => '',
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting\n${await why()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `fleet serve` and waits for its "listening on <url>" line. */
export async function serveFleet(
  args: string[],
  env: Record<string, string> = {},
): Promise<Served> {
  const started = launchServe(args, env);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no listening line:\n${started.stderr()}`)),
      20_000,
    );
    started.child.stdout!.on('data', () => {
      const match = /^listening on (\S+)$/m.exec(started.stdout());
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void started.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`fleet serve exited ${code}:\n${started.stderr()}`));
    });
  });
  return { ...started, url };
}

/** SIGTERM, then the exit code and how long it took. */
export async function terminate(served: Served): Promise<{ code: number | null; ms: number }> {
  const start = Date.now();
  served.child.kill('SIGTERM');
  const code = await served.exited;
  return { code, ms: Date.now() - start };
}
