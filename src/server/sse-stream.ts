import type { IncomingMessage, ServerResponse } from 'node:http';
import { isTerminal, type JobEvent, type JobStage } from '../core/index.js';

/** Where a follower reads one job's stream from. */
export interface FollowSource {
  /** The job's stage now, or null when the job is gone. */
  stage(): Promise<JobStage | null>;
  /** Events after `afterSeq`, oldest first, at most `limit`. */
  read(afterSeq: number, limit: number): Promise<JobEvent[]>;
  /** Calls `wake` whenever the job may have new events; returns the unsubscribe function. */
  subscribe(wake: () => void): () => void;
}

export interface FollowOptions {
  /** Send the events after this seq (the client's Last-Event-ID). */
  afterSeq: number;
  /** Extra response headers (the request id). */
  headers?: Record<string, number | string | string[] | undefined>;
  /** Look at the store this often even without a wake-up: other processes write too. */
  pollMs?: number;
  /** Send a `: ping` comment this often so proxies keep an idle stream open. */
  pingMs?: number;
  /** Events read per store query. */
  batch?: number;
  /** A store read failed; the stream is closed and the client may resume from its last id. */
  onError?: (err: unknown) => void;
}

export interface FollowHandle {
  /** Settles when the stream is over: ended, disconnected or closed. */
  done: Promise<void>;
  /** Ends the stream now (server shutdown). */
  close(): void;
}

export const POLL_MS = 1_000;
export const PING_MS = 15_000;

/**
 * Streams a job's events as Server-Sent Events on a raw response whose reply the caller has
 * hijacked. Each event goes out once, in seq order, as `id: <seq>`, `event: <type>`, `data: <JSON>`.
 * New events are picked up on wake-ups and on a poll; once the job is in a terminal stage and
 * every event is sent, an `end` event names the stage and the stream closes. A client
 * disconnect (or {@link FollowHandle.close}) unsubscribes and stops both timers.
 */
export function followEvents(
  req: IncomingMessage,
  res: ServerResponse,
  source: FollowSource,
  options: FollowOptions,
): FollowHandle {
  const batch = options.batch ?? 500;
  const state = { cursor: options.afterSeq, closed: false, running: false, again: false };
  let settle!: () => void;
  const done = new Promise<void>((resolve) => (settle = resolve));

  res.writeHead(200, {
    ...options.headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();

  const close = (): void => {
    if (state.closed) return;
    state.closed = true;
    unsubscribe();
    clearInterval(poll);
    clearInterval(ping);
    req.off('close', close);
    res.off('close', close);
    if (!res.writableEnded) res.end();
    settle();
  };

  /** Sends every event after the cursor; true when the stream is over. */
  const sendNew = async (): Promise<boolean> => {
    // The stage first: when it is terminal, no lease is live, so every event is already stored.
    const stage = await source.stage();
    if (stage === null) return true;
    for (;;) {
      const events = await source.read(state.cursor, batch);
      for (const event of events) {
        if (state.closed) return true;
        const flushed = res.write(eventFrame(event));
        state.cursor = event.seq;
        if (!flushed) await drained(res);
      }
      if (events.length < batch) break;
    }
    if (state.closed) return true;
    if (!isTerminal(stage)) return false;
    res.write(`event: end\ndata: ${JSON.stringify({ stage })}\n\n`);
    return true;
  };

  /** One reader at a time; a wake-up during a read makes it read again. */
  const pump = async (): Promise<void> => {
    if (state.closed) return;
    if (state.running) {
      state.again = true;
      return;
    }
    state.running = true;
    try {
      do {
        state.again = false;
        if (await sendNew()) return close();
      } while (state.again && !state.closed);
    } catch (err) {
      if (!state.closed) options.onError?.(err);
      close();
    } finally {
      state.running = false;
    }
  };

  const unsubscribe = source.subscribe(() => void pump());
  const poll = setInterval(() => void pump(), options.pollMs ?? POLL_MS);
  const ping = setInterval(() => {
    if (!state.closed) res.write(': ping\n\n');
  }, options.pingMs ?? PING_MS);
  req.on('close', close);
  res.on('close', close);
  // The client may have gone while the route was still reading the job.
  if (res.destroyed || req.socket?.destroyed === true) close();
  else void pump();
  return { done, close };
}

/** One event as an SSE frame. `data` is JSON, so it holds no line break; the type may. */
export function eventFrame(event: JobEvent): string {
  const type = event.type.replace(/[\r\n]+/g, ' ');
  return `id: ${event.seq}\nevent: ${type}\ndata: ${JSON.stringify(event)}\n\n`;
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const go = (): void => {
      res.off('drain', go);
      res.off('close', go);
      resolve();
    };
    res.on('drain', go);
    res.on('close', go);
  });
}
