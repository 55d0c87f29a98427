import { createConnection, type Socket } from 'node:net';
import type { z } from 'zod';
import type { FactorySnapshot } from '../daemon-control.js';
import {
  DEFAULT_SHUTDOWN_DEADLINE_MS,
  IpcError,
  IpcResponse,
  IpcResults,
  toIpcIssues,
  type DrainResult,
  type IpcOp,
  type IpcRequestInput,
  type NotifyResult,
  type ResumeResult,
  type ShutdownResult,
  type StatusResult,
} from './protocol.js';

export interface IpcClientOptions {
  /** How long one request may take before it fails; default 30s. */
  timeoutMs?: number;
  /** The command named in the "no factory is running" error; default `fleet factory`. */
  startHint?: string;
}

/** No factory listens at the socket path (no file, or nobody accepting on it). */
export class FactoryNotRunningError extends Error {
  constructor(
    readonly path: string,
    startHint: string,
    cause?: unknown,
  ) {
    super(
      `No factory is running at ${path}. Start one with \`${startHint}\` (using the same data directory and factory name), or check the path.`,
      { cause },
    );
    this.name = 'FactoryNotRunningError';
  }
}

interface Pending {
  op: IpcOp;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A typed client for the factory's local IPC socket. Connects on the first request, keeps the
 * connection for later ones, and validates every result against the protocol's schemas.
 * Error responses reject with an IpcError (code, message, issues).
 *
 * @example
 * const client = new IpcClient(join(dataDir, 'factory-main.sock'));
 * try {
 *   const snap = await client.snapshot();
 *   await client.notify('j_1', 'please also update the changelog');
 * } finally {
 *   client.close();
 * }
 */
export class IpcClient {
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private chunks: Buffer[] = [];
  private readonly timeoutMs: number;
  private readonly startHint: string;

  constructor(
    readonly path: string,
    options: IpcClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.startHint = options.startHint ?? 'fleet factory';
  }

  status(): Promise<StatusResult> {
    return this.request('status', {});
  }

  snapshot(): Promise<FactorySnapshot> {
    return this.request('snapshot', {});
  }

  /** Queues `message` for the run of `jobId`; its agent gets it at its next turn boundary. */
  notify(jobId: string, message: string): Promise<NotifyResult> {
    return this.request('notify', { jobId, message });
  }

  /**
   * Stops the run's agent and resumes its session now, with the waiting messages and `message`;
   * queues like `notify` when that cannot be done now (see ResumeResult's `reason`).
   */
  resume(jobId: string, message?: string): Promise<ResumeResult> {
    return this.request('resume', message === undefined ? { jobId } : { jobId, message });
  }

  drain(): Promise<DrainResult> {
    return this.request('drain', {});
  }

  /**
   * Asks the factory to shut down gracefully: runs get `deadlineMs` to finish. Resolves once
   * the shutdown has started; the factory closes the socket when it is done.
   */
  shutdown(deadlineMs: number = DEFAULT_SHUTDOWN_DEADLINE_MS): Promise<ShutdownResult> {
    return this.request('shutdown', { deadlineMs });
  }

  /** Closes the connection; requests still waiting fail. */
  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.connecting = undefined;
    this.failAll(new Error('IPC client closed'));
  }

  private async request<Op extends IpcOp>(
    op: Op,
    args: Omit<Extract<IpcRequestInput, { op: Op }>, 'op' | 'id'>,
  ): Promise<z.infer<(typeof IpcResults)[Op]>> {
    const socket = await this.connect();
    const id = this.nextId++;
    const line = JSON.stringify({ id, op, ...args }) + '\n';
    const result = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`IPC ${op} got no answer from ${this.path} within ${this.timeoutMs}ms`));
      }, this.timeoutMs);
      this.pending.set(id, { op, resolve, reject, timer });
      socket.write(line);
    });
    const parsed = IpcResults[op].safeParse(result);
    if (!parsed.success) {
      const issues = toIpcIssues(parsed.error);
      throw new IpcError(
        'bad_response',
        `The factory's ${op} answer does not match the protocol (${issues
          .map((i) => `${i.path || '(result)'}: ${i.message}`)
          .join('; ')}); are fleet versions mismatched?`,
        issues,
      );
    }
    return parsed.data as z.infer<(typeof IpcResults)[Op]>;
  }

  private connect(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(this.path);
      socket.once('connect', () => {
        socket.off('error', onConnectError);
        socket.on('error', (err) => this.failAll(err));
        socket.on('close', () => {
          if (this.socket === socket) this.socket = undefined;
          this.connecting = undefined;
          this.failAll(new Error(`The factory at ${this.path} closed the connection`));
        });
        socket.on('data', (chunk: Buffer) => this.onData(chunk));
        this.socket = socket;
        resolve(socket);
      });
      const onConnectError = (err: NodeJS.ErrnoException) => {
        this.connecting = undefined;
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(new FactoryNotRunningError(this.path, this.startHint, err));
        } else {
          reject(
            new Error(`Cannot connect to the factory at ${this.path}: ${err.message}`, {
              cause: err,
            }),
          );
        }
      };
      socket.once('error', onConnectError);
    });
    return this.connecting;
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      this.chunks.push(chunk.subarray(start, nl));
      start = nl + 1;
      const line = Buffer.concat(this.chunks).toString('utf8');
      this.chunks = [];
      this.onLine(line);
    }
    if (start < chunk.length) this.chunks.push(Buffer.from(chunk.subarray(start)));
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    let response: IpcResponse;
    try {
      response = IpcResponse.parse(JSON.parse(line));
    } catch (err) {
      this.failAll(
        new Error(`The factory at ${this.path} sent an unreadable answer`, { cause: err }),
      );
      this.socket?.destroy();
      return;
    }
    // Responses come in request order, so one without an id answers the oldest request.
    const id = typeof response.id === 'number' ? response.id : this.pending.keys().next().value;
    if (id === undefined) return;
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (response.ok) pending.resolve(response.result);
    else
      pending.reject(
        new IpcError(response.error.code, response.error.message, response.error.issues),
      );
  }

  private failAll(err: Error): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(err);
      this.pending.delete(id);
    }
  }
}
