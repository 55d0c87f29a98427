import { z } from 'zod';
import { InvalidInputError, JobSpec, parseInput } from '../../core/index.js';

const JobBatch = z.array(JobSpec).min(1, 'at least one job').max(10_000);

/**
 * Validates a batch for `enqueue`: every spec well formed, one tenant, no idempotency key twice.
 * Errors name the position in the batch as sent.
 */
export function parseJobBatch(input: unknown): { specs: JobSpec[]; tenant: string } {
  const specs = parseInput(JobBatch, input, 'job batch');
  const tenant = specs[0]!.tenant;
  const seen = new Map<string, number>();
  specs.forEach((s, i) => {
    if (s.tenant !== tenant)
      throw new InvalidInputError('job batch', [
        { path: `${i}.tenant`, message: `every job of a batch must have tenant "${tenant}"` },
      ]);
    if (s.idempotencyKey === null) return;
    const first = seen.get(s.idempotencyKey);
    if (first !== undefined)
      throw new InvalidInputError('job batch', [
        { path: `${i}.idempotencyKey`, message: `duplicate of job ${first} in this batch` },
      ]);
    seen.set(s.idempotencyKey, i);
  });
  return { specs, tenant };
}
