import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type ChildStream, LineTail } from './child-output.js';
import { type ExitInfo, type SupervisorEvent, describeExit } from './events.js';
import { DEFAULT_RESTART_POLICY, RestartBackoff, type RestartPolicy } from './restart-policy.js';

/** One process the supervisor runs, restarts and stops. */
export interface ChildSpec {
  /** Names the child in events and forwarded output, e.g. `server`. */
  name: string;
  command: string;
  /** Its arguments; a function is asked again at every restart. */
  args: readonly string[] | (() => readonly string[]);
  /** The whole environment of the child (default: the supervisor's). */
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /**
   * Resolves once a newly started child is ready for the next one to start (it may wait for a
   * line of output); rejecting fails {@link Supervisor.start}. Only the first start waits.
   */
  ready?: (child: StartedChild) => Promise<void>;
  /** How long `ready` may take. Default 30 s. */
  readyTimeoutMs?: number;
  /** How long a stopping child gets between SIGTERM and SIGKILL. Default 10 s. */
  stopGraceMs?: number;
  /**
   * Gives the child an IPC channel (a Node child sees `process.on('disconnect')` when the
   * supervisor dies, even by SIGKILL), so it can stop instead of living on as an orphan.
   */
  parentChannel?: boolean;
}

/** A child as its `ready` check sees it. */
export interface StartedChild {
  readonly pid: number;
  /**
   * The first line of this run's output matching `pattern` (lines already written count);
   * rejects if the child exits first.
   */
  waitForLine(pattern: RegExp, stream?: ChildStream): Promise<RegExpExecArray>;
}

export interface SupervisorOptions {
  /** Receives every event: starts, unexpected exits and their restarts, stops. */
  onEvent?: (event: SupervisorEvent) => void;
  /** Receives every line a child writes (without its newline). */
  onOutput?: (name: string, stream: ChildStream, line: string) => void;
  restart?: RestartPolicy;
  random?: () => number;
}

/** A child exited, or was not ready in time, during {@link Supervisor.start}. */
export class ChildStartError extends Error {
  readonly child: string;
  /** How it ended on its own, or null when the supervisor stopped it for not becoming ready. */
  readonly exit: ExitInfo | null;
  /** The last lines it wrote, oldest first. */
  readonly output: readonly string[];

  constructor(child: string, exit: ExitInfo | null, output: readonly string[], cause?: unknown) {
    super(
      exit === null
        ? `${child} did not become ready${cause instanceof Error ? `: ${cause.message}` : ''}`
        : `${child} exited before it was ready (${describeExit(exit)})`,
      { cause },
    );
    this.name = 'ChildStartError';
    this.child = child;
    this.exit = exit;
    this.output = output;
  }
}

const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_STOP_GRACE_MS = 10_000;

interface Run {
  process: ChildProcess;
  pid: number;
  startedAt: number;
  exited: Promise<ExitInfo>;
  tail: LineTail;
  listeners: Set<(stream: ChildStream, line: string) => void>;
}

interface Slot {
  spec: ChildSpec;
  backoff: RestartBackoff;
  run: Run | null;
  /** Not restarted while its first start is still being checked. */
  starting: boolean;
  restartTimer: NodeJS.Timeout | null;
}

/**
 * Runs child processes as a unit: starts them one after another (each ready before the next),
 * restarts one that exits on its own after a backoff (see {@link RestartBackoff}), and stops
 * them in reverse order, SIGTERM first and SIGKILL after each child's grace period. Children
 * get their own process group, so a Ctrl-C at the terminal reaches only the supervisor, which
 * then stops them in order.
 */
export class Supervisor {
  private readonly slots: Slot[] = [];
  private stopping: Promise<void> | null = null;
  private halted = false;

  constructor(private readonly options: SupervisorOptions = {}) {}

  /** Starts a child and waits until it is ready; throws {@link ChildStartError} if it is not. */
  async start(spec: ChildSpec): Promise<void> {
    if (this.halted) throw new Error(`cannot start ${spec.name}: the supervisor is stopping`);
    const slot: Slot = {
      spec,
      backoff: new RestartBackoff(
        this.options.restart ?? DEFAULT_RESTART_POLICY,
        this.options.random,
      ),
      run: null,
      starting: true,
      restartTimer: null,
    };
    this.slots.push(slot);
    const run = this.spawn(slot, false);
    try {
      await withTimeout(
        Promise.race([
          ready(run, spec),
          run.exited.then((exit) => Promise.reject(new ChildStartError(spec.name, exit, []))),
        ]),
        spec.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      );
    } catch (err) {
      this.slots.splice(this.slots.indexOf(slot), 1);
      let exit: ExitInfo | null = null;
      if (err instanceof ChildStartError) exit = err.exit;
      else await this.halt(run, spec);
      const output = run.tail.get().map((l) => l.line);
      throw new ChildStartError(spec.name, exit, output, err);
    } finally {
      slot.starting = false;
    }
  }

  /** The pid of the named child's current process, or null while it is not running. */
  pid(name: string): number | null {
    return this.slots.find((s) => s.spec.name === name)?.run?.pid ?? null;
  }

  /** Stops every child, the last started first; restarts end. Calling again returns the same promise. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.halted = true;
      for (const slot of this.slots) clearRestart(slot);
      for (const slot of [...this.slots].reverse()) {
        const run = slot.run;
        if (run !== null) await this.halt(run, slot.spec);
      }
    })();
    return this.stopping;
  }

  /** SIGKILLs every child at once (a forced stop) and waits until they are gone. */
  async kill(): Promise<void> {
    this.halted = true;
    for (const slot of this.slots) clearRestart(slot);
    const runs = this.slots.flatMap((s) => (s.run === null ? [] : [s.run]));
    for (const run of runs) run.process.kill('SIGKILL');
    await Promise.all(runs.map((r) => r.exited));
  }

  private spawn(slot: Slot, restart: boolean): Run {
    const { spec } = slot;
    const args = typeof spec.args === 'function' ? spec.args() : spec.args;
    const child = spawn(spec.command, [...args], {
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
      env: spec.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe', ...(spec.parentChannel === true ? ['ipc' as const] : [])],
      detached: true,
    });
    const run: Run = {
      process: child,
      pid: child.pid ?? -1,
      startedAt: Date.now(),
      exited: new Promise<ExitInfo>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
        // A child that could not be spawned at all (no such command) never exits.
        child.on('error', () => {
          if (child.pid === undefined) resolve({ code: null, signal: null });
        });
      }),
      tail: new LineTail(),
      listeners: new Set(),
    };
    slot.run = run;
    for (const stream of ['stdout', 'stderr'] as const)
      createInterface({ input: child[stream]!, crlfDelay: Infinity }).on('line', (line) => {
        run.tail.push({ stream, line });
        for (const listener of run.listeners) listener(stream, line);
        this.options.onOutput?.(spec.name, stream, line);
      });
    if (child.pid !== undefined)
      this.emit({ type: 'started', name: spec.name, pid: child.pid, restart });
    void run.exited.then((exit) => this.exited(slot, run, exit));
    return run;
  }

  private exited(slot: Slot, run: Run, exit: ExitInfo): void {
    if (slot.run === run) slot.run = null;
    if (this.halted || slot.starting || !this.slots.includes(slot)) return;
    const restartInMs = slot.backoff.next(Date.now() - run.startedAt);
    this.emit({ type: 'exited', name: slot.spec.name, pid: run.pid, exit, restartInMs });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (!this.halted) this.spawn(slot, true);
    }, restartInMs);
  }

  /** SIGTERM, SIGKILL after the grace period, and how the child ended. */
  private async halt(run: Run, spec: ChildSpec): Promise<ExitInfo> {
    this.emit({ type: 'stopping', name: spec.name, pid: run.pid });
    run.process.kill('SIGTERM');
    const graceMs = spec.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace over'>((resolve) => {
      timer = setTimeout(() => resolve('grace over'), graceMs);
    });
    const first = await Promise.race([run.exited, graceOver]);
    clearTimeout(timer);
    if (first === 'grace over') {
      this.emit({ type: 'killing', name: spec.name, pid: run.pid, graceMs });
      run.process.kill('SIGKILL');
    }
    const exit = await run.exited;
    this.emit({ type: 'stopped', name: spec.name, pid: run.pid, exit });
    return exit;
  }

  private emit(event: SupervisorEvent): void {
    this.options.onEvent?.(event);
  }
}

function clearRestart(slot: Slot): void {
  if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
  slot.restartTimer = null;
}

async function ready(run: Run, spec: ChildSpec): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    run.process.once('spawn', resolve);
    run.process.once('error', reject);
  });
  if (spec.ready === undefined) return;
  await spec.ready({
    pid: run.pid,
    waitForLine: (pattern, stream) => waitForLine(run, pattern, stream),
  });
}

function waitForLine(run: Run, pattern: RegExp, only?: ChildStream): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    for (const seen of run.tail.get()) {
      const match = only === undefined || seen.stream === only ? pattern.exec(seen.line) : null;
      if (match !== null) return resolve(match);
    }
    const listener = (stream: ChildStream, line: string) => {
      if (only !== undefined && stream !== only) return;
      const match = pattern.exec(line);
      if (match === null) return;
      run.listeners.delete(listener);
      resolve(match);
    };
    run.listeners.add(listener);
    void run.exited.then((exit) => {
      run.listeners.delete(listener);
      reject(new Error(`exited (${describeExit(exit)}) before writing a line matching ${pattern}`));
    });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
