import { InternalError } from '../../core/index.js';

/** Refuses a database that a newer Fleet migrated past what this build knows. */
export function assertKnownSchema(
  applied: Iterable<number>,
  known: readonly { id: number }[],
): void {
  const newest = Math.max(0, ...applied);
  const latest = Math.max(...known.map((m) => m.id));
  if (newest > latest)
    throw new InternalError(
      `this database was migrated by a newer Fleet (schema ${newest}, this build knows ${latest}); upgrade Fleet`,
    );
}
