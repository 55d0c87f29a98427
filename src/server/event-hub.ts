import { EventEmitter } from 'node:events';

/**
 * In-process wake-ups for live streams: whoever changes a job publishes its id, and followers of
 * that job go back to the store for the new events. It carries no data, so a missed wake-up
 * costs latency (followers also poll), never an event.
 */
export class EventHub {
  private readonly emitter = new EventEmitter();

  constructor() {
    // One listener per SSE follower; many followers of one job are normal.
    this.emitter.setMaxListeners(0);
  }

  publish(jobId: string): void {
    this.emitter.emit(jobId);
  }

  /** Calls `listener` on each publish for `jobId`; returns the unsubscribe function. */
  subscribe(jobId: string, listener: () => void): () => void {
    this.emitter.on(jobId, listener);
    return () => this.emitter.off(jobId, listener);
  }

  /** How many listeners follow `jobId`: a closed stream must leave none behind. */
  listenerCount(jobId: string): number {
    return this.emitter.listenerCount(jobId);
  }
}
