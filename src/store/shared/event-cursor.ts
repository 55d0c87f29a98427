import { z } from 'zod';
import { parseInput } from '../../core/index.js';

/** A job's `event_cursors` row: the highest writer-local event number stored, and its epoch. */
export interface EventCursorRow {
  epoch: number;
  local_seq: number;
}

/** What an exactly-once append does: skip the stored prefix, then move the cursor. */
export interface DedupePlan {
  /** Leading events of the batch already stored. */
  skip: number;
  /** The cursor's `local_seq` after the append (never moves back). */
  localSeq: number;
}

const LocalSeq = z.number().int().positive();

/**
 * Plans an exactly-once append of `count` events numbered from `localSeq` by a writer under
 * `epoch`. A cursor from another epoch counts as nothing stored (numbering restarts per
 * epoch). Overlap skips the stored prefix; a gap (events the writer dropped) is accepted.
 * @throws InvalidInputError when `localSeq` is not a positive integer.
 */
export function planDedupe(
  cursor: EventCursorRow | undefined,
  epoch: number,
  localSeq: number,
  count: number,
): DedupePlan {
  const first = parseInput(LocalSeq, localSeq, 'localSeq (the first event number of the batch)');
  const stored = cursor !== undefined && cursor.epoch === epoch ? cursor.local_seq : 0;
  return {
    skip: Math.min(count, Math.max(0, stored - first + 1)),
    localSeq: Math.max(stored, first + count - 1),
  };
}
