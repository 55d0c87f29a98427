import { z } from 'zod';
import { EpochMs, Id, JsonObject, Rev, Tenant } from './common.js';

export const ScheduleRule = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('cron'), expr: z.string().min(1), tz: z.string().min(1).optional() }),
  z.object({ kind: z.literal('every'), everyMs: z.number().int().positive() }),
  z.object({ kind: z.literal('at'), at: EpochMs }),
]);
export type ScheduleRule = z.infer<typeof ScheduleRule>;

/** A rule that creates jobs from a template. */
export const Schedule = z.object({
  id: Id,
  tenant: Tenant,
  name: z.string().min(1).max(200),
  rule: ScheduleRule,
  /** A job spec (without tenant) that each firing submits. */
  template: JsonObject,
  paused: z.boolean(),
  allowOverlap: z.boolean(),
  nextRunAt: EpochMs.nullable(),
  lastRunAt: EpochMs.nullable(),
  lastJobId: Id.nullable(),
  rev: Rev,
  createdAt: EpochMs,
  updatedAt: EpochMs,
});
export type Schedule = z.infer<typeof Schedule>;

export const ScheduleSpec = Schedule.pick({
  tenant: true,
  name: true,
  rule: true,
  template: true,
}).extend({
  paused: z.boolean().default(false),
  allowOverlap: z.boolean().default(false),
  nextRunAt: EpochMs.nullable().default(null),
});
export type ScheduleSpecInput = z.input<typeof ScheduleSpec>;

export const SchedulePatch = z
  .object({
    rule: ScheduleRule,
    template: JsonObject,
    paused: z.boolean(),
    allowOverlap: z.boolean(),
    nextRunAt: EpochMs.nullable(),
    lastRunAt: EpochMs.nullable(),
    lastJobId: Id.nullable(),
  })
  .partial()
  .strict();
export type SchedulePatch = z.infer<typeof SchedulePatch>;
