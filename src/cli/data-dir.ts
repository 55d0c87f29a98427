import { homedir, platform } from 'node:os';
import { posix, resolve, win32 } from 'node:path';
import type { CliIo } from './io.js';

export interface DataDirContext {
  env: Readonly<Record<string, string | undefined>>;
  platform: NodeJS.Platform;
  homedir: string;
}

/**
 * Where Fleet keeps its embedded database and blobs when no `--data-dir` is given:
 * `FLEET_DATA_DIR`, else the platform's per-user data directory.
 */
export function defaultDataDir(context: DataDirContext): string {
  const { env, homedir } = context;
  if (env.FLEET_DATA_DIR) return env.FLEET_DATA_DIR;
  switch (context.platform) {
    case 'win32':
      return win32.join(env.LOCALAPPDATA || win32.join(homedir, 'AppData', 'Local'), 'fleet');
    case 'darwin':
      return posix.join(homedir, 'Library', 'Application Support', 'fleet');
    default: {
      // XDG: a relative XDG_DATA_HOME is invalid and must be ignored.
      const xdg = env.XDG_DATA_HOME;
      const base = xdg && posix.isAbsolute(xdg) ? xdg : posix.join(homedir, '.local', 'share');
      return posix.join(base, 'fleet');
    }
  }
}

/** The data directory a command uses: `--data-dir` if given, else the default; absolute. */
export function resolveDataDir(option: string | undefined, io: CliIo): string {
  const dir = option ?? defaultDataDir({ env: io.env, platform: platform(), homedir: homedir() });
  return resolve(io.cwd, dir);
}
