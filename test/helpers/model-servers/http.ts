import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The HTTP plumbing the scripted model servers share. */

export type Json = Record<string, unknown>;

export function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The body parsed as JSON, or the raw text when it is not JSON (undefined when empty). */
export function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Answers with an SSE stream of `events`, each named by its `type`, then ends it. */
export function sendEvents(res: ServerResponse, events: Json[]): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  for (const event of events)
    res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`);
  res.end();
}

/**
 * Serves `handle` on 127.0.0.1 with an OS-chosen port. A handler that throws answers 400 with
 * `errorBody(err)` (or ends a response already started). `close()` does not wait for the
 * connections a CLI keeps alive.
 */
export async function listenLoopback(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  errorBody: (err: unknown) => unknown,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 400, errorBody(err));
      else res.end();
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What every scripted server records of a request (each adds the headers it cares about). */
export interface ScriptedRequest {
  method: string;
  url: string;
  /** The body parsed as JSON, or the raw text when it is not JSON (undefined when empty). */
  body: unknown;
  /** What the server did with it. */
  handled: string;
  /** For `turn`: the index of the script turn played. */
  turn?: number;
}

/** What every scripted server offers a test, beside its URL. */
export interface ScriptedServer<R extends ScriptedRequest> {
  port: number;
  /** Every request received, in order. */
  requests: R[];
  /** The requests that played a script turn (or an overrun), in order. */
  turnRequests(): R[];
  /** How many script turns were played. */
  readonly turnsPlayed: number;
  /** Model requests answered after the script ran out. */
  readonly overruns: number;
  close(): Promise<void>;
}

/**
 * Plays a script one turn per model request. `next` marks the request `turn` (with its index)
 * and returns that turn; once the script is played out it marks it `overrun` and returns
 * `overrunTurn`, so a CLI that asks once more than expected still gets an answer.
 */
export function scriptPlayer<T>(script: T[], overrunTurn: T) {
  let played = 0;
  let overruns = 0;
  return {
    next(recorded: { handled: string; turn?: number }): { turn: number; content: T } {
      const turn = played;
      const content = script[turn];
      if (content === undefined) {
        recorded.handled = 'overrun';
        overruns++;
        return { turn, content: overrunTurn };
      }
      played++;
      recorded.handled = 'turn';
      recorded.turn = turn;
      return { turn, content };
    },
    get played() {
      return played;
    },
    get overruns() {
      return overruns;
    },
  };
}

/** The part of a scripted server every one shares, over its `requests` and `player`. */
export function scriptedServer<R extends ScriptedRequest>(
  requests: R[],
  player: { readonly played: number; readonly overruns: number },
  listening: { port: number; close(): Promise<void> },
): ScriptedServer<R> {
  return {
    port: listening.port,
    requests,
    turnRequests: () => requests.filter((r) => r.handled === 'turn' || r.handled === 'overrun'),
    get turnsPlayed() {
      return player.played;
    },
    get overruns() {
      return player.overruns;
    },
    close: listening.close,
  };
}
