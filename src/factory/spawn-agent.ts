import { spawn } from 'node:child_process';
import type { RunExit } from '../core/index.js';
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
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid ?? null;
    let reason: SpawnOutcome['reason'] = 'exited';
    let exit: RunExit | null = null;
    let spawnError: Error | null = null;
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    let killTimer: NodeJS.Timeout | null = null;
    let stopping = false;
    let closed = false;

    const out = new LineSplitter((line) => options.onStdoutLine?.(line), options.maxLineChars);
    const err = new LineSplitter((line) => options.onStderrLine?.(line), options.maxLineChars);
    child.stdout?.on('data', (chunk: Buffer) => {
      options.onOutput?.(chunk);
      out.write(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
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
      child.stdout?.destroy();
      child.stderr?.destroy();
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

    child.on('error', (error) => {
      // Only fatal when the process never started; otherwise 'close' follows.
      if (pid === null) {
        spawnError = error;
        finish();
      }
    });
    child.on('exit', (code, sig) => {
      exit = { code, signal: sig };
      // Stragglers in the group (backgrounded children) go with their parent.
      stopGroup();
    });
    child.on('close', () => {
      if (exit === null) exit = { code: child.exitCode, signal: child.signalCode };
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
    });
  });
}
