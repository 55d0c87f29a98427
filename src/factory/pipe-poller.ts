import { execFile } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How often a quiet pipe is read. */
export const DEFAULT_POLL_MS = 100;
/**
 * A pipe that delivers this much in one poll (over 640 KB/s at the default interval) becomes
 * a stream for the rest of its life: at that rate a wakeup per write costs less than the agent
 * blocking on a full pipe (64 KiB on Linux) until the next poll.
 */
export const DEFAULT_STREAM_AFTER_BYTES = 64 * 1024;
/**
 * A pipe that stays empty is read less and less often, down to once in this long (a quiet
 * stderr costs a failed read per poll otherwise). A child's exit reads every pipe at once.
 */
export const DEFAULT_MAX_IDLE_MS = 400;
const READ_BYTES = 64 * 1024;
/** FIFOs one mkfifo makes at a time: the spares serve the next runs without a process each. */
const FIFO_BATCH = 16;

export interface PipePollerOptions {
  /** How often quiet pipes are read. Default 100 ms. */
  intervalMs?: number;
  /** See DEFAULT_STREAM_AFTER_BYTES. */
  streamAfterBytes?: number;
  /** See DEFAULT_MAX_IDLE_MS; at least the interval. */
  maxIdleMs?: number;
  /** The mkfifo(1) to run; default `mkfifo` on the factory's PATH. */
  mkfifo?: string;
  /**
   * Told when `open` fails (its caller then uses ordinary pipes): a place to log it, since
   * spawnProcess falls back silently.
   */
  onOpenError?: (err: Error) => void;
}

/**
 * Reads child processes' output pipes on one timer, instead of one event-loop wakeup per write
 * of each child. An agent printing a JSON line at a time wakes a stream reader for every line;
 * with 50 agents that is most of a supervising daemon's CPU. Here every pipe is read with one
 * non-blocking `read` per interval (100 ms by default), all in the same timer callback, and a
 * child's exit (see `poke`) reads its pipes at once, so the end of a run is not delayed.
 *
 * A pipe is a FIFO made with mkfifo(1) in a private temporary directory (16 at a time, so most
 * runs start no mkfifo process) and unlinked as soon as both ends are open. The read end is non-blocking and stays with this process; the write end
 * (blocking, as programs expect of their stdout) goes to the child's stdio and is closed here
 * after the spawn. A pipe that turns out to carry a flood is handed to a stream (see
 * DEFAULT_STREAM_AFTER_BYTES), so throughput never depends on the interval. Bytes arrive in
 * order, and end of file comes once every writer (the child, and anything it started that
 * kept the descriptor) has closed it.
 *
 * @example
 * const poller = new PipePoller();
 * const [out] = await poller.open(1);
 * const child = spawn('echo', ['hi'], { stdio: ['ignore', out.writeFd, 'inherit'] });
 * out.closeWriteEnd();
 * out.start((chunk) => process.stdout.write(chunk), () => console.log('end'));
 * child.on('exit', () => poller.poke());
 */
export class PipePoller {
  /** Being polled. */
  private readonly pipes = new Set<PolledPipe>();
  /** Opened and not yet ended or destroyed (polled, streamed, or not started). */
  private readonly opened = new Set<PolledPipe>();
  private readonly intervalMs: number;
  private readonly streamAfterBytes: number;
  /** Polls an empty pipe may skip, at most. */
  private readonly maxSkip: number;
  private readonly mkfifo: string;
  private readonly onOpenError: ((err: Error) => void) | undefined;
  private readonly scratch = Buffer.allocUnsafe(READ_BYTES);
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private dir: string | null = null;
  private made = 0;
  /** FIFOs made ahead in the directory, not opened yet. */
  private spare: string[] = [];
  private removeDir: (() => void) | null = null;

  constructor(options: PipePollerOptions = {}) {
    this.intervalMs = options.intervalMs ?? DEFAULT_POLL_MS;
    this.streamAfterBytes = options.streamAfterBytes ?? DEFAULT_STREAM_AFTER_BYTES;
    this.mkfifo = options.mkfifo ?? 'mkfifo';
    this.onOpenError = options.onOpenError;
    if (!(this.intervalMs > 0))
      throw new RangeError(`intervalMs must be > 0, got ${this.intervalMs}`);
    const maxIdleMs = options.maxIdleMs ?? DEFAULT_MAX_IDLE_MS;
    this.maxSkip = Math.max(0, Math.floor(maxIdleMs / this.intervalMs) - 1);
  }

  /** Pipes being polled now (not those not started yet, nor those handed to a stream). */
  get size(): number {
    return this.pipes.size;
  }

  /**
   * `count` new pipes, their write ends open for a child's stdio.
   *
   * @throws Error naming mkfifo and why it failed (not installed, no temporary directory…);
   *   the caller can fall back to ordinary pipes.
   */
  async open(count: number): Promise<PolledPipe[]> {
    try {
      return await this.tryOpen(count);
    } catch (err) {
      this.onOpenError?.(err as Error);
      throw err;
    }
  }

  private async tryOpen(count: number): Promise<PolledPipe[]> {
    const dir = this.fifoDir();
    if (this.spare.length < count) {
      const made = Array.from({ length: Math.max(count, FIFO_BATCH) }, () =>
        join(dir, `p${++this.made}`),
      );
      await this.makeFifos(made);
      this.spare.push(...made);
    }
    const paths = this.spare.splice(0, count);
    const opened: PolledPipe[] = [];
    try {
      for (const p of paths) {
        // The reader first: opening the write end blocks until a reader exists.
        const readFd = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
        let writeFd: number;
        try {
          writeFd = openSync(p, constants.O_WRONLY);
        } catch (err) {
          closeSync(readFd);
          throw err;
        }
        const pipe = new PolledPipe(this, readFd, writeFd);
        this.opened.add(pipe);
        opened.push(pipe);
      }
      return opened;
    } catch (err) {
      for (const pipe of opened) pipe.destroy();
      // The spares may be gone with the directory too: make new ones next time.
      this.spare = [];
      throw err;
    } finally {
      for (const p of paths) rmSync(p, { force: true });
    }
  }

  private makeFifos(paths: string[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      execFile(this.mkfifo, ['-m', '600', ...paths], (err, _out, stderr) => {
        if (err === null) resolve();
        else
          reject(
            new Error(
              `could not make a FIFO with ${this.mkfifo}: ${stderr.trim() || err.message}`,
              { cause: err },
            ),
          );
      });
    });
  }

  /**
   * Reads every pipe soon, to its end of file if that has come (a child exited: its last output
   * and end of file are likely ready). A pipe not ended yet is read again at the next poll.
   */
  poke(): void {
    for (const pipe of this.pipes) pipe.skip = pipe.idle = 0;
    if (this.immediate !== null || this.pipes.size === 0) return;
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.tick(true);
    });
  }

  /** Stops reading and closes every pipe it opened, and removes the FIFO directory. */
  close(): void {
    for (const pipe of [...this.opened]) pipe.destroy();
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    this.removeDir?.();
  }

  /** @internal */
  add(pipe: PolledPipe): void {
    this.pipes.add(pipe);
    this.timer ??= setTimeout(() => this.tick(), this.intervalMs);
  }

  /** @internal Not polled any more. */
  remove(pipe: PolledPipe): void {
    this.pipes.delete(pipe);
    if (this.pipes.size > 0) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** @internal Ended or destroyed. */
  forget(pipe: PolledPipe): void {
    this.opened.delete(pipe);
    this.pipes.delete(pipe);
    if (this.pipes.size > 0) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Reads the pipes that are due (`all`: every pipe). */
  private tick(all = false): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const pipe of [...this.pipes]) {
      if (!all && pipe.skip > 0) {
        pipe.skip -= 1;
        continue;
      }
      const bytes = pipe.read(this.scratch, this.streamAfterBytes, all);
      if (bytes >= this.streamAfterBytes) pipe.toStream();
      // Empty: skip 1, 2, 4… polls, up to maxSkip; data: read again next poll.
      pipe.idle = bytes > 0 ? 0 : Math.min(this.maxSkip, Math.max(1, pipe.idle * 2));
      pipe.skip = pipe.idle;
    }
    if (this.pipes.size > 0) this.timer = setTimeout(() => this.tick(), this.intervalMs);
  }

  private fifoDir(): string {
    // Made again when something (a tmp cleaner) removed it.
    if (this.dir !== null && existsSync(this.dir)) return this.dir;
    this.removeDir?.();
    const dir = mkdtempSync(join(tmpdir(), 'fleet-fifo-'));
    const remove = (): void => rmSync(dir, { recursive: true, force: true });
    process.once('exit', remove);
    this.removeDir = () => {
      process.removeListener('exit', remove);
      remove();
      this.dir = null;
      this.removeDir = null;
      this.spare = [];
    };
    this.dir = dir;
    return dir;
  }
}

/** One FIFO of a PipePoller: polled until it ends, or handed to a stream when it floods. */
export class PolledPipe {
  private writeEnd: number | null;
  private readEnd: number | null;
  private stream: Socket | null = null;
  private onData: ((chunk: Buffer) => void) | null = null;
  private onEnd: (() => void) | null = null;
  private ended = false;
  /** @internal Polls to skip before the next read, and the current run of empty reads. */
  skip = 0;
  /** @internal */
  idle = 0;

  /** @internal Made by PipePoller.open. */
  constructor(
    private readonly poller: PipePoller,
    readFd: number,
    writeFd: number,
  ) {
    this.readEnd = readFd;
    this.writeEnd = writeFd;
  }

  /** The write end for the child's stdio; null once closed here. */
  get writeFd(): number | null {
    return this.writeEnd;
  }

  /** Closes this process's copy of the write end (the child has its own after the spawn). */
  closeWriteEnd(): void {
    if (this.writeEnd === null) return;
    closeSync(this.writeEnd);
    this.writeEnd = null;
  }

  /** Starts reading: `onData` for each chunk in order, then `onEnd` once at end of file. */
  start(onData: (chunk: Buffer) => void, onEnd: () => void): void {
    if (this.onData !== null) throw new Error('the pipe was already started');
    this.onData = onData;
    this.onEnd = onEnd;
    if (!this.ended) this.poller.add(this);
  }

  /** Stops reading and closes both ends; `onEnd` is not called. */
  destroy(): void {
    this.closeWriteEnd();
    this.ended = true;
    this.poller.forget(this);
    this.stream?.destroy();
    this.stream = null;
    if (this.readEnd !== null) closeSync(this.readEnd);
    this.readEnd = null;
  }

  /**
   * @internal Reads what the pipe holds, up to about `limit` bytes; returns the bytes read.
   * End of file (or a read error, which ends the pipe too) calls `onEnd`. `toEnd`: read until
   * the pipe says it is empty or ended, even after a short read.
   */
  read(scratch: Buffer, limit: number, toEnd = false): number {
    let total = 0;
    while (this.readEnd !== null && total < limit) {
      let n: number;
      try {
        n = readSync(this.readEnd, scratch, 0, scratch.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return total;
        if (code === 'EINTR') continue;
        this.end();
        return total;
      }
      if (n === 0) {
        this.end();
        return total;
      }
      total += n;
      this.onData?.(Buffer.from(scratch.subarray(0, n)));
      // A short read emptied the pipe: skip the read that would only say so (unless the
      // caller waits for end of file, which a writer that just exited leaves next).
      if (n < scratch.length && !toEnd) return total;
    }
    return total;
  }

  /** @internal The rest of this pipe is read by a stream (a wakeup per write). */
  toStream(): void {
    if (this.readEnd === null || this.stream !== null) return;
    this.poller.remove(this);
    const socket = new Socket({ fd: this.readEnd, readable: true, writable: false });
    this.readEnd = null; // the socket owns (and closes) the descriptor now
    this.stream = socket;
    socket.on('data', (chunk: Buffer) => this.onData?.(chunk));
    socket.on('error', () => {}); // 'close' follows
    socket.once('close', () => {
      this.stream = null;
      this.end();
    });
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.poller.forget(this);
    if (this.readEnd !== null) closeSync(this.readEnd);
    this.readEnd = null;
    this.onEnd?.();
  }
}
