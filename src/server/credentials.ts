import { mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import { hashSecret, newTokenSecret } from './token-secret.js';

/** What `credentials.json` holds: where the server is, and an admin token for it. */
export interface Credentials {
  server: string;
  token: string;
}

export interface EnsuredCredentials {
  path: string;
  credentials: Credentials;
  /** True when a new admin token was minted (first start, or the old one no longer works). */
  created: boolean;
}

/** The name of the token `fleet serve` mints for its credential file. */
export const BOOTSTRAP_TOKEN_NAME = 'fleet serve bootstrap (credentials.json)';

export const credentialsPath = (dataDir: string) => join(dataDir, 'credentials.json');

/** The credential file exists but cannot be used; the message says what to do. */
export class CredentialsFileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CredentialsFileError';
  }
}

/**
 * Makes sure `<dataDir>/credentials.json` holds a working admin token for `store`, and that
 * its `server` is `serverUrl`. The first start mints the token; later starts keep it, and
 * rewrite the file only when the URL changed. A token the store no longer accepts (revoked,
 * or the file belongs to another database) is replaced, with a warning.
 *
 * The file is written to a temporary file created with mode 0600 and renamed into place, so it
 * is never readable by others, not even for a moment, and never half-written.
 */
export async function ensureCredentials(options: {
  dataDir: string;
  store: Store;
  serverUrl: string;
  logger?: Logger;
}): Promise<EnsuredCredentials> {
  const { dataDir, store, serverUrl, logger } = options;
  const path = credentialsPath(dataDir);
  const existing = readCredentials(path);
  if (existing !== null) {
    warnIfExposed(path, logger);
    const live = await store.findTokenByHash(hashSecret(existing.token));
    if (live !== null && live.role === 'admin') {
      const credentials = { ...existing, server: serverUrl };
      if (existing.server !== serverUrl) writeCredentials(path, credentials);
      return { path, credentials, created: false };
    }
    logger?.warn(
      { path },
      'the admin token in the credential file is not valid for this store (revoked, expired, or made for another database); minting a new one',
    );
  }
  const secret = newTokenSecret('admin');
  await store.createToken(
    'system',
    { name: BOOTSTRAP_TOKEN_NAME, role: 'admin', tenants: [], jobId: null },
    secret,
  );
  const credentials = { server: serverUrl, token: secret.secret };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeCredentials(path, credentials);
  return { path, credentials, created: true };
}

/** The credential file's contents, or null when there is none. */
export function readCredentials(path: string): Credentials | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CredentialsFileError(
      `cannot read ${path} (${(err as Error).message}) — check its permissions`,
      { cause: err },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CredentialsFileError(
      `${path} is not valid JSON — delete it and start again to get a new admin token`,
      { cause: err },
    );
  }
  const c = parsed as Partial<Record<keyof Credentials, unknown>> | null;
  if (typeof c !== 'object' || c === null || typeof c.token !== 'string' || c.token === '')
    throw new CredentialsFileError(
      `${path} has no "token" — delete it and start again to get a new admin token`,
    );
  return { server: typeof c.server === 'string' ? c.server : '', token: c.token };
}

function writeCredentials(path: string, credentials: Credentials): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    // `wx`: fail rather than reuse a file someone else created (and may hold open).
    writeFileSync(temporary, `${JSON.stringify(credentials, null, 2)}\n`, {
      mode: 0o600,
      flag: 'wx',
    });
    renameSync(temporary, path);
  } catch (err) {
    try {
      unlinkSync(temporary);
    } catch {
      // Never created, or already renamed.
    }
    throw new CredentialsFileError(
      `cannot write ${path} (${(err as Error).message}) — check the data directory's permissions`,
      { cause: err },
    );
  }
}

function warnIfExposed(path: string, logger: Logger | undefined): void {
  if (process.platform === 'win32') return;
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0)
    logger?.warn(
      { path, mode: mode.toString(8) },
      'the credential file is readable by other users; run chmod 600 on it',
    );
}
