import { z } from 'zod';
import { EpochMs, Id, Rev, Tenant } from './common.js';

export const SIGNAL_STATUSES = ['pending', 'delivered', 'drained', 'expired'] as const;
export const SignalStatus = z.enum(SIGNAL_STATUSES);
export type SignalStatus = z.infer<typeof SignalStatus>;

/** A message to a running (or resumable) agent. Sending is idempotent by `key`. */
export const Signal = z.object({
  id: Id,
  tenant: Tenant,
  jobId: Id,
  key: z.string().min(1).max(200),
  body: z.string(),
  status: SignalStatus,
  createdAt: EpochMs,
  deliveredAt: EpochMs.nullable(),
  drainedAt: EpochMs.nullable(),
  expiresAt: EpochMs.nullable(),
  rev: Rev,
});
export type Signal = z.infer<typeof Signal>;

export const SignalSpec = Signal.pick({ tenant: true, jobId: true, key: true, body: true }).extend({
  expiresAt: EpochMs.nullable().default(null),
});
export type SignalSpecInput = z.input<typeof SignalSpec>;
