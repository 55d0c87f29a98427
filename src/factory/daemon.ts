import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  FactoryConnection,
  FactoryProtocolError,
  FleetConnectionError,
  type ClaimResult,
  type ReconnectBackoff,
  type RunFailure,
} from '../client/index.js';
import { type FencedRef, eventBatch } from '../client/factory-connection.js';
import type { EventInput, Insights, Job } from '../core/index.js';
import type { AgentState, Engine } from '../engines/engine.js';
import { engineFor } from '../engines/registry.js';
import type { DaemonControl, FactorySnapshot, RunSnapshot } from './daemon-control.js';
import { IpcError } from './ipc/protocol.js';
import { RunInbox } from './ipc/inbox.js';
import { EventSpool } from './daemon/spool.js';
import { parseGate, runGate, type GateSpec } from './gate.js';
import { DEFAULT_POLL_MS, PipePoller } from './pipe-poller.js';
import { LEASE_LOST, runJob, type RunJobInput, type RunOutcome } from './run-job.js';
import { parseStall } from './watchdog.js';

export interface FactoryOptions {
  /** The control plane, e.g. `http://127.0.0.1:7070`. */
  server: string;
  /** A factory (or admin) token secret. */
  token: string;
  /** The tenant to serve with an admin token. */
  tenant?: string;
  name: string;
  /** How many jobs run at once. */
  seats: number;
  capabilities: string[];
  /**
   * Local state: `worktrees/` (git worktrees of runs), `scratch/<job id>/` (the cwd of a job
   * whose manifest names none), `spool/<job id>.jsonl` (events kept while disconnected, or
   * past `pendingLimit`).
   */
  workDir: string;
  clock?: () => number;
  logger: Logger;
  /** Claims at least this often even without a wake. Default 2 s. */
  pollMs?: number;
  /** Lease TTL asked for on claim; default: the server's. */
  leaseTtlMs?: number;
  /** Delays between reconnect attempts. */
  reconnect?: ReconnectBackoff;
  /** Events kept per run while disconnected; past it the oldest go. Default 10 000. */
  spoolLimit?: number;
  /**
   * Unsent events a run keeps in memory; past it they go to the end of its spool file and are
   * sent from there, in order (a run flooding faster than the server takes its events costs
   * disk, not memory). Default 20 000 (about 10 MB).
   */
  pendingLimit?: number;
  /**
   * Events are sent at least this often. Default 200 ms: each send costs a frame and a
   * loopback or network write whatever its size, so fewer, fuller batches are cheaper.
   */
  flushMs?: number;
  /**
   * Agents' output is read every this many ms, all runs in one timer callback (see
   * PipePoller), instead of on every write; null: on every write. Default 100 ms.
   */
  pollOutputMs?: number | null;
  /** SIGTERM → SIGKILL grace for agents. */
  graceMs?: number;
  /**
   * Each seat gets `portsPerSeat` ports from `portBase` on (seat i: portBase + i × portsPerSeat
   * on), handed to its runs as FLEET_PORT (the first) and FLEET_PORT_COUNT, so agents that
   * start dev servers or tests on ports do not collide. Defaults 41000 and 10.
   */
  portBase?: number;
  portsPerSeat?: number;
  version?: string;
}

export type RunningFactory = DaemonControl & {
  /** Stops at once: runs are stopped and checkpointed, the connection closed. */
  stop(): Promise<void>;
  readonly connection: FactoryConnection;
};

/** The abort reason of a run stopped by a graceful shutdown (reported as a retryable crash). */
export const SHUTDOWN = 'shutdown';
/** The first port of seat 0, and how many ports each seat gets (FLEET_PORT…). */
const DEFAULT_PORT_BASE = 41_000;
const DEFAULT_PORTS_PER_SEAT = 10;
/** Events per batch on the events lane. */
const BATCH = 500;
/**
 * About how much (characters of JSON) one events request may carry, all runs' batches together:
 * a frame must stay under the server's 8 MiB limit. One event always goes, and none is over
 * about 1 Mi characters (a line is cut there), so a request stays under 8 MiB even when every
 * character takes 6 bytes (an escaped control character).
 */
const REQUEST_CHARS = 1024 * 1024;
/** Unsent events a run keeps in memory by default (see FactoryOptions.pendingLimit). */
const PENDING_LIMIT = 20_000;

/** One run's events in one events request: from its spool or from memory. */
interface Batch {
  seat: Seat;
  events: EventInput[];
  spooled: boolean;
  /** About how much JSON the events take: their spool lines' bytes, or approxChars. */
  size: number;
}

/** Removes a batch the server has taken (or refused for good) from where it came from. */
async function sent(batch: Batch): Promise<void> {
  if (batch.spooled) await batch.seat.spool.drop(batch.events.length);
  else batch.seat.pending.splice(0, batch.events.length);
}

/** One seat's run. */
interface Seat {
  ref: FencedRef;
  job: Job;
  controller: AbortController;
  state: AgentState | 'stalled';
  startedAt: number;
  lastEvent: { type: string; at: number } | null;
  insights: Insights;
  /** Events not yet sent (in order, after whatever is in the spool). */
  pending: EventInput[];
  spool: EventSpool;
  /** The server refused this run's events (stale lease): further events are dropped. */
  refused: boolean;
  /** The local number of the run's latest event (exactly-once delivery; see eventBatch). */
  localSeq: number;
  /** Resolves when the run has been reported and the seat is free. */
  done: Promise<void>;
  /** Messages for the agent (IPC notify / resume). */
  inbox: RunInbox;
  /** The run's job-scoped token from the server (FLEET_TOKEN), when it sent one. */
  agentToken: string | null;
  /** Which seat (0-based) the run holds: its ports are FLEET_PORT… (see FactoryOptions). */
  index: number;
}

/**
 * Starts a factory daemon: connects, claims work while seats are free (on wake, on connect,
 * after every run and every `pollMs`), runs each assignment with {@link runJob} in its own seat,
 * streams its events, renews every lease in one batched heartbeat, and reports the outcome.
 *
 * The job's working directory is `job.manifest.cwd` (relative paths against `workDir`); a job
 * without one runs in a scratch directory `workDir/scratch/<job id>`. Other manifest fields
 * read: `env` (string map), `setup`, `fixAttempts`, `yolo`, `model`, `base` (the branch a run
 * starts from), `gate` (the job is a plan's gate: see runGate; no engine runs). A malformed
 * `base` or `gate` fails the run, not retryable, naming the field.
 *
 * While disconnected runs go on; their events go to a bounded spool file per run
 * (`workDir/spool`), sent in order before newer events once reconnected. A run whose lease the
 * server no longer recognises (reconcile, heartbeat, refused events) is stopped as
 * `lease_lost` and never completed; a cancelled run is stopped and checkpointed locally.
 * A runner or report that throws is logged and frees its seat: the daemon goes on.
 *
 * Delivery of events is exactly once: each run numbers its events (kept in the spool too), and
 * the server skips what it already stored of a batch sent again after a reconnect.
 */
export async function startFactory(options: FactoryOptions): Promise<RunningFactory> {
  const factory = new Factory(options);
  await factory.start();
  return factory;
}

class Factory implements DaemonControl {
  readonly connection: FactoryConnection;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly seats = new Map<string, Seat>();
  private draining = false;
  /** The server has heard of this factory's drain (it told us, or took our `drain`). */
  private drainKnown = false;
  private closed = false;
  private claiming = false;
  private claimAgain = false;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** The armed flush timer is due at once (a full batch is waiting). */
  private flushNow = false;
  private flushing: Promise<void> = Promise.resolve();
  /** Which run's batch goes first in the next events request. */
  private rotation = 0;
  private stopHeartbeats: () => void = () => undefined;
  private shuttingDown: Promise<void> | null = null;
  /** Set when a shutdown starts (its drain stays local: the factory goes offline anyway). */
  private stopping = false;
  private wasConnected = false;
  /** Reads every agent's output on one timer; null: streams (disabled, or no mkfifo). */
  private poller: PipePoller | null;

  constructor(private readonly options: FactoryOptions) {
    this.log = options.logger;
    this.clock = options.clock ?? Date.now;
    const pollMs = options.pollOutputMs === undefined ? DEFAULT_POLL_MS : options.pollOutputMs;
    this.poller =
      pollMs === null
        ? null
        : new PipePoller({
            intervalMs: pollMs,
            onOpenError: (err) =>
              this.log.warn({ err }, "could not make an agent's output pipes; using ordinary ones"),
          });
    this.connection = new FactoryConnection({
      baseUrl: options.server,
      token: options.token,
      tenant: options.tenant,
      factory: {
        name: options.name,
        kind: 'factory',
        capabilities: options.capabilities,
        seats: options.seats,
        version: options.version ?? 'unknown',
      },
      heldRuns: () => [...this.seats.values()].map((s) => s.ref),
      onWake: () => this.claimSoon(),
      onCancel: (jobId, epoch, reason) => this.stopRun(jobId, epoch, 'cancelled', reason),
      onStale: (refs, via) => {
        for (const r of refs) this.stopRun(r.jobId, r.epoch, LEASE_LOST, `stale lease (${via})`);
      },
      onState: (state) => {
        if (state === 'connected') {
          this.wasConnected = true;
          this.flushSoon(0);
          if (this.connection.hello?.draining === true) this.drainedByServer('on reconnect');
          // A drain asked for while the server was unreachable reaches it now.
          else if (this.draining && !this.drainKnown) void this.tellDrain();
        }
      },
      logger: this.log,
      ...(options.reconnect === undefined ? {} : { reconnect: options.reconnect }),
    });
  }

  async start(): Promise<void> {
    await mkdir(this.options.workDir, { recursive: true });
    if (this.poller !== null) {
      try {
        for (const pipe of await this.poller.open(1)) pipe.destroy();
      } catch (err) {
        this.log.warn(
          { err },
          "agents' output is read on every write: polling needs mkfifo (coreutils) on PATH",
        );
        this.poller.close();
        this.poller = null;
      }
    }
    await this.connection.connect();
    this.stopHeartbeats = this.connection.startHeartbeats(
      () => [...this.seats.values()].map((s) => s.ref),
      { onError: (err) => this.log.warn({ err }, 'heartbeat got no answer') },
    );
    this.pollTimer = setInterval(() => this.claimSoon(), this.options.pollMs ?? 2_000);
    this.pollTimer.unref?.();
    this.claimSoon();
  }

  // ---- DaemonControl ---------------------------------------------------------------------

  status(): ReturnType<DaemonControl['status']> {
    return {
      name: this.options.name,
      connection: this.connection.state,
      seats: { total: this.options.seats, busy: this.seats.size },
      draining: this.draining,
    };
  }

  snapshot(): FactorySnapshot {
    const runs: RunSnapshot[] = [...this.seats.values()].map((s) => ({
      jobId: s.job.id,
      epoch: s.ref.epoch,
      key: s.job.key,
      engine: s.job.engine,
      state: s.state,
      startedAt: s.startedAt,
      lastEvent: s.lastEvent,
      insights: { ...s.insights },
    }));
    return {
      schema: 'fleet.snapshot.v1',
      factory: {
        id: this.connection.hello?.factoryId ?? null,
        name: this.options.name,
        server: this.connection.baseUrl,
        connection: this.connection.state,
        draining: this.draining,
        seats: { total: this.options.seats, busy: this.seats.size },
      },
      runs,
    };
  }

  notify(jobId: string, message: string): ReturnType<DaemonControl['notify']> {
    const position = this.inboxOf(jobId).push(message);
    return Promise.resolve({ delivered: false, queued: true, position });
  }

  resume(jobId: string, message?: string): ReturnType<DaemonControl['resume']> {
    const inbox = this.inboxOf(jobId);
    const position = message === undefined ? undefined : inbox.push(message);
    const now = inbox.interruptAgent();
    if (now === 'resumed') return Promise.resolve({ resumed: true });
    const why =
      now === 'no_agent'
        ? 'no agent process is running now (setup or verify)'
        : 'the agent has not reported a session yet';
    if (position === undefined)
      throw new IpcError('conflict', `cannot resume job ${jobId} now: ${why}; try again shortly`);
    return Promise.resolve({
      resumed: false,
      queued: true,
      position,
      reason: `${why}; the message is handed over at the agent's next turn boundary`,
    });
  }

  /** The inbox of a local run that can take messages. @throws IpcError saying why not. */
  private inboxOf(jobId: string): RunInbox {
    const seat = this.seats.get(jobId);
    if (seat === undefined)
      throw new IpcError(
        'not_found',
        `no run of job ${jobId} on this factory: it has finished or runs elsewhere (the IPC \`snapshot\` lists the runs here)`,
      );
    const manifest = seat.job.manifest as Record<string, unknown>;
    if (manifest.gate !== undefined && manifest.gate !== null)
      throw new IpcError('conflict', `job ${jobId} is a gate: no agent runs to take messages`);
    if (seat.job.engine === 'shell')
      throw new IpcError(
        'conflict',
        'engine shell cannot take messages: it has no session to resume',
      );
    return seat.inbox;
  }

  async drain(): Promise<void> {
    if (this.draining) return;
    this.log.info({}, 'draining: no new claims');
    this.draining = true;
    clearInterval(this.pollTimer);
    // The server hears it too (the factory's status, and no claims for a reconnect); while it
    // is unreachable, the next connect tells it. A shutdown needs no drain on the server: it
    // goes offline.
    await this.tellDrain();
  }

  /** Sends `drain` to the server unless it knows already (or this factory is stopping). */
  private async tellDrain(): Promise<void> {
    if (this.stopping || this.drainKnown || this.connection.state !== 'connected') {
      if (!this.stopping && !this.drainKnown)
        this.log.warn({}, 'the server is unreachable: it hears of the drain on reconnect');
      return;
    }
    try {
      await this.connection.drain();
      this.drainKnown = true;
    } catch (err) {
      this.log.warn(
        { err },
        'could not tell the server about the drain; it is sent again on reconnect',
      );
    }
  }

  /** The server says this factory is drained (through its API): stop claiming here too. */
  private drainedByServer(when: string): void {
    this.drainKnown = true;
    if (this.draining) return;
    this.log.info({ when }, 'the server drained this factory: no new claims');
    this.draining = true;
    clearInterval(this.pollTimer);
  }

  shutdown(deadlineMs: number): Promise<void> {
    this.stopping = true;
    this.shuttingDown ??= this.doShutdown(deadlineMs);
    return this.shuttingDown;
  }

  stop(): Promise<void> {
    return this.shutdown(0);
  }

  private async doShutdown(deadlineMs: number): Promise<void> {
    await this.drain();
    const all = () => Promise.all([...this.seats.values()].map((s) => s.done));
    if (this.seats.size > 0 && deadlineMs > 0) {
      this.log.info({ runs: this.seats.size, deadlineMs }, 'waiting for runs to finish');
      await Promise.race([all(), delay(deadlineMs)]);
    }
    if (this.seats.size > 0) {
      this.log.info({ runs: this.seats.size }, 'stopping the remaining runs (checkpointed)');
      for (const s of this.seats.values()) s.controller.abort(SHUTDOWN);
      // Their reports wait for the connection; give up on them after a while.
      await Promise.race([all(), delay(30_000)]);
    }
    this.closed = true;
    this.stopHeartbeats();
    clearTimeout(this.flushTimer);
    await this.flushing;
    await this.connection.close();
    this.poller?.close();
    this.log.info({}, 'factory stopped');
  }

  // ---- Claiming --------------------------------------------------------------------------

  /** Claims as many jobs as there are free seats (one claim at a time; another is queued). */
  private claimSoon(): void {
    if (this.draining || this.closed) return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    void this.claimLoop().finally(() => {
      this.claiming = false;
    });
  }

  private async claimLoop(): Promise<void> {
    do {
      this.claimAgain = false;
      const free = this.options.seats - this.seats.size;
      if (free <= 0 || this.draining || this.closed) return;
      if (this.connection.state !== 'connected') return;
      let result: ClaimResult;
      try {
        result = await this.connection.claim(free, this.options.leaseTtlMs);
      } catch (err) {
        this.log.warn({ err }, 'claim failed');
        return;
      }
      if (result.draining === true) {
        this.drainedByServer('on claim');
        return;
      }
      for (const a of result.assignments)
        this.seat(a.job, { jobId: a.job.id, epoch: a.lease.leaseEpoch }, a.agentToken ?? null);
      // A full claim may have left more work behind.
      if (result.assignments.length === free) this.claimAgain = true;
    } while (this.claimAgain);
  }

  // ---- Seats -----------------------------------------------------------------------------

  private seat(job: Job, ref: FencedRef, agentToken: string | null): void {
    const controller = new AbortController();
    const taken = new Set([...this.seats.values()].map((s) => s.index));
    let index = 0;
    while (taken.has(index)) index++;
    const seat: Seat = {
      ref,
      job,
      controller,
      state: 'starting',
      startedAt: this.clock(),
      lastEvent: null,
      insights: {},
      pending: [],
      spool: new EventSpool(
        path.join(this.options.workDir, 'spool', `${job.id}.${ref.epoch}.jsonl`),
        this.options.spoolLimit ?? 10_000,
      ),
      refused: false,
      localSeq: 0,
      done: Promise.resolve(),
      inbox: new RunInbox(`job ${job.id}`, (event) => this.event(seat, event)),
      agentToken,
      index,
    };
    this.seats.set(job.id, seat);
    this.log.info(
      { jobId: job.id, key: job.key, epoch: ref.epoch, engine: job.engine },
      'run claimed',
    );
    seat.done = this.runSeat(seat)
      .catch((err: unknown) => this.log.error({ err, jobId: job.id }, 'seat failed'))
      .finally(() => {
        this.seats.delete(job.id);
        void seat.spool.clear().catch(() => undefined);
        this.claimSoon();
      });
  }

  /** Runs one assignment to its report. Never rejects with the run's own errors. */
  private async runSeat(seat: Seat): Promise<void> {
    const { job } = seat;
    let outcome: RunOutcome;
    try {
      const engine = engineFor(job.engine);
      const input = await this.runInput(seat, engine);
      const gate = gateOf(job.manifest);
      await this.markRunning(seat);
      if (seat.controller.signal.aborted && seat.controller.signal.reason === LEASE_LOST) {
        this.log.warn({ jobId: job.id }, 'lease lost before the agent started; not running it');
        return;
      }
      outcome = gate === null ? await runJob(input) : await runGate(input, gate);
    } catch (err) {
      // The runner could not even start (unknown engine, no work dir…): not worth a retry.
      this.log.error({ err, jobId: job.id }, 'runner failed');
      this.event(seat, { type: 'error', data: { message: `runner failed: ${messageOf(err)}` } });
      seat.inbox.close('the factory could not run the job');
      await this.eventsSent(seat);
      await this.report(seat, 'fail', {
        result: 'crashed',
        error: `the factory could not run the job: ${messageOf(err)}`,
        retryable: false,
      });
      return;
    }
    seat.insights = { ...outcome.insights };
    await this.eventsSent(seat);
    await this.finish(seat, outcome);
  }

  private async runInput(seat: Seat, engine: Engine): Promise<RunJobInput> {
    const { job } = seat;
    const m = job.manifest as Record<string, unknown>;
    let cwd: string;
    if (typeof m.cwd === 'string' && m.cwd !== '') {
      cwd = path.resolve(this.options.workDir, m.cwd);
    } else {
      cwd = path.join(this.options.workDir, 'scratch', job.id);
      await mkdir(cwd, { recursive: true });
    }
    const workRoot = path.join(this.options.workDir, 'worktrees');
    await mkdir(workRoot, { recursive: true });
    const env: Record<string, string> = {};
    if (m.env !== null && typeof m.env === 'object')
      for (const [k, v] of Object.entries(m.env)) if (typeof v === 'string') env[k] = v;
    return {
      job: {
        id: job.id,
        key: job.key,
        bodyMd: job.bodyMd,
        verify: job.verify,
        timeoutMs: job.timeoutMs,
        checkpoint: job.checkpoint,
        cwd,
        env,
        ...(typeof m.fixAttempts === 'number' ? { fixAttempts: m.fixAttempts } : {}),
        ...(typeof m.setup === 'string' ? { setup: m.setup } : {}),
        ...(typeof m.yolo === 'boolean' ? { yolo: m.yolo } : {}),
        ...(typeof m.model === 'string' ? { model: m.model } : {}),
        ...baseOf(m.base),
        // `stall: {afterMs?, policy?, nudge?, maxRestarts?}`; no watchdog without it.
        ...stallOf(m.stall),
      },
      engine,
      workRoot,
      env: {
        FLEET_URL: this.connection.baseUrl,
        FLEET_JOB_ID: job.id,
        ...(seat.agentToken === null ? {} : { FLEET_TOKEN: seat.agentToken }),
        FLEET_PORT: String(
          (this.options.portBase ?? DEFAULT_PORT_BASE) +
            seat.index * (this.options.portsPerSeat ?? DEFAULT_PORTS_PER_SEAT),
        ),
        FLEET_PORT_COUNT: String(this.options.portsPerSeat ?? DEFAULT_PORTS_PER_SEAT),
      },
      ...(this.options.graceMs === undefined ? {} : { graceMs: this.options.graceMs }),
      signal: seat.controller.signal,
      inbox: seat.inbox,
      ...(this.poller === null ? {} : { poller: this.poller }),
      onEvent: (event) => {
        // The snapshot shows a stalled run as such until the agent (re)starts or exits.
        if (event.type === 'stalled') seat.state = 'stalled';
        this.event(seat, event);
      },
      onState: (state) => {
        seat.state = state;
      },
    };
  }

  /** claimed → running, before the agent starts. A refused one (stale lease) stops the run. */
  private async markRunning(seat: Seat): Promise<void> {
    const ok = await this.request(seat, 'start', () => this.connection.start(seat.ref));
    if (!ok && !seat.controller.signal.aborted) seat.controller.abort(LEASE_LOST);
  }

  private async finish(seat: Seat, outcome: RunOutcome): Promise<void> {
    const { job } = seat;
    const reason: unknown = seat.controller.signal.reason;
    const base = {
      exit: outcome.exit,
      verifyResult: outcome.verifyResult,
      insights: outcome.insights,
      checkpoint: outcome.checkpoint,
    };
    const where = { jobId: job.id, result: outcome.result, worktree: outcome.worktree };
    switch (outcome.result) {
      case 'success':
        await this.report(seat, 'complete', {
          ...base,
          output: {
            commit: outcome.commit,
            branch: outcome.branch,
            sessionId: outcome.sessionId,
            ...outcome.output,
          },
        });
        return;
      case 'lease_lost':
        // Fenced: the server has moved on; never complete. The work stays in the worktree.
        this.log.warn({ ...where, checkpoint: outcome.checkpoint }, 'run stopped: lease lost');
        return;
      case 'cancelled':
        if (reason === SHUTDOWN) {
          await this.report(seat, 'fail', {
            ...base,
            result: 'crashed',
            error: 'the factory shut down before the run finished',
            retryable: true,
          });
          return;
        }
        this.log.info({ ...where, checkpoint: outcome.checkpoint }, 'run cancelled');
        return;
      default:
        await this.report(seat, 'fail', {
          ...base,
          result: outcome.result,
          error: failureText(outcome),
          ...(outcome.output ? { output: outcome.output } : {}),
          ...(outcome.retryable === undefined ? {} : { retryable: outcome.retryable }),
        });
    }
  }

  private async report(
    seat: Seat,
    kind: 'complete' | 'fail',
    body: RunFailure | Parameters<FactoryConnection['complete']>[1],
  ): Promise<void> {
    const { ref } = seat;
    const ok = await this.request(seat, kind, () =>
      kind === 'complete'
        ? this.connection.complete(ref, body)
        : this.connection.fail(ref, body as RunFailure),
    );
    if (ok) this.log.info({ jobId: ref.jobId, epoch: ref.epoch, kind }, 'run reported');
  }

  /**
   * A fenced control request, retried across reconnects. False when the server refused it
   * (stale lease: logged, never retried) or the factory is closing.
   */
  private async request(seat: Seat, what: string, call: () => Promise<unknown>): Promise<boolean> {
    for (;;) {
      try {
        await call();
        return true;
      } catch (err) {
        if (err instanceof FactoryProtocolError) {
          this.log.warn(
            { jobId: seat.ref.jobId, epoch: seat.ref.epoch, code: err.code, err },
            `${what} refused`,
          );
          return false;
        }
        if (!(err instanceof FleetConnectionError) || this.closed) {
          this.log.error({ jobId: seat.ref.jobId, err }, `${what} failed`);
          return false;
        }
        try {
          await this.connection.whenConnected();
        } catch {
          return false;
        }
      }
    }
  }

  /** Stops the run of `jobId` at `epoch` (if this factory runs it). */
  private stopRun(jobId: string, epoch: number, reason: string, why: string): void {
    const seat = this.seats.get(jobId);
    if (seat === undefined || seat.ref.epoch !== epoch) return;
    if (seat.controller.signal.aborted) return;
    this.log.warn({ jobId, epoch, why }, 'stopping the run');
    seat.controller.abort(reason);
  }

  // ---- Events ----------------------------------------------------------------------------

  private event(seat: Seat, event: EventInput): void {
    if (seat.refused) return;
    const at = this.clock();
    const stamped = { ...event, at: event.at ?? at, localSeq: ++seat.localSeq };
    seat.pending.push(stamped);
    seat.lastEvent = { type: event.type, at };
    this.flushSoon(seat.pending.length >= BATCH ? 0 : (this.options.flushMs ?? 200));
  }

  /** Arms the flush timer, at most once per flush: not again for every event of a burst. */
  private flushSoon(ms: number): void {
    if (this.flushTimer !== undefined) {
      if (ms > 0 || this.flushNow) return;
      clearTimeout(this.flushTimer);
    }
    this.flushNow = ms === 0;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flushing = this.flushing
        .then(() => this.flush())
        .catch((err: unknown) => {
          this.log.error({ err }, 'sending events failed');
        });
    }, ms);
  }

  /**
   * Sends every seat's spooled then pending events while connected (batched across runs), or
   * spools them while not. Runs one at a time (chained on `flushing`), so order holds.
   */
  private async flush(): Promise<void> {
    for (;;) {
      const seats = [...this.seats.values()].filter(
        (s) => s.pending.length > 0 || s.spool.count > 0,
      );
      if (seats.length === 0) return;
      if (this.connection.state !== 'connected') {
        for (const s of seats) await this.spoolPending(s);
        return;
      }
      // Runs take turns being first, so a flooding run cannot keep the others waiting.
      const first = this.rotation++ % seats.length;
      const batches: Batch[] = [];
      let budget = REQUEST_CHARS;
      for (const s of [...seats.slice(first), ...seats.slice(0, first)]) {
        if (budget <= 0) break;
        const batch = await this.nextBatch(s, budget);
        budget -= batch.size;
        batches.push(batch);
      }
      try {
        const { results } = await this.connection.sendEvents(
          batches.map((b) => eventBatch(b.seat.ref, b.events)),
        );
        for (const [i, b] of batches.entries()) {
          const r = results[i];
          if (r?.ok === false && r.error.code === 'stale_lease') {
            // Fenced: the server will take nothing more from this run; stop it.
            this.log.warn(
              { jobId: b.seat.ref.jobId },
              'events refused (stale lease); stopping the run',
            );
            b.seat.refused = true;
            b.seat.pending = [];
            await b.seat.spool.clear();
            if (!b.seat.controller.signal.aborted) b.seat.controller.abort(LEASE_LOST);
          } else if (r?.ok === false) {
            // Some other refusal (an event the server will not take): drop this batch only.
            this.log.warn(
              { jobId: b.seat.ref.jobId, code: r.error.code, message: r.error.message },
              'events refused; dropping the batch',
            );
            await sent(b);
          } else {
            await sent(b);
          }
        }
      } catch (err) {
        if (err instanceof FactoryProtocolError) {
          // The whole request was refused: resending it would be refused again.
          this.log.error({ err }, 'events refused; dropping the batches');
          for (const b of batches) await sent(b);
          continue;
        }
        this.log.warn({ err }, 'events not sent; spooling them until reconnected');
        for (const s of seats) await this.spoolPending(s);
        return;
      }
    }
  }

  /**
   * A seat's next batch: from its spool while that holds events (they are older), else from
   * memory. Past `pendingLimit` events in memory, all of them go to the spool first (at its
   * end, after older spooled ones; never dropped), so a run flooding faster than the server
   * takes its events costs disk, not memory. Checked between sends: memory holds at most the
   * limit plus what arrives during one round trip.
   */
  private async nextBatch(seat: Seat, budget: number): Promise<Batch> {
    if (seat.pending.length > (this.options.pendingLimit ?? PENDING_LIMIT))
      await this.spoolPending(seat, false);
    if (seat.spool.count > 0) {
      const events = await seat.spool.peek(BATCH, budget);
      // The spool knows the size of what it read: its JSON lines.
      return { seat, events, spooled: true, size: seat.spool.peekedBytes };
    }
    let size = 0;
    let n = 0;
    while (n < Math.min(BATCH, seat.pending.length)) {
      const next = approxChars(seat.pending[n]);
      if (n > 0 && size + next > budget) break;
      size += next;
      n++;
    }
    return { seat, events: seat.pending.slice(0, n), spooled: false, size };
  }

  /** Moves the seat's pending events to the end of its spool (`bounded`: while disconnected). */
  private async spoolPending(seat: Seat, bounded = true): Promise<void> {
    const events = seat.pending;
    seat.pending = [];
    await seat.spool.append(events, bounded);
  }

  /**
   * Waits until the run's events reached the server (reconnecting as needed), or the server
   * refused them, or the factory closes.
   */
  private async eventsSent(seat: Seat): Promise<void> {
    while (!this.closed && !seat.refused && (seat.pending.length > 0 || seat.spool.count > 0)) {
      if (this.connection.state !== 'connected') {
        try {
          await this.connection.whenConnected();
        } catch {
          return;
        }
      }
      this.flushSoon(0);
      await delay(10);
      await this.flushing;
    }
  }
}

function stallOf(value: unknown): Pick<RunJobInput['job'], 'stall'> {
  const stall = parseStall(value);
  return stall === null ? {} : { stall };
}

/** `manifest.base`: a branch name, when set. */
function baseOf(value: unknown): Pick<RunJobInput['job'], 'base'> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'string' || value.trim() === '' || value.startsWith('-'))
    throw new Error(
      `manifest.base must be a branch name (got ${JSON.stringify(value)}); fix the job and submit it again`,
    );
  return { base: value };
}

/** `manifest.gate`, when set. @throws GateManifestError naming the bad field. */
function gateOf(manifest: Job['manifest']): GateSpec | null {
  const value = (manifest as Record<string, unknown>).gate;
  return value === undefined || value === null ? null : parseGate(value);
}

function failureText(outcome: RunOutcome): string {
  if (outcome.error) return outcome.error;
  const exit = outcome.exit;
  const how =
    exit === null ? '' : exit.signal ? ` (signal ${exit.signal})` : ` (exit ${exit.code})`;
  switch (outcome.result) {
    case 'agent_failed':
      return `the agent failed${how}`;
    case 'gate_failed':
      return 'the verify commands failed';
    case 'timeout':
      return 'the run timed out';
    default:
      return `the run ${outcome.result}${how}`;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const delay = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref?.();
  });

/**
 * About how many characters `value` takes as JSON: its strings' lengths and a little for the
 * rest. Cheap (no serialization) and close for the ASCII that agents print.
 */
function approxChars(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length + 2;
  if (value === null || typeof value !== 'object' || depth > 16) return 8;
  let n = 2;
  if (Array.isArray(value)) {
    for (const item of value) n += approxChars(item, depth + 1) + 1;
  } else {
    for (const [key, item] of Object.entries(value))
      n += key.length + 4 + approxChars(item, depth + 1);
  }
  return n;
}
