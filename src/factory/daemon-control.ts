import type { AgentState } from '../engines/engine.js';
import type { Insights } from '../core/index.js';

/** One seat's run, as the local IPC `snapshot` reports it. */
export interface RunSnapshot {
  jobId: string;
  epoch: number;
  key: string | null;
  engine: string;
  state: AgentState | 'stalled';
  startedAt: number;
  /** The last event the run emitted: its type and when. */
  lastEvent: { type: string; at: number } | null;
  insights: Insights;
}

/** `fleet.snapshot.v1`: everything a local viewer (`fleet top`) shows about this factory. */
export interface FactorySnapshot {
  schema: 'fleet.snapshot.v1';
  factory: {
    id: string | null;
    name: string;
    server: string;
    connection: string;
    draining: boolean;
    seats: { total: number; busy: number };
  };
  runs: RunSnapshot[];
}

/**
 * What the local IPC socket asks of the running daemon. The daemon implements it; the IPC
 * server (src/factory/ipc) only translates requests to these calls.
 */
export interface DaemonControl {
  status(): {
    name: string;
    connection: string;
    seats: { total: number; busy: number };
    draining: boolean;
  };
  snapshot(): FactorySnapshot;
  /**
   * Queues a message for a local run: its agent gets it as the next prompt of its session at its
   * next turn boundary (see ipc/inbox.ts). Throws IpcError `not_found` (no such run here) or
   * `conflict` (its engine has no session, the run is ending, the queue is full).
   */
  notify(
    jobId: string,
    message: string,
  ): Promise<{ delivered: boolean; queued?: boolean; position?: number; reason?: string }>;
  /**
   * Resumes a run's agent now: stops it and resumes its session with the waiting messages and
   * `message`. When no agent runs (setup, verify) or it has no session yet, queues like notify.
   * Throws like notify.
   */
  resume(
    jobId: string,
    message?: string,
  ): Promise<{ resumed: boolean; queued?: boolean; position?: number; reason?: string }>;
  /** Stop claiming; let running jobs finish. */
  drain(): Promise<void>;
  /** Graceful stop: drain, wait up to `deadlineMs` for runs, then stop and checkpoint them. */
  shutdown(deadlineMs: number): Promise<void>;
}
