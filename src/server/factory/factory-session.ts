import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import {
  type ErrorInfo,
  type FactoryRequest,
  FactoryRequest as FactoryRequestSchema,
  type FactoryResult,
  type FactoryRequestType,
  type Job,
  type Lane,
  type Lease,
  NotFoundError,
  StaleLeaseError,
  isActive,
  parseInput,
} from '../../core/index.js';
import type { FencedRef, Store } from '../../store/index.js';
import { toErrorResponse } from '../api-errors.js';
import type { EventHub } from '../event-hub.js';
import type { AgentTokens } from './agent-tokens.js';
import { drainFactory } from './drain.js';
import type { FactoryEntry, FactoryRegistry } from './factory-registry.js';

export interface SessionContext {
  store: Store;
  hub: EventHub;
  registry: FactoryRegistry;
  /** Mints each claimed run's job-scoped token for its agent (see AgentTokens). */
  agentTokens?: AgentTokens;
  log: FastifyBaseLogger;
  leaseTtlMs: number;
  /** Tenants the token may act in; a factory serves all of them. */
  tenants: string[];
}

type Handled = { [T in FactoryRequestType]: FactoryResult<T> }[FactoryRequestType];

const LANE_OF: Record<FactoryRequestType, Lane | 'both'> = {
  hello: 'both',
  events: 'events',
  reconcile: 'control',
  claim: 'control',
  drain: 'control',
  heartbeat: 'control',
  start: 'control',
  verify: 'control',
  checkpoint: 'control',
  complete: 'control',
  fail: 'control',
};

/**
 * One factory socket. Requests are handled strictly in arrival order, each answered by one
 * reply with its id. A malformed message gets an error reply and the socket stays open.
 */
export class FactorySession {
  private readonly ctx: SessionContext;
  private readonly socket: WebSocket;
  private entry: FactoryEntry | null = null;
  private lane: Lane | null = null;
  private queue: Promise<void> = Promise.resolve();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(ctx: SessionContext, socket: WebSocket) {
    this.ctx = ctx;
    this.socket = socket;
    socket.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString();
      this.queue = this.queue
        .then(() => this.handle(text))
        .catch((err: unknown) => {
          ctx.log.error({ err }, 'factory request failed unexpectedly');
        });
    });
    this.done = new Promise((resolve) => {
      socket.on('close', () => {
        this.queue = this.queue
          .then(() => this.closed())
          .catch((err: unknown) => ctx.log.warn({ err }, 'factory disconnect bookkeeping failed'))
          .finally(() => {
            ctx.registry.sessions.delete(this);
            resolve();
          });
      });
    });
    ctx.registry.sessions.add(this);
  }

  /** Settles when the socket closed and its bookkeeping (factory offline) is written. */
  readonly done: Promise<void>;

  /** Closes the socket (server shutdown); await `done` for the bookkeeping. */
  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  private async handle(text: string | null): Promise<void> {
    if (text === null) return this.sendError(null, 'invalid_input', 'messages are JSON text');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      return this.sendError(
        null,
        'invalid_input',
        `message is not JSON: ${(err as Error).message}`,
      );
    }
    const rawId = (json as { id?: unknown } | null)?.id;
    const id = typeof rawId === 'number' && Number.isInteger(rawId) && rawId >= 0 ? rawId : null;
    let request: FactoryRequest;
    try {
      request = parseInput(FactoryRequestSchema, json, 'factory message');
    } catch (err) {
      return this.sendError(id, err);
    }
    try {
      const result = await this.dispatch(request);
      this.send({ type: 'reply', id: request.id, result });
    } catch (err) {
      this.sendError(request.id, err);
    }
  }

  private async dispatch(r: FactoryRequest): Promise<Handled> {
    if (r.type === 'hello') return this.hello(r);
    const entry = this.entry;
    if (entry === null) throw protocolError('not_registered', 'send hello first');
    const lane = LANE_OF[r.type];
    if (lane !== 'both' && lane !== this.lane)
      throw protocolError('wrong_lane', `${r.type} belongs on the ${lane} lane, not ${this.lane}`);
    const { store, hub } = this.ctx;
    switch (r.type) {
      case 'reconcile':
        return this.reconcile(entry, r.runs);
      case 'claim': {
        // A draining factory finishes its runs and gets no new ones.
        if (await this.isDraining(entry)) return { assignments: [], draining: true };
        const assignments = await store.claim({
          factoryId: entry.factoryId,
          tenants: entry.tenants,
          capabilities: entry.capabilities,
          limit: r.limit,
          leaseTtlMs: r.leaseTtlMs ?? this.ctx.leaseTtlMs,
        });
        for (const a of assignments) {
          entry.held.set(a.job.id, a.lease.leaseEpoch);
          hub.publish(a.job.id);
        }
        return {
          assignments: await Promise.all(
            assignments.map(async (a) => ({
              ...a,
              ...(await this.agentToken(a.job, a.lease.leaseEpoch)),
            })),
          ),
        };
      }
      case 'drain': {
        await drainFactory(store, this.ctx.tenants[0]!, entry.factoryId);
        return { status: 'draining' };
      }
      case 'heartbeat': {
        const outcomes = await store.renewMany(r.leases, r.ttlMs ?? this.ctx.leaseTtlMs);
        const renewed: Lease[] = [];
        const stale: { jobId: string; epoch: number; code: string }[] = [];
        outcomes.forEach((o, i) => {
          const ref = r.leases[i]!;
          if (o.ok) renewed.push(o.value);
          else {
            stale.push({ ...ref, code: o.error.code });
            entry.held.delete(ref.jobId);
          }
        });
        return { renewed, stale };
      }
      case 'events': {
        const results: FactoryResult<'events'>['results'] = [];
        for (const batch of r.batches) {
          try {
            await this.authorize(entry, batch);
            const seqs = await store.appendEvents(batch, batch.events, {
              localSeq: batch.localSeq,
            });
            hub.publish(batch.jobId);
            results.push({ jobId: batch.jobId, ok: true, ...seqs });
          } catch (err) {
            results.push({ jobId: batch.jobId, ok: false, error: errorInfo(err) });
          }
        }
        return { results };
      }
      case 'start':
      case 'verify':
      case 'checkpoint': {
        await this.authorize(entry, r);
        const job =
          r.type === 'start'
            ? await store.markRunning(r)
            : r.type === 'verify'
              ? await store.markVerifying(r)
              : await store.saveCheckpoint(r, r.checkpoint);
        hub.publish(job.id);
        return { job };
      }
      case 'complete':
      case 'fail': {
        await this.authorize(entry, r);
        const job = r.type === 'complete' ? await store.complete(r) : await store.fail(r);
        entry.held.delete(job.id);
        await this.revokeAgentToken(job.id);
        hub.publish(job.id);
        // A completion may have queued dependents: wake claimers then, and only then (an
        // empty claim would queue on the control lane ahead of a real one). A requeued failure
        // waits out its backoff, so it is picked up by the next poll.
        if (
          r.type === 'complete' &&
          (await store.listJobs(job.tenant, { stage: 'queued', limit: 1 })).items.length > 0
        )
          hub.publishWork(job.tenant);
        return { job };
      }
    }
  }

  private async hello(r: Extract<FactoryRequest, { type: 'hello' }>): Promise<Handled> {
    if (this.entry !== null) throw protocolError('already_registered', 'hello was already sent');
    const { store, registry, tenants } = this.ctx;
    const keepDraining =
      r.reconnect &&
      (await store.listFactories(tenants[0]!)).some(
        (f) => f.name === r.name && f.status === 'draining',
      );
    const factory = await store.registerFactory({
      tenant: tenants[0]!,
      name: r.name,
      kind: r.kind,
      capabilities: r.capabilities,
      seats: r.seats,
      version: r.version,
      status: keepDraining ? 'draining' : 'online',
    });
    const entry = registry.entry(factory.id, tenants, factory.capabilities);
    this.entry = entry;
    this.lane = r.lane;
    if (r.lane === 'events') {
      entry.events.add(this.socket);
    } else {
      entry.control.add(this.socket);
      const wake = coalesce(() => this.send({ type: 'wake' }));
      for (const tenant of tenants) this.unsubscribe.push(this.ctx.hub.subscribeWork(tenant, wake));
      this.unsubscribe.push(
        this.ctx.hub.subscribeCancel(factory.id, (m) => {
          entry.held.delete(m.jobId);
          void this.revokeAgentToken(m.jobId);
          this.send({ type: 'cancel', jobId: m.jobId, epoch: m.epoch, reason: m.reason });
        }),
      );
    }
    this.ctx.log.info({ factoryId: factory.id, name: r.name, lane: r.lane }, 'factory connected');
    return {
      factoryId: factory.id,
      leaseTtlMs: this.ctx.leaseTtlMs,
      heartbeatMs: Math.max(250, Math.floor(this.ctx.leaseTtlMs / 3)),
      draining: keepDraining,
    };
  }

  /**
   * The job-scoped token for the agent of a claimed run. A claim is already taken when this
   * runs: if the token cannot be made, the run goes on without one (its agent gets no
   * FLEET_TOKEN) rather than being lost.
   */
  private async agentToken(job: Job, epoch: number): Promise<{ agentToken?: string }> {
    if (this.ctx.agentTokens === undefined) return {};
    try {
      return { agentToken: await this.ctx.agentTokens.mint(job, epoch) };
    } catch (err) {
      this.ctx.log.warn({ err, jobId: job.id }, 'could not mint the agent token of a claimed run');
      return {};
    }
  }

  private async revokeAgentToken(jobId: string): Promise<void> {
    try {
      await this.ctx.agentTokens?.revoke(jobId);
    } catch (err) {
      this.ctx.log.warn({ err, jobId }, 'could not revoke the agent token of an ended run');
    }
  }

  /** True when the factory was drained (POST /v1/factories/:id/drain): no new claims. */
  private async isDraining(entry: FactoryEntry): Promise<boolean> {
    const factory = await this.ctx.store.getFactory(this.ctx.tenants[0]!, entry.factoryId);
    return factory?.status === 'draining';
  }

  /** Which of the runs a (re)connecting factory holds are still its live leases. */
  private async reconcile(entry: FactoryEntry, runs: FencedRef[]): Promise<Handled> {
    const valid: FencedRef[] = [];
    const stale: FencedRef[] = [];
    for (const ref of runs) {
      const lease = await this.liveLease(entry, ref.jobId);
      if (lease !== null && lease.leaseEpoch === ref.epoch) {
        valid.push(ref);
        entry.held.set(ref.jobId, ref.epoch);
      } else {
        stale.push(ref);
        entry.held.delete(ref.jobId);
      }
    }
    if (valid.length > 0) await this.ctx.store.renewMany(valid, this.ctx.leaseTtlMs);
    return { valid, stale };
  }

  /**
   * A write about a job is allowed when this factory holds its lease at that epoch. The epoch
   * fences; this check keeps one factory from writing about another's job (epochs are small
   * numbers, not secrets). Leases claimed here are known without a store read.
   */
  private async authorize(entry: FactoryEntry, ref: FencedRef): Promise<void> {
    if (entry.held.get(ref.jobId) === ref.epoch) return;
    const lease = await this.liveLease(entry, ref.jobId);
    if (lease === null || lease.leaseEpoch !== ref.epoch)
      throw new StaleLeaseError(ref.jobId, ref.epoch, lease?.leaseEpoch ?? null);
    entry.held.set(ref.jobId, ref.epoch);
  }

  private async liveLease(entry: FactoryEntry, jobId: string): Promise<Lease | null> {
    for (const tenant of entry.tenants) {
      const job = await this.ctx.store.getJob(tenant, jobId);
      if (job === null) continue;
      const lease = job.lease;
      return lease !== null && lease.holderFactoryId === entry.factoryId && isActive(job.stage)
        ? lease
        : null;
    }
    throw new NotFoundError('job', jobId);
  }

  private async closed(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    const entry = this.entry;
    if (entry === null) return;
    entry.control.delete(this.socket);
    entry.events.delete(this.socket);
    if (!this.ctx.registry.release(entry) || this.lane !== 'control') return;
    // Last socket gone: the factory is offline (its leases run on until they expire).
    const { store, tenants } = this.ctx;
    const factory = await store.getFactory(tenants[0]!, entry.factoryId);
    // A fast reconnect may have said hello meanwhile: then it is online again, leave it so.
    if (this.ctx.registry.get(entry.factoryId) !== undefined) return;
    if (factory !== null && factory.status === 'online') {
      await store
        .updateFactory(tenants[0]!, factory.id, factory.rev, { status: 'offline' })
        .catch((err: unknown) => this.ctx.log.warn({ err }, 'could not mark factory offline'));
    }
    this.ctx.log.info({ factoryId: entry.factoryId }, 'factory disconnected');
  }

  private send(message: object): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private sendError(id: number | null, err: unknown, message?: string): void {
    const error = message === undefined ? errorInfo(err) : { code: String(err), message };
    if (id === null) this.send({ type: 'error', error });
    else this.send({ type: 'reply', id, error });
  }
}

class ProtocolError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const protocolError = (code: string, message: string) => new ProtocolError(code, message);

function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof ProtocolError) return { code: err.code, message: err.message };
  const { body } = toErrorResponse(err);
  return body.error;
}

/** Runs `fn` once per tick however often it is called within it. */
function coalesce(fn: () => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => {
      pending = false;
      fn();
    });
  };
}
