import { z } from 'zod';
import { EpochMs, Id, Tenant } from './common.js';

/** A pointer to a stored blob (transcript, diff, log, report); the bytes live elsewhere. */
export const Artifact = z.object({
  id: Id,
  tenant: Tenant,
  jobId: Id,
  runId: Id.nullable(),
  kind: z.string().min(1).max(50),
  name: z.string().min(1).max(300),
  /** Hex SHA-256 of the content: the blob's address. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  mediaType: z.string().min(1),
  createdAt: EpochMs,
});
export type Artifact = z.infer<typeof Artifact>;

export const ArtifactSpec = z.object({
  runId: Id.nullable().default(null),
  kind: z.string().min(1).max(50),
  name: z.string().min(1).max(300),
  mediaType: z.string().min(1).default('application/octet-stream'),
});
export type ArtifactSpecInput = z.input<typeof ArtifactSpec>;
