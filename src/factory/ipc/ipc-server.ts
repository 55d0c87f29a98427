import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DaemonControl } from '../daemon-control.js';
import {
  IPC_OPS,
  IpcError,
  IpcRequest,
  MAX_REQUEST_LINE_BYTES,
  RequestId,
  toIpcIssues,
  type IpcErrorBody,
  type IpcResponse,
} from './protocol.js';

/** The little of a logger the server uses (a pino Logger fits). */
export interface IpcLogger {
  warn(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

export interface IpcServerOptions {
  /** The socket path, e.g. `<dataDir>/factory-<name>.sock`. Its directory is created (0700). */
  path: string;
  control: DaemonControl;
  logger?: IpcLogger;
  /** Longest request line in bytes; default MAX_REQUEST_LINE_BYTES (1 MiB). */
  maxLineBytes?: number;
  /** How long to wait for an answer on an existing socket before calling it stale; default 1s. */
  probeTimeoutMs?: number;
}

export interface IpcServer {
  readonly path: string;
  /** Stops listening, ends open connections (after their pending answers) and removes the socket. */
  close(): Promise<void>;
}

/** Unix socket paths are limited (sun_path: 108 bytes on Linux, 104 on macOS, with the NUL). */
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;
/** A connection with this many requests waiting is paused until they are answered. */
const MAX_QUEUED_REQUESTS = 64;
/** After close(), connections still open after this long are destroyed. */
const CLOSE_GRACE_MS = 2_000;

/**
 * Serves the local IPC protocol (./protocol.ts) on a Unix socket, translating requests to
 * `control` calls. Refuses to start when a live server answers on `path`; a stale socket file
 * (nothing listening) is removed. The socket is created with mode 0600: only this user may
 * connect.
 *
 * @example
 * const ipc = await startIpcServer({ path: join(dataDir, `factory-${name}.sock`), control });
 * // ... later
 * await ipc.close();
 */
export async function startIpcServer(options: IpcServerOptions): Promise<IpcServer> {
  const { path, control, logger } = options;
  const maxLineBytes = options.maxLineBytes ?? MAX_REQUEST_LINE_BYTES;
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `The IPC socket path is too long for a Unix socket (${Buffer.byteLength(path)} bytes, at most ${MAX_SOCKET_PATH_BYTES}): ${path}. Use a shorter data directory.`,
    );
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  await removeStaleSocket(path, options.probeTimeoutMs ?? 1_000);

  const connections = new Set<Connection>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const connection = new Connection(socket, control, maxLineBytes, logger);
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
  });
  await listenPrivately(server, path);
  const { dev, ino } = statSync(path);

  let closing: Promise<void> | undefined;
  return {
    path,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Remove the file now, so no new client finds it, but only if it is still ours.
        removeIfOurs(path, dev, ino, logger);
        await Promise.all([...connections].map((c) => c.end(CLOSE_GRACE_MS)));
        await closed;
      })();
      return closing;
    },
  };
}

/**
 * Listens on `path` with the socket file created as 0600. The umask is narrowed around
 * `listen()`, which binds the socket synchronously, so the file never exists with looser
 * permissions (a chmod after listening would leave a moment where another local user could
 * connect, since the kernel queues connections from the moment of bind + listen). The umask is
 * process-wide, so it is restored right after that one synchronous call. Where it cannot be
 * changed (worker threads) the file is chmod'ed before any connection is handled; the data
 * directory (0700) protects that moment. Either way the mode is set to 0600 explicitly
 * afterwards, too.
 */
async function listenPrivately(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(explainListenError(err, path));
    };
    const onListening = () => {
      server.off('error', onError);
      try {
        chmodSync(path, 0o600);
      } catch (err) {
        server.close();
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    let previous: number | undefined;
    try {
      previous = process.umask(0o177);
    } catch {
      previous = undefined; // not supported in worker threads
    }
    try {
      server.listen(path);
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
  });
}

function explainListenError(err: Error, path: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new Error(
      `Another process created the IPC socket ${path} while this factory was starting; is a second factory starting with the same name?`,
      { cause: err },
    );
  }
  return err;
}

/**
 * When `path` exists: refuses if it is not a socket or something answers on it, otherwise
 * (a socket nothing listens on, left by a crash) removes it.
 */
async function removeStaleSocket(path: string, timeoutMs: number): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) {
    throw new Error(
      `${path} exists and is not a socket; not touching it. Remove it or pick another path.`,
    );
  }
  const probe = await probeSocket(path, timeoutMs);
  if (probe === 'live') {
    throw new Error(
      `Another factory is already running and answering on ${path}. Stop it first (its IPC \`shutdown\`), or give this factory another name.`,
    );
  }
  if (probe === 'timeout') {
    throw new Error(
      `Something is listening on ${path} but did not accept a connection within ${timeoutMs}ms; not replacing it.`,
    );
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** 'live' if a connection is accepted, 'stale' if refused (nobody listening), else 'timeout'. */
function probeSocket(path: string, timeoutMs: number): Promise<'live' | 'stale' | 'timeout'> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('live');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve('stale');
      else reject(new Error(`Cannot check the IPC socket ${path}: ${err.message}`, { cause: err }));
    });
  });
}

function removeIfOurs(path: string, dev: number, ino: number, logger?: IpcLogger): void {
  try {
    const now = lstatSync(path);
    if (now.dev === dev && now.ino === ino) unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger?.warn({ err, path }, 'could not remove the IPC socket');
    }
  }
}

const NEWLINE = 0x0a;

/**
 * One client connection: splits bytes into lines (bounded by maxLineBytes), answers each line
 * with one response line, in order.
 */
class Connection {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Dropping the rest of an over-long line, up to its newline. */
  private discarding = false;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private ending = false;

  constructor(
    private readonly socket: Socket,
    private readonly control: DaemonControl,
    private readonly maxLineBytes: number,
    private readonly logger?: IpcLogger,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      // The client is done writing; a last line without newline is still a request.
      if (!this.ending && !this.discarding && this.buffered > 0) this.enqueue(this.takeBuffer());
      void this.queue.then(() => socket.end());
    });
    socket.on('error', (err) => logger?.debug?.({ err }, 'IPC connection error'));
  }

  /** Ends the connection once the requests already read are answered; destroys it after graceMs. */
  end(graceMs: number): Promise<void> {
    // Lines arriving from now on are ignored (not paused: the client's FIN must still be read).
    this.ending = true;
    this.socket.resume();
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      const timer = setTimeout(() => this.socket.destroy(), graceMs);
      timer.unref();
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      void this.queue.then(() => this.socket.end());
    });
  }

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.discarding) {
        this.discarding = false; // the over-long line ends here
        continue;
      }
      if (this.buffered + piece.length > this.maxLineBytes) {
        this.takeBuffer();
        this.tooLong();
        continue;
      }
      this.chunks.push(piece);
      this.buffered += piece.length;
      this.enqueue(this.takeBuffer());
    }
    if (start >= chunk.length || this.discarding) return;
    const rest = chunk.subarray(start);
    if (this.buffered + rest.length > this.maxLineBytes) {
      this.takeBuffer();
      this.discarding = true;
      this.tooLong();
      return;
    }
    // Copy: `rest` is a view on the socket's chunk.
    this.chunks.push(Buffer.from(rest));
    this.buffered += rest.length;
  }

  private takeBuffer(): Buffer {
    const line = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    return line;
  }

  private tooLong(): void {
    this.respond(
      errorResponse(null, {
        code: 'line_too_long',
        message: `Request line longer than ${this.maxLineBytes} bytes; it was dropped (up to its newline).`,
      }),
    );
  }

  private enqueue(line: Buffer): void {
    let text = line.toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim() === '') return; // blank lines are not requests
    this.queued += 1;
    if (this.queued >= MAX_QUEUED_REQUESTS) this.socket.pause();
    this.queue = this.queue.then(async () => {
      const response = await handleLine(text, this.control, this.logger);
      this.respond(response);
      this.queued -= 1;
      if (this.queued < MAX_QUEUED_REQUESTS && !this.ending) this.socket.resume();
    });
  }

  /** Writes one response line, in the order of the queue (error lines for framing go first). */
  private respond(response: IpcResponse): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const write = () => {
      if (!this.socket.destroyed && this.socket.writable) {
        this.socket.write(JSON.stringify(response) + '\n');
      }
    };
    // Framing errors (too long) are answered in their place in the queue, to keep order.
    if (response.ok === false && response.error.code === 'line_too_long') {
      this.queue = this.queue.then(write);
    } else {
      write();
    }
  }
}

function errorResponse(id: IpcResponse['id'], error: IpcErrorBody): IpcResponse {
  return { id, ok: false, error };
}

/** Parses and runs one request line; never throws. */
export async function handleLine(
  text: string,
  control: DaemonControl,
  logger?: IpcLogger,
): Promise<IpcResponse> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return errorResponse(null, {
      code: 'bad_json',
      message: `Request is not valid JSON: ${err instanceof Error ? err.message : String(err)}`,
    });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return errorResponse(null, {
      code: 'bad_request',
      message: 'Request must be a JSON object like {"id":1,"op":"status"}',
      issues: [{ path: '', message: 'expected an object' }],
    });
  }
  const record = raw as Record<string, unknown>;
  const idParse = RequestId.safeParse(record.id);
  const id = idParse.success ? idParse.data : null;
  const op = record.op;
  if (typeof op !== 'string' || !(IPC_OPS as readonly string[]).includes(op)) {
    const message =
      op === undefined
        ? `op: missing; expected one of ${IPC_OPS.join(', ')}`
        : `op: unknown op ${JSON.stringify(op)}; expected one of ${IPC_OPS.join(', ')}`;
    return errorResponse(id, {
      code: 'bad_request',
      message,
      issues: [{ path: 'op', message: message.slice('op: '.length) }],
    });
  }
  const parsed = IpcRequest.safeParse(raw);
  if (!parsed.success) {
    const issues = toIpcIssues(parsed.error);
    return errorResponse(id, {
      code: 'bad_request',
      message: `Bad ${op} request: ${issues.map((i) => `${i.path || '(request)'}: ${i.message}`).join('; ')}`,
      issues,
    });
  }
  const request = parsed.data;
  try {
    const result = await dispatch(request, control, logger);
    return { id, ok: true, result };
  } catch (err) {
    if (err instanceof IpcError) {
      return errorResponse(id, {
        code: err.code,
        message: err.message,
        ...(err.issues ? { issues: err.issues } : {}),
      });
    }
    logger?.warn({ err, op }, 'IPC request failed');
    return errorResponse(id, {
      code: 'internal',
      message: `${op} failed: ${err instanceof Error ? err.message : String(err)}`,
    });
  }
}

async function dispatch(
  request: IpcRequest,
  control: DaemonControl,
  logger?: IpcLogger,
): Promise<unknown> {
  switch (request.op) {
    case 'status':
      return control.status();
    case 'snapshot':
      return control.snapshot();
    case 'notify':
      return control.notify(request.jobId, request.message);
    case 'resume':
      return control.resume(request.jobId, request.message);
    case 'drain':
      await control.drain();
      return { draining: true };
    case 'shutdown': {
      const { deadlineMs } = request;
      // Started, not awaited: the daemon closes this server while shutting down. A failure
      // that happens right away (e.g. "already shutting down") is still reported.
      const done = Promise.resolve().then(() => control.shutdown(deadlineMs));
      const early = await Promise.race([
        done.then(
          () => ({ failed: false as const }),
          (err: unknown) => ({ failed: true as const, err }),
        ),
        new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined))),
      ]);
      if (early?.failed) throw early.err;
      if (!early) {
        done.catch((err: unknown) => logger?.warn({ err }, 'shutdown failed'));
      }
      return { shuttingDown: true, deadlineMs };
    }
  }
}
