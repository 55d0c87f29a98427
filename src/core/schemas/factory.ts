import { z } from 'zod';
import { EpochMs, Id, Rev, Tenant } from './common.js';

export const FactoryKind = z.enum(['factory', 'daemon']);
export const FactoryStatus = z.enum(['online', 'draining', 'offline']);
export type FactoryStatus = z.infer<typeof FactoryStatus>;

/** A host daemon that claims jobs and runs agents in its seats. */
export const Factory = z.object({
  id: Id,
  tenant: Tenant,
  name: z.string().min(1).max(200),
  kind: FactoryKind,
  capabilities: z.array(z.string().min(1)),
  seats: z.number().int().min(0).max(10_000),
  /** The software version the factory reported. */
  version: z.string(),
  status: FactoryStatus,
  lastSeenAt: EpochMs.nullable(),
  rev: Rev,
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type Factory = z.infer<typeof Factory>;

export const FactorySpec = Factory.pick({ tenant: true, name: true }).extend({
  id: Id.optional(),
  kind: FactoryKind.default('factory'),
  capabilities: z.array(z.string().min(1)).default([]),
  seats: z.number().int().min(0).max(10_000).default(1),
  version: z.string().default('unknown'),
  status: FactoryStatus.default('online'),
});
export type FactorySpecInput = z.input<typeof FactorySpec>;

export const FactoryPatch = z
  .object({
    capabilities: z.array(z.string().min(1)),
    seats: z.number().int().min(0).max(10_000),
    version: z.string(),
    status: FactoryStatus,
    lastSeenAt: EpochMs,
  })
  .partial()
  .strict();
export type FactoryPatch = z.infer<typeof FactoryPatch>;
