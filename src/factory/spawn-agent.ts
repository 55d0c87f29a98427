import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { RunExit } from '../core/index.js';
import {
  GUARD_CONTROL_FD,
  GUARD_STDERR_FD,
  GUARD_STDOUT_FD,
  guardCommand,
  parseGuardMessages,
  type GuardMessage,
  type GuardStart,
} from './agent-guard.js';
import { LineSplitter } from './line-splitter.js';
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
 * The process runs under the agent guard (see agent-guard.ts), a small Node process that
 * holds a socket to this one: if this process dies, even by SIGKILL, the guard stops the
 * process group, so an orphaned agent never keeps working on a job. `pid` is still the
 * process's own pid (and group id), and `exit` its own status, as the guard reports them. If
 * the guard itself is killed, the group is stopped and `exit` is the guard's status.
 *
 * @example
 * const out = await spawnProcess({ command: 'bash', args: ['-c', 'sleep 9'], cwd: '/tmp',
 *   env: {}, timeoutMs: 100, graceMs: 1000 });
 * // out.reason === 'timeout', out.exit.signal === 'SIGTERM'
 */
export function spawnProcess(options: SpawnOptions): Promise<SpawnOutcome> {
  const started = Date.now();
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  return new Promise((resolve) => {
    if (options.signal?.aborted) {
      resolve({
        exit: { code: null, signal: null },
        reason: 'aborted',
        spawnError: null,
        pid: null,
        durationMs: 0,
      });
      return;
    }
    const guarded = guardCommand(options.command, options.args);
    const guardEnv: Record<string, string> = {};
    // Only for the PATH lookup fallback of the agent's command, as spawn had it before.
    if (process.env.PATH !== undefined) guardEnv.PATH = process.env.PATH;
    const guard = spawn(guarded.command, guarded.args, {
      cwd: '/',
      env: guardEnv,
      detached: true,
      stdio: [options.stdin ?? 'ignore', 'ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    const stdio = guard.stdio as readonly unknown[];
    const control = (stdio[GUARD_CONTROL_FD] ?? null) as Socket | null;
    const stdout = (stdio[GUARD_STDOUT_FD] ?? null) as Readable | null;
    const stderr = (stdio[GUARD_STDERR_FD] ?? null) as Readable | null;
    /** The agent's pid, also its process group; known once the guard has started it. */
    let pid: number | null = null;
    let reason: SpawnOutcome['reason'] = 'exited';
    let exit: RunExit | null = null;
    let spawnError: Error | null = null;
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    let killTimer: NodeJS.Timeout | null = null;
    let stopping = false;
    /** A stop was asked for before the agent's pid was known. */
    let stopPending = false;
    let closed = false;
    let openPipes = 2;
    let guardExited = false;
    let controlClosed = false;

    const out = new LineSplitter((line) => options.onStdoutLine?.(line), options.maxLineChars);
    const err = new LineSplitter((line) => options.onStderrLine?.(line), options.maxLineChars);
    stdout?.on('data', (chunk: Buffer) => {
      options.onOutput?.(chunk);
      out.write(chunk);
    });
    stderr?.on('data', (chunk: Buffer) => {
      options.onOutput?.(chunk);
      err.write(chunk);
    });

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
      if (pid === null && !guardExited && spawnError === null) {
        stopPending = true; // the guard is starting the agent: stop it once its pid is known
        return;
      }
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
      guard.stdin?.destroy();
      // End of file on the control socket: the guard stops whatever is left and exits.
      control?.destroy();
      out.end();
      err.end();
      resolve({
        exit: exit ?? { code: null, signal: null },
        reason,
        spawnError,
        pid,
        durationMs: Date.now() - started,
      });
    };

    /** The agent has exited and both output pipes are closed (what 'close' was before). */
    const maybeClosed = (): void => {
      if (done || closed || exit === null || openPipes > 0) return;
      closed = true;
      if (killTimer === null) {
        finish();
        return;
      }
      // Stopping, and the pipes are closed: wait until the group is gone (or SIGKILL is due),
      // so a TERM-ignoring grandchild with no pipes open does not outlive the run.
      const poll = (): void => {
        if (done || pid === null) return;
        void groupAlive(pid).then((alive) => {
          if (!alive) finish();
          else if (!done) timers.push(setTimeout(poll, 50));
        });
      };
      poll();
    };
    const onPipeClosed = (): void => {
      openPipes -= 1;
      maybeClosed();
    };
    if (stdout) stdout.once('close', onPipeClosed);
    else openPipes -= 1;
    if (stderr) stderr.once('close', onPipeClosed);
    else openPipes -= 1;

    const onMessage = (message: GuardMessage): void => {
      if (done) return;
      if (message.type === 'spawned') {
        pid = message.pid;
        if (stopPending) stopGroup();
      } else if (message.type === 'error') {
        spawnError = Object.assign(new Error(message.message), {
          code: message.code,
          errno: message.errno,
          syscall: message.syscall,
          path: message.path,
        });
        finish();
      } else if (exit === null) {
        exit = { code: message.code, signal: message.signal };
        // Stragglers in the group (backgrounded children) go with their parent.
        stopGroup();
        maybeClosed();
      }
    };
    /** The guard is gone and so is its control socket: nothing more will be reported. */
    const onGuardGone = (): void => {
      if (done || !guardExited || !controlClosed) return;
      if (pid === null) {
        spawnError ??= new Error(
          `the agent guard exited (code ${guard.exitCode}, signal ${guard.signalCode}) ` +
            'before starting the agent',
        );
        finish();
        return;
      }
      if (exit === null) {
        // The guard died under a running agent (killed by someone): nobody watches the agent
        // anymore, so it stops here too.
        exit = { code: guard.exitCode, signal: guard.signalCode };
        stopGroup();
        maybeClosed();
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
      onGuardGone();
    });
    if (control === null) controlClosed = true;

    guard.on('error', (error) => {
      // Only fatal when the guard never started; otherwise 'exit' follows.
      if (guard.pid === undefined) {
        spawnError = error;
        finish();
      }
    });
    guard.on('exit', () => {
      guardExited = true;
      onGuardGone();
    });
    if (guard.pid !== undefined && control !== null) {
      const start: GuardStart = { cwd: options.cwd, env: options.env, graceMs };
      control.write(`${JSON.stringify(start)}\n`);
    }
  });
}
