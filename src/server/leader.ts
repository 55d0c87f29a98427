import pg from 'pg';
import type { Logger } from 'pino';
import { newReplicaId } from './pg-hub-transport.js';

/**
 * Whether this replica runs the singleton loops (the reaper, the scheduler). Several replicas
 * on one PostgreSQL elect one leader; a single process (SQLite) always leads.
 */
export interface Leadership {
  readonly isLeader: boolean;
  /** Calls `listener` on each change of {@link isLeader}; returns the unsubscribe function. */
  onChange(listener: (isLeader: boolean) => void): () => void;
  /** Steps down for good (the lock is released) and stops trying. */
  close(): Promise<void>;
}

/** The one process on an embedded store: it leads from start to close. */
export function alwaysLeader(): Leadership {
  const listeners = new Set<(isLeader: boolean) => void>();
  let leader = true;
  return {
    get isLeader() {
      return leader;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (!leader) return;
      leader = false;
      for (const l of listeners) l(false);
    },
  };
}

export interface PgLeadershipOptions {
  connectionString: string;
  /** Fleet's schema: one leader per schema. */
  schema: string;
  logger: Logger;
  /** Names this replica in logs and in `application_name`; default random. */
  replicaId?: string;
  /** How often a follower tries for the lock, and a leader checks its connection. Default 1 s. */
  retryMs?: number;
  /**
   * How long a leader that lost its connection waits before trying again (default 3 × retryMs):
   * a replica whose database connection just failed is a poor leader, so a healthy one gets
   * the first chance to take over.
   */
  stepDownHoldMs?: number;
  /** A leader's connection check that takes longer than this counts as a lost connection. */
  checkTimeoutMs?: number;
}

/** The advisory lock key text; the key is `hashtext()` of it. */
export const leaderLockName = (schema: string): string => `fleet:leader:${schema}`;

/**
 * Leader election with a session-level advisory lock on a dedicated connection: whoever holds
 * `pg_try_advisory_lock(hashtext('fleet:leader:<schema>'))` leads. The lock lives as long as
 * the session, so a leader that dies (process, machine, network) releases it with its
 * connection, and a follower's next try (every `retryMs`) takes over. A leader whose
 * connection ends or stops answering steps down at once: it cannot know whether it still holds
 * the lock. Two leaders for a moment are harmless: the loops they run are fenced.
 */
export class PgLeadership implements Leadership {
  readonly replicaId: string;
  private readonly logger: Logger;
  private readonly lockName: string;
  private readonly retryMs: number;
  private readonly listeners = new Set<(isLeader: boolean) => void>();
  private client: pg.Client | null = null;
  private leader = false;
  private closed = false;
  /** No attempt before this time (ms since the epoch): set when stepping down on a failure. */
  private holdUntil = 0;
  /** Whether the last attempt failed to reach PostgreSQL: only the first failure warns. */
  private unreachable = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  private constructor(private readonly options: PgLeadershipOptions) {
    this.replicaId = options.replicaId ?? newReplicaId();
    this.logger = options.logger;
    this.lockName = leaderLockName(options.schema);
    this.retryMs = options.retryMs ?? 1_000;
  }

  /** Makes the first attempt (so `isLeader` is known on return), then keeps trying. */
  static async start(options: PgLeadershipOptions): Promise<PgLeadership> {
    const leadership = new PgLeadership(options);
    await leadership.attempt();
    leadership.loop = leadership.run();
    return leadership;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  onChange(listener: (isLeader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    // Ending the session releases the lock and fails an attempt in flight.
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
    await this.loop;
    this.setLeader(false, 'closed');
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      await this.sleep(Math.max(this.retryMs, this.holdUntil - Date.now()));
      if (!this.closed) await this.attempt();
    }
  }

  /** Followers try for the lock; the leader checks that its session is still there. */
  private async attempt(): Promise<void> {
    if (Date.now() < this.holdUntil) return;
    let client = this.client;
    try {
      client ??= await this.connect();
    } catch (err) {
      if (this.closed || this.unreachable) return;
      this.unreachable = true;
      this.logger.warn(
        { err, replica: this.replicaId },
        'leader election cannot reach PostgreSQL; retrying',
      );
      return;
    }
    try {
      if (this.leader) {
        await client.query('SELECT 1');
      } else {
        const { rows } = await client.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
          [this.lockName],
        );
        if (this.closed) return;
        if (rows[0]?.locked === true) this.setLeader(true, 'took the leader lock');
      }
      if (this.unreachable) this.logger.info({ replica: this.replicaId }, 'PostgreSQL reachable');
      this.unreachable = false;
    } catch (err) {
      // Ended under the query (already handled), timed out, or failed: the session is suspect.
      this.lost(client, err as Error);
    }
  }

  private async connect(): Promise<pg.Client> {
    const timeout = this.options.checkTimeoutMs ?? Math.max(5_000, 2 * this.retryMs);
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      connectionTimeoutMillis: timeout,
      query_timeout: timeout,
      keepAlive: true,
      application_name: `fleet leader ${this.replicaId}`,
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, null));
    try {
      await client.connect();
    } catch (err) {
      void client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      throw new Error('leadership closed');
    }
    this.client = client;
    return client;
  }

  /** The session is gone or stuck, and the lock with it: step down now. */
  private lost(client: pg.Client, err: Error | null): void {
    if (client !== this.client || this.closed) return;
    this.client = null;
    void client.end().catch(() => undefined);
    if (this.leader) {
      this.holdUntil = Date.now() + (this.options.stepDownHoldMs ?? 3 * this.retryMs);
      this.logger.warn({ err, replica: this.replicaId }, 'leader connection lost');
      this.setLeader(false, 'lost the leader connection');
    } else {
      this.logger.debug({ err, replica: this.replicaId }, 'leader election connection lost');
    }
  }

  private setLeader(leader: boolean, why: string): void {
    if (this.leader === leader) return;
    this.leader = leader;
    this.logger.info(
      { replica: this.replicaId, leader },
      leader ? `leading: ${why}` : `no longer leading: ${why}`,
    );
    for (const l of this.listeners) {
      try {
        l(leader);
      } catch (err) {
        this.logger.error({ err }, 'a leadership listener failed');
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** Starts leader election for a schema; see {@link PgLeadership}. */
export const startPgLeadership = (options: PgLeadershipOptions): Promise<PgLeadership> =>
  PgLeadership.start(options);
