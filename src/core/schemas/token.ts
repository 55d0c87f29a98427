import { z } from 'zod';
import { EpochMs, Id, Tenant } from './common.js';

/**
 * Who a token speaks for: `admin` (every tenant, every verb), `operator` (one tenant: submit,
 * cancel, approve, read), `factory` (claim and report for its tenants), `agent` (one job).
 */
export const TokenRole = z.enum(['admin', 'operator', 'factory', 'agent']);
export type TokenRole = z.infer<typeof TokenRole>;

/** A bearer credential. Only its SHA-256 is stored; the secret is shown once, at creation. */
export const Token = z.object({
  id: Id,
  /** The tenant the token belongs to (for admin tokens, the one they were made in). */
  tenant: Tenant,
  name: z.string().min(1).max(200),
  role: TokenRole,
  /** Tenants the token may act in; empty for admin (all tenants). */
  tenants: z.array(Tenant),
  /** The one job an agent token is scoped to. */
  jobId: Id.nullable(),
  /** The first characters of the secret, to tell tokens apart in listings. */
  prefix: z.string(),
  createdAt: EpochMs,
  expiresAt: EpochMs.nullable(),
  revokedAt: EpochMs.nullable(),
});
export type Token = z.infer<typeof Token>;

export const TokenSpec = z
  .object({
    name: z.string().min(1).max(200),
    role: TokenRole,
    tenants: z.array(Tenant).default([]),
    jobId: Id.nullable().default(null),
    expiresAt: EpochMs.nullable().default(null),
  })
  .strict()
  .superRefine((t, ctx) => {
    const need = (ok: boolean, path: string, message: string) => {
      if (!ok) ctx.addIssue({ code: 'custom', path: [path], message });
    };
    if (t.role === 'admin')
      need(
        t.tenants.length === 0,
        'tenants',
        'an admin token spans all tenants; leave tenants empty',
      );
    if (t.role === 'operator' || t.role === 'agent')
      need(t.tenants.length === 1, 'tenants', `a ${t.role} token has exactly one tenant`);
    if (t.role === 'factory')
      need(t.tenants.length >= 1, 'tenants', 'a factory token needs at least one tenant');
    need(
      (t.role === 'agent') === (t.jobId !== null),
      'jobId',
      'an agent token, and only an agent token, names its job',
    );
  });
export type TokenSpecInput = z.input<typeof TokenSpec>;
