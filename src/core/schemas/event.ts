import { z } from 'zod';
import { EpochMs, Id, JsonObject, Tenant } from './common.js';

/** One entry of a job's append-only stream. `seq` is gap-free per job, starting at 1. */
export const JobEvent = z.object({
  tenant: Tenant,
  jobId: Id,
  seq: z.number().int().positive(),
  type: z.string().min(1).max(100),
  at: EpochMs,
  /** The lease epoch of the writer; null for events the control plane wrote itself. */
  epoch: z.number().int().positive().nullable(),
  data: JsonObject,
});
export type JobEvent = z.infer<typeof JobEvent>;

/** What a writer hands to `appendEvents`; the store assigns `seq` (and `at` when absent). */
export const EventInput = z.object({
  type: z.string().min(1).max(100),
  at: EpochMs.optional(),
  data: JsonObject.default({}),
});
export type EventInput = z.input<typeof EventInput>;
