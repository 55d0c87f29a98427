import { v7 } from 'uuid';

/** Time-ordered ids (UUIDv7): newest-first listing and cursors follow creation order. */
export function newId(): string {
  return v7();
}
