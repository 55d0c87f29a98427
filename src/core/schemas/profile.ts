import { z } from 'zod';
import { EpochMs, Id, Tenant } from './common.js';

export const CostMode = z.enum(['economy', 'balanced', 'max']);

/**
 * A named, versioned, immutable snapshot of persona and defaults. A job names one as
 * `name@version` (or `name` for the newest); runs copy it into `profileSnapshot`.
 */
export const Profile = z.object({
  id: Id,
  tenant: Tenant,
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'lowercase letters, digits, "_" or "-"'),
  version: z.number().int().positive(),
  persona: z.string(),
  defaults: z
    .object({
      engine: z.string().min(1),
      model: z.string().min(1),
      costMode: CostMode,
    })
    .partial()
    .strict(),
  promptParts: z.array(z.string()),
  createdAt: EpochMs,
});
export type Profile = z.infer<typeof Profile>;

export const ProfileSpec = Profile.pick({ tenant: true, name: true }).extend({
  persona: z.string().default(''),
  defaults: Profile.shape.defaults.default({}),
  promptParts: z.array(z.string()).default([]),
});
export type ProfileSpecInput = z.input<typeof ProfileSpec>;
