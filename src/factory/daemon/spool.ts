import { appendFile, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EventInput } from '../../core/index.js';

/** The event that replaces the oldest events of a spool that went over its limit. */
export const SPOOL_OVERFLOW = 'spool_overflow';

/** Bytes read at a time by {@link EventSpool.peek}. */
const PEEK_CHUNK = 256 * 1024;
const NEWLINE = 0x0a;

/**
 * A run's events kept on local disk: while the factory is disconnected, and while connected
 * when more are waiting to be sent than the daemon keeps in memory. One JSON line per event, in
 * order. Bounded while disconnected: past `limit` events, the oldest are dropped and one
 * `spool_overflow` event at the head says how many (a later overflow adds to its count).
 * Events are read from the head with {@link peek} and removed with {@link drop} once sent (a
 * byte offset moves on; the file goes when the last one is dropped).
 * Calls must not overlap (the daemon's flusher serializes them).
 */
export class EventSpool {
  readonly file: string;
  private readonly limit: number;
  /** Events in the file (after the head). */
  count = 0;
  /** Events dropped so far (the head `spool_overflow` event's count). */
  dropped = 0;
  /** Byte offset of the first event not yet sent. */
  private head = 0;
  /** Byte lengths of the lines the last peek returned, for drop. */
  private peeked: number[] = [];

  constructor(file: string, limit: number) {
    this.file = file;
    this.limit = Math.max(2, limit);
  }

  /**
   * Appends `events` (in order). `bounded` (while disconnected): drops the oldest when over the
   * limit. Unbounded (events spilled from memory while connected): the server is there, only
   * slower than the run, so nothing is dropped.
   */
  async append(events: EventInput[], bounded = true): Promise<void> {
    if (events.length === 0) return;
    await mkdir(path.dirname(this.file), { recursive: true });
    if (!bounded || this.count + events.length <= this.limit) {
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
    this.head = 0;
    this.count = kept.length + 1;
  }

  /**
   * The first `max` events (at most), oldest first, still in the spool until {@link drop}; no
   * more than `maxBytes` of their JSON lines, but always the first one.
   */
  async peek(max: number, maxBytes = Infinity): Promise<EventInput[]> {
    this.peeked = [];
    if (this.count === 0 || max < 1) return [];
    const events: EventInput[] = [];
    const handle = await open(this.file, 'r');
    try {
      let pos = this.head;
      let carry = Buffer.alloc(0);
      let bytes = 0;
      let full = false;
      while (events.length < max && !full) {
        const chunk = Buffer.allocUnsafe(PEEK_CHUNK);
        const { bytesRead } = await handle.read(chunk, 0, PEEK_CHUNK, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        const data = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
        let start = 0;
        for (let nl = data.indexOf(NEWLINE); nl >= 0; nl = data.indexOf(NEWLINE, start)) {
          const size = nl + 1 - start;
          if (events.length > 0 && bytes + size > maxBytes) {
            full = true;
            break;
          }
          events.push(JSON.parse(data.toString('utf8', start, nl)) as EventInput);
          this.peeked.push(size);
          bytes += size;
          start = nl + 1;
          if (events.length === max) break;
        }
        carry = data.subarray(start);
      }
    } finally {
      await handle.close();
    }
    return events;
  }

  /** Bytes of the JSON lines the last {@link peek} returned. */
  get peekedBytes(): number {
    return this.peeked.reduce((n, bytes) => n + bytes, 0);
  }

  /** Removes the first `n` events (of those the last {@link peek} returned). */
  async drop(n: number): Promise<void> {
    const done = this.peeked.splice(0, n);
    this.count -= done.length;
    if (this.count <= 0) return this.clear();
    for (const bytes of done) this.head += bytes;
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
    this.head = 0;
    this.peeked = [];
    await rm(this.file, { force: true });
  }

  /** The file's events; without `withMarker`, the overflow marker at the head is left out. */
  private async read(withMarker: boolean): Promise<EventInput[]> {
    let text: string;
    try {
      text = (await readFile(this.file)).toString('utf8', this.head);
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
