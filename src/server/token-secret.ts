import { createHash, randomBytes } from 'node:crypto';
import type { TokenRole } from '../core/index.js';

const PREFIX: Record<TokenRole, string> = {
  admin: 'adm',
  operator: 'op',
  factory: 'fac',
  agent: 'agt',
};

/** A new bearer secret (`fleet_<role>_<43 chars>`, 256 random bits) with what the store keeps. */
export function newTokenSecret(role: TokenRole): { secret: string; hash: string; prefix: string } {
  const secret = `fleet_${PREFIX[role]}_${randomBytes(32).toString('base64url')}`;
  return { secret, hash: hashSecret(secret), prefix: secret.slice(0, 14) };
}

/** SHA-256, hex: secrets are long and random, so a plain hash is the right tool (no KDF). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
