import { z } from 'zod';
import { EpochMs, Id, Tenant } from './common.js';

/**
 * The right of one factory to work on one job until `expiresAt`. `leaseEpoch` is the fencing
 * token: every write about the job must carry it, and a claim always raises it.
 */
export const Lease = z.object({
  jobId: Id,
  tenant: Tenant,
  holderFactoryId: Id,
  expiresAt: EpochMs,
  leaseEpoch: z.number().int().positive(),
  renewals: z.number().int().nonnegative(),
});
export type Lease = z.infer<typeof Lease>;
