import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calling } from './server-connection.js';
import { CliError } from './cli-error.js';
import type { FleetClient } from '../client/index.js';

/** The name of the token `fleet up` mints for its local factory. */
export const UP_FACTORY_TOKEN_NAME = 'fleet up factory (factory-token.json)';
/** The tenant an admin's jobs land in when they name none: the one the local factory serves. */
const DEFAULT_TENANT = 'default';

interface SavedToken {
  id: string;
  secret: string;
}

export const factoryTokenPath = (dataDir: string) => join(dataDir, 'factory-token.json');

/**
 * The factory token `fleet up` gives its local factory, so the factory does not run as admin:
 * the one saved in `<dataDir>/factory-token.json` while the server still knows it (not revoked,
 * not expired), else a new one minted with `admin` and saved (mode 0600) for the next start.
 * Reusing it keeps one token per data directory instead of one per start.
 */
export async function factoryToken(dataDir: string, admin: FleetClient): Promise<string> {
  const path = factoryTokenPath(dataDir);
  const saved = readSaved(path);
  if (saved !== null) {
    const tokens = await calling(() => admin.listTokens());
    const live = tokens.find((t) => t.id === saved.id);
    if (
      live !== undefined &&
      live.role === 'factory' &&
      live.revokedAt === null &&
      (live.expiresAt === null || live.expiresAt > Date.now())
    )
      return saved.secret;
  }
  const created = await calling(() =>
    admin.createToken({ name: UP_FACTORY_TOKEN_NAME, role: 'factory', tenants: [DEFAULT_TENANT] }),
  );
  writeSaved(path, { id: created.token.id, secret: created.secret });
  return created.secret;
}

/** The saved token, or null when there is none or it cannot be used (then a new one replaces it). */
function readSaved(path: string): SavedToken | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    // Missing or unreadable: minting a new token and writing the file over it repairs it.
    return null;
  }
  const t = parsed as Partial<Record<keyof SavedToken, unknown>> | null;
  if (typeof t?.id !== 'string' || typeof t.secret !== 'string') return null;
  return { id: t.id, secret: t.secret };
}

function writeSaved(path: string, token: SavedToken): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, `${JSON.stringify(token, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(temporary, path);
  } catch (err) {
    try {
      unlinkSync(temporary);
    } catch {
      // Never created, or already renamed.
    }
    throw new CliError(
      `cannot write ${path} (${(err as Error).message}) — check the data directory's permissions`,
      { cause: err },
    );
  }
}
