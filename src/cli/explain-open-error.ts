import { errorCode, errorText } from './error-text.js';
import type { StoreTarget } from './store-target.js';

/** Node errno codes and SQLSTATEs that mean "no PostgreSQL server answered usefully". */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P03', // cannot_connect_now: starting up or shutting down
]);
/** invalid_password, invalid_authorization_specification (no such role, pg_hba rejects). */
const AUTH = new Set(['28P01', '28000']);
const NO_PERMISSION = new Set(['EACCES', 'EPERM', 'EROFS']);

/** One line saying why a store did not open and what to do about it. */
export function explainOpenError(target: StoreTarget, err: unknown): string {
  const at = target.location;
  const cause = errorText(err);
  const code = errorCode(err);
  const debug = 'FLEET_DEBUG=1 shows the stack trace';
  if (target.dialect === 'postgres') {
    if ((code !== undefined && AUTH.has(code)) || /\bpassword\b/i.test(cause)) {
      return `PostgreSQL at ${at} refused the login (${cause}) — check the user and password in --db`;
    }
    if (code === '3D000') {
      return `cannot open PostgreSQL at ${at} (${cause}) — create the database (createdb) or check --db`;
    }
    if ((code !== undefined && UNREACHABLE.has(code)) || /timeout|terminated/i.test(cause)) {
      return `cannot reach PostgreSQL at ${at} (${cause}) — is it running? check --db`;
    }
    return `cannot open the PostgreSQL store at ${at} (${cause}) — check --db; ${debug}`;
  }
  if (code !== undefined && NO_PERMISSION.has(code)) {
    return `cannot write the SQLite store at ${at} (${cause}) — check permissions, or choose another place with --data-dir or --db`;
  }
  if (code === 'SQLITE_NOTADB') {
    return `${at} is not a SQLite database (${cause}) — --db takes a SQLite file path or a postgres:// URL`;
  }
  if (code === 'SQLITE_CANTOPEN') {
    return `cannot open the SQLite file ${at} (${cause}) — --db must name a file (not a directory) in a writable directory`;
  }
  return `cannot open the SQLite store at ${at} (${cause}) — check --db and --data-dir; ${debug}`;
}
