import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { RunExit } from '../core/index.js';
import {
  GUARD_CONTROL_FD,
  guardCommand,
  parseGuardMessages,
  type GuardMessage,
} from './agent-guard.js';
import { LineSplitter } from './line-splitter.js';
import type { PipePoller, PolledPipe } from './pipe-poller.js';
import { groupAlive } from './process-group.js';

export const DEFAULT_GRACE_MS = 5000;

export interface SpawnOptions {
  command: string;
  args: string[];
  cwd: string;
  /** The complete environment of the child (nothing is inherited implicitly). */
  env: Record<string, string>;
  stdin?: 'ignore' | 'pipe';
  /** Stop the process group after this long; null or undefined: no time limit. */
  timeoutMs?: number | null;
  /** Between SIGTERM and SIGKILL. */
  graceMs?: number;
  /** Aborting stops the process group the same way a timeout does. */
  signal?: AbortSignal;
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  /** Raw output, both streams, in arrival order (verify keeps a tail of it). */
  onOutput?: (chunk: Buffer) => void;
  maxLineChars?: number;
  /**
   * Read stdout and stderr with this poller (one timer for every run) instead of a stream per
   * pipe (a wakeup per write): for long, chatty agents. Verify and setup commands leave it
   * unset, so their two streams interleave exactly as written. When the poller cannot make its
   * pipes (no mkfifo), ordinary pipes are used.
   */
  poller?: PipePoller;
}

export interface SpawnOutcome {
  exit: RunExit;
  /** Why the process ended: on its own, at the time limit, or because the signal aborted. */
  reason: 'exited' | 'timeout' | 'aborted';
  /** Set when the process could not be started (binary missing, cwd missing…). */
  spawnError: Error | null;
  pid: number | null;
  durationMs: number;
}

/**
 * Runs one process in its own process group (`detached: true`) and waits for it. On timeout
 * or abort the whole group gets SIGTERM, then SIGKILL after `graceMs` if anything in it is
 * still alive, so grandchildren the process started (a dev server, a `sleep`) go too. When
 * the process exits on its own, stragglers left in its group are stopped the same way, so a
 * backgrounded child holding stdout cannot keep the run open. stdout and stderr are split into
 * lines (see LineSplitter). Never rejects: a process that cannot start resolves with
 * `spawnError` set.
 *
 * The process starts through the agent guard (see agent-guard.ts): a `sh` that forks a
 * watcher holding a socket to this process, then `exec`s the command. If this process dies,
 * even by SIGKILL, the watcher stops the process group, so an orphaned agent never keeps
 * working on a job. `pid` and `exit` are the process's own (it is this process's child). If
 * the watcher is killed, the group is stopped as on abort (nobody would watch it any more).
 *
 * @example
 * const out = await spawnProcess({ command: 'bash', args: ['-c', 'sleep 9'], cwd: '/tmp',
 *   env: {}, timeoutMs: 100, graceMs: 1000 });
 * // out.reason === 'timeout', out.exit.signal === 'SIGTERM'
 */
export async function spawnProcess(options: SpawnOptions): Promise<SpawnOutcome> {
  const started = Date.now();
  let polled: PolledPipe[] | null = null;
  if (options.poller !== undefined && !options.signal?.aborted) {
    polled = await options.poller.open(2).catch(() => null);
  }
  return run(options, started, polled);
}

/** A child's output pipe, read as a stream or by a PipePoller. */
interface OutputSource {
  start(onData: (chunk: Buffer) => void, onEnd: () => void): void;
  destroy(): void;
}

function streamSource(stream: Readable): OutputSource {
  return {
    start: (onData, onEnd) => {
      stream.on('data', onData);
      stream.once('close', onEnd);
    },
    destroy: () => stream.destroy(),
  };
}

function run(
  options: SpawnOptions,
  started: number,
  polled: PolledPipe[] | null,
): Promise<SpawnOutcome> {
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  return new Promise((resolve) => {
    if (options.signal?.aborted) {
      for (const p of polled ?? []) p.destroy();
      resolve({
        exit: { code: null, signal: null },
        reason: 'aborted',
        spawnError: null,
        pid: null,
        durationMs: 0,
      });
      return;
    }
    const guarded = guardCommand(options.command, options.args, options.cwd, graceMs);
    const [outPipe, errPipe] = polled ?? [];
    let child: ChildProcess;
    try {
      child = spawn(guarded.command, guarded.args, {
        cwd: '/',
        env: options.env,
        detached: true,
        stdio: [
          options.stdin ?? 'ignore',
          outPipe?.writeFd ?? 'pipe',
          errPipe?.writeFd ?? 'pipe',
          'pipe',
        ],
      });
    } catch (err) {
      for (const p of polled ?? []) p.destroy();
      throw err;
    } finally {
      // The child has its own copies now (or never will): ours would hold end of file back.
      outPipe?.closeWriteEnd();
      errPipe?.closeWriteEnd();
    }
    const control = ((child.stdio as readonly unknown[])[GUARD_CONTROL_FD] ??
      null) as Socket | null;
    const stdout: OutputSource | null =
      outPipe ?? (child.stdout === null ? null : streamSource(child.stdout));
    const stderr: OutputSource | null =
      errPipe ?? (child.stderr === null ? null : streamSource(child.stderr));
    /** The process's pid, also its process group id. */
    const pid = child.pid ?? null;
    /** The guard's watcher, a member of the group that stays until the group is gone. */
    let watcher: number | null = null;
    let reason: SpawnOutcome['reason'] = 'exited';
    let exit: RunExit | null = null;
    let spawnError: Error | null = null;
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    let killTimer: NodeJS.Timeout | null = null;
    let stopping = false;
    let closed = false;
    let openPipes = 2;
    let controlClosed = control === null;

    const out = new LineSplitter((line) => options.onStdoutLine?.(line), options.maxLineChars);
    const err = new LineSplitter((line) => options.onStderrLine?.(line), options.maxLineChars);

    const signalGroup = (sig: NodeJS.Signals): boolean => {
      if (pid === null) return false;
      try {
        process.kill(-pid, sig);
        return true;
      } catch {
        return false; // ESRCH: the group is gone
      }
    };
    /** SIGTERM now, SIGKILL after the grace period if the group still exists. */
    const stopGroup = (): void => {
      if (stopping) return;
      stopping = true;
      if (!signalGroup('SIGTERM')) return;
      killTimer = setTimeout(() => {
        killTimer = null;
        signalGroup('SIGKILL');
        if (closed) finish();
        // A process that left the group (setsid) may still hold our pipes: stop waiting.
        else timers.push(setTimeout(() => finish(), 1000));
      }, graceMs);
    };

    const onAbort = (): void => {
      if (exit === null && reason === 'exited') reason = 'aborted';
      stopGroup();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.timeoutMs != null) {
      timers.push(
        setTimeout(() => {
          if (exit === null && reason === 'exited') reason = 'timeout';
          stopGroup();
        }, options.timeoutMs),
      );
    }

    const finish = (): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      if (killTimer !== null) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      stdout?.destroy();
      stderr?.destroy();
      child.stdin?.destroy();
      // End of file on the control socket: the watcher stops whatever is left and exits.
      control?.destroy();
      out.end();
      err.end();
      resolve({
        exit: exit ?? { code: null, signal: null },
        reason,
        spawnError,
        pid: spawnError === null ? pid : null,
        durationMs: Date.now() - started,
      });
    };

    /** The process has exited and both output pipes are closed (what 'close' was before). */
    const maybeClosed = (): void => {
      if (done || closed || exit === null || openPipes > 0) return;
      // The guard's report (watching or not started) comes first: it tells which it was.
      if (watcher === null && !controlClosed) return;
      closed = true;
      if (killTimer === null) {
        finish();
        return;
      }
      // Stopping, and the pipes are closed: wait until the group is gone (or SIGKILL is due),
      // so a TERM-ignoring grandchild with no pipes open does not outlive the run.
      const poll = (): void => {
        if (done || pid === null) return;
        void groupAlive(pid, watcher).then((alive) => {
          if (!alive) finish();
          else if (!done) timers.push(setTimeout(poll, 50));
        });
      };
      poll();
    };
    /** After the exit, once the guard has told whether it started the process. */
    const afterExit = (): void => {
      if (done || exit === null || (watcher === null && !controlClosed)) return;
      // Stragglers in the group (backgrounded children) go with their parent.
      stopGroup();
      maybeClosed();
    };
    const onPipeClosed = (): void => {
      openPipes -= 1;
      maybeClosed();
    };
    const read = (source: OutputSource | null, lines: LineSplitter): void => {
      if (source === null) {
        openPipes -= 1;
        return;
      }
      source.start((chunk) => {
        options.onOutput?.(chunk);
        lines.write(chunk);
      }, onPipeClosed);
    };
    read(stdout, out);
    read(stderr, err);

    const onMessage = (message: GuardMessage): void => {
      if (done) return;
      if (message.type === 'watching') {
        watcher = message.pid;
        afterExit();
      } else if (message.type === 'error') {
        spawnError = notStarted(options, message.reason);
        finish();
      }
    };

    let pending = '';
    control?.setEncoding('utf8');
    control?.on('data', (text: string) => {
      pending = parseGuardMessages(pending + text, onMessage);
    });
    control?.on('error', () => {}); // EPIPE/ECONNRESET: 'close' follows
    control?.on('close', () => {
      controlClosed = true;
      if (done) return;
      // The watcher is gone under a running process (killed by someone): nobody would stop
      // the group if this process died, so it stops now.
      if (watcher !== null && exit === null) stopGroup();
      afterExit();
    });

    child.on('error', (error) => {
      // Only fatal when the guard never started; otherwise 'exit' follows.
      if (child.pid === undefined) {
        spawnError = error;
        finish();
      }
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Its last output and end of file are likely in the pipes now: read them without waiting.
      if (polled !== null) options.poller?.poke();
      afterExit();
    });
  });
}

/** The error of a process the guard could not start, worded as spawn's own. */
function notStarted(options: SpawnOptions, reason: 'cwd' | 'command'): Error {
  const what =
    reason === 'cwd'
      ? `the working directory ${options.cwd} does not exist`
      : `${options.command} was not found on PATH (${options.env.PATH ?? 'unset'})`;
  return Object.assign(new Error(`spawn ${options.command} ENOENT: ${what}`), {
    code: 'ENOENT',
    errno: -2,
    syscall: `spawn ${options.command}`,
    path: reason === 'cwd' ? options.cwd : options.command,
    spawnargs: options.args,
  });
}
