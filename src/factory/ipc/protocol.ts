import { z } from 'zod';
import { Insights } from '../../core/index.js';
import type { DaemonControl, FactorySnapshot } from '../daemon-control.js';

/**
 * The local IPC protocol: newline-delimited JSON over a Unix socket. Each request is one line
 * holding one JSON object, each response is one line; on a connection, responses come in the
 * order of the requests.
 *
 * @example
 * // → {"id":1,"op":"notify","jobId":"j_1","message":"also update the docs"}
 * // ← {"id":1,"ok":true,"result":{"delivered":false,"queued":true,"position":1}}
 * // → {"id":2,"op":"resume"}
 * // ← {"id":2,"ok":false,"error":{"code":"bad_request","message":"jobId: ...","issues":[...]}}
 *
 * Messages (`notify`, `resume`): agents run one-shot, so a message cannot be typed into a
 * running turn. `notify` queues it for the run; at the agent's next turn boundary (the agent
 * exited 0, or a verify ended) the runner resumes the agent's session with the queued messages
 * as its next prompt, then verifies. `resume` does not wait for the boundary: it stops the
 * running agent (SIGTERM, like the stall watchdog) and resumes its session at once with the
 * queued messages and its own (or "You seemed stuck; continue." without one); when no agent
 * runs (setup, verify) or it has not reported a session yet, it queues like `notify`. Each
 * message gets `signal` events on the job (pending → delivered | expired). See
 * docs/factory-ipc.md.
 */

/** Longest request line the server reads (bytes, without the newline). */
export const MAX_REQUEST_LINE_BYTES = 1024 * 1024;

/** Default `shutdown` deadline: how long runs get to finish before they are stopped. */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 30_000;

/** A request id, echoed in its response. The client uses numbers; any string or number works. */
export const RequestId = z.union([z.string().max(200), z.number().int()]);
export type RequestId = z.infer<typeof RequestId>;

const JobId = z.string().min(1).max(200);

export const IPC_OPS = ['status', 'snapshot', 'notify', 'resume', 'drain', 'shutdown'] as const;
export type IpcOp = (typeof IPC_OPS)[number];

const base = { id: RequestId.optional() };

export const StatusRequest = z.strictObject({ ...base, op: z.literal('status') });
export const SnapshotRequest = z.strictObject({ ...base, op: z.literal('snapshot') });
export const NotifyRequest = z.strictObject({
  ...base,
  op: z.literal('notify'),
  jobId: JobId,
  message: z.string().min(1),
});
export const ResumeRequest = z.strictObject({
  ...base,
  op: z.literal('resume'),
  jobId: JobId,
  message: z.string().min(1).optional(),
});
export const DrainRequest = z.strictObject({ ...base, op: z.literal('drain') });
export const ShutdownRequest = z.strictObject({
  ...base,
  op: z.literal('shutdown'),
  deadlineMs: z
    .number()
    .int()
    .nonnegative()
    .max(24 * 60 * 60 * 1000)
    .default(DEFAULT_SHUTDOWN_DEADLINE_MS),
});

export const IpcRequest = z.discriminatedUnion('op', [
  StatusRequest,
  SnapshotRequest,
  NotifyRequest,
  ResumeRequest,
  DrainRequest,
  ShutdownRequest,
]);
/** A parsed request (defaults applied). */
export type IpcRequest = z.infer<typeof IpcRequest>;
/** A request as a client writes it (defaults optional). */
export type IpcRequestInput = z.input<typeof IpcRequest>;

// ---- results ----------------------------------------------------------------------------

const Seats = z.object({
  total: z.number().int().nonnegative(),
  busy: z.number().int().nonnegative(),
});

export const StatusResult = z.object({
  name: z.string(),
  connection: z.string(),
  seats: Seats,
  draining: z.boolean(),
});
export type StatusResult = z.infer<typeof StatusResult>;

export const RunSnapshotSchema = z.object({
  jobId: z.string(),
  epoch: z.number().int(),
  key: z.string().nullable(),
  engine: z.string(),
  state: z.enum(['starting', 'thinking', 'acting', 'waiting', 'exited', 'stalled']),
  startedAt: z.number(),
  lastEvent: z.object({ type: z.string(), at: z.number() }).nullable(),
  insights: Insights,
});

/** `fleet.snapshot.v1`, matching `FactorySnapshot` in ../daemon-control.ts. */
export const FactorySnapshotSchema = z.object({
  schema: z.literal('fleet.snapshot.v1'),
  factory: z.object({
    id: z.string().nullable(),
    name: z.string(),
    server: z.string(),
    connection: z.string(),
    draining: z.boolean(),
    seats: Seats,
  }),
  runs: z.array(RunSnapshotSchema),
});

// Compile-time checks that the schemas and DaemonControl's types agree, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemasMatch: [
  Same<z.infer<typeof FactorySnapshotSchema>, FactorySnapshot>,
  Same<z.infer<typeof StatusResult>, ReturnType<DaemonControl['status']>>,
] = [true, true];
void schemasMatch;

/**
 * `delivered`: handed to the agent already (never, today: messages wait for a turn boundary);
 * `queued` with `position` (1 = next): waiting for the agent's next turn boundary.
 */
export const NotifyResult = z.object({
  delivered: z.boolean(),
  queued: z.boolean().optional(),
  position: z.number().int().positive().optional(),
  reason: z.string().optional(),
});
export type NotifyResult = z.infer<typeof NotifyResult>;
/**
 * `resumed`: the agent was stopped and its session is being resumed now with the waiting
 * messages. Otherwise `queued` with `position`, and `reason` says why it waits.
 */
export const ResumeResult = z.object({
  resumed: z.boolean(),
  queued: z.boolean().optional(),
  position: z.number().int().positive().optional(),
  reason: z.string().optional(),
});
export type ResumeResult = z.infer<typeof ResumeResult>;
const resultsMatch: [
  Same<NotifyResult, Awaited<ReturnType<DaemonControl['notify']>>>,
  Same<ResumeResult, Awaited<ReturnType<DaemonControl['resume']>>>,
] = [true, true];
void resultsMatch;
export const DrainResult = z.object({ draining: z.literal(true) });
export type DrainResult = z.infer<typeof DrainResult>;
/**
 * `shutdown` is acknowledged as soon as it has started (the daemon closes this socket while
 * it shuts down, so it could not answer at the end); the connection closes when it is done.
 */
export const ShutdownResult = z.object({
  shuttingDown: z.literal(true),
  deadlineMs: z.number().int().nonnegative(),
});
export type ShutdownResult = z.infer<typeof ShutdownResult>;

/** The result schema of each op. */
export const IpcResults = {
  status: StatusResult,
  snapshot: FactorySnapshotSchema,
  notify: NotifyResult,
  resume: ResumeResult,
  drain: DrainResult,
  shutdown: ShutdownResult,
} as const satisfies Record<IpcOp, z.ZodType>;

// ---- responses --------------------------------------------------------------------------

/**
 * Error codes: `bad_json` (the line is not JSON), `bad_request` (not a known op, or bad
 * arguments: see `issues`), `line_too_long` (over MAX_REQUEST_LINE_BYTES), `not_found` /
 * `conflict` / `unavailable` (a control method refused, see IpcError), `internal` (a control
 * method failed).
 */
export const IpcErrorCode = z.enum([
  'bad_json',
  'bad_request',
  'line_too_long',
  'not_found',
  'conflict',
  'unavailable',
  'internal',
]);
export type IpcErrorCode = z.infer<typeof IpcErrorCode>;

/** One problem with a request: the field (dotted path, '' for the request itself) and why. */
export const IpcIssue = z.object({ path: z.string(), message: z.string() });
export type IpcIssue = z.infer<typeof IpcIssue>;

export const IpcErrorBody = z.object({
  code: z.string(),
  message: z.string(),
  issues: z.array(IpcIssue).optional(),
});
export type IpcErrorBody = z.infer<typeof IpcErrorBody>;

/** `id` is null when the request had no readable id (bad JSON, an over-long line). */
export const IpcResponse = z.discriminatedUnion('ok', [
  z.object({ id: RequestId.nullable(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: RequestId.nullable(), ok: z.literal(false), error: IpcErrorBody }),
]);
export type IpcResponse = z.infer<typeof IpcResponse>;

/**
 * Thrown by a DaemonControl method to answer with a specific error code (e.g. `not_found` for
 * an unknown job); anything else thrown becomes `internal`. The client throws it for error
 * responses, too.
 */
export class IpcError extends Error {
  constructor(
    readonly code: IpcErrorCode | (string & {}),
    message: string,
    readonly issues?: IpcIssue[],
  ) {
    super(message);
    this.name = 'IpcError';
  }
}

/** Turns zod issues into `{ path, message }` with dotted paths, e.g. `jobId`, `runs.0.state`. */
export function toIpcIssues(error: z.ZodError): IpcIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}
