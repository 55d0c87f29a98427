import { z } from 'zod';

/** Every record belongs to one tenant; every query is scoped by it. */
export const Tenant = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_.-]*$/, 'lowercase letters, digits, "_", "." or "-"');

export const Id = z.string().min(1).max(64);

/** Milliseconds since the Unix epoch. */
export const EpochMs = z.number().int().nonnegative();

/** Optimistic-concurrency revision, bumped on every update. */
export const Rev = z.number().int().positive();

export const JsonObject = z.record(z.string(), z.unknown());
export type JsonObject = z.infer<typeof JsonObject>;
