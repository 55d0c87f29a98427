import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EventInput } from '../../core/index.js';

/** The event that replaces the oldest events of a spool that went over its limit. */
export const SPOOL_OVERFLOW = 'spool_overflow';

/**
 * A run's events kept on local disk while the factory is disconnected: one JSON line per
 * event, in order. Bounded: past `limit` events, the oldest are dropped and one
 * `spool_overflow` event at the head says how many (a later overflow adds to its count).
 * Calls must not overlap (the daemon's flusher serializes them).
 */
export class EventSpool {
  readonly file: string;
  private readonly limit: number;
  /** Events in the file. */
  count = 0;
  /** Events dropped so far (the head `spool_overflow` event's count). */
  dropped = 0;

  constructor(file: string, limit: number) {
    this.file = file;
    this.limit = Math.max(2, limit);
  }

  /** Appends `events` (in order), dropping the oldest when over the limit. */
  async append(events: EventInput[]): Promise<void> {
    if (events.length === 0) return;
    await mkdir(path.dirname(this.file), { recursive: true });
    if (this.count + events.length <= this.limit) {
      await appendFile(this.file, lines(events));
      this.count += events.length;
      return;
    }
    // Over the limit: keep the newest `limit - 1` events behind one overflow marker.
    const all = [...(await this.read(false)), ...events];
    const keep = this.limit - 1;
    const dropNow = Math.max(0, all.length - keep);
    this.dropped += dropNow;
    const kept = all.slice(dropNow);
    const marker: EventInput = {
      type: SPOOL_OVERFLOW,
      at: kept[0]?.at,
      data: { dropped: this.dropped, limit: this.limit },
    };
    await writeFile(this.file, lines([marker, ...kept]));
    this.count = kept.length + 1;
  }

  /** Every spooled event, in order, and empties the spool (the file goes). */
  async take(): Promise<EventInput[]> {
    if (this.count === 0) return [];
    const events = await this.read(true);
    await this.clear();
    return events;
  }

  async clear(): Promise<void> {
    this.count = 0;
    this.dropped = 0;
    await rm(this.file, { force: true });
  }

  /** The file's events; without `withMarker`, the overflow marker at the head is left out. */
  private async read(withMarker: boolean): Promise<EventInput[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const events = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as EventInput);
    if (!withMarker && events[0]?.type === SPOOL_OVERFLOW) events.shift();
    return events;
  }
}

const lines = (events: EventInput[]): string =>
  events.map((e) => JSON.stringify(e) + '\n').join('');
