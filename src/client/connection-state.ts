/**
 * The states of a {@link FactoryConnection}, and the only moves between them:
 *
 * ```text
 * disconnected ─▶ connecting (first attempt) ─┐
 *      ▲     └──▶ reconnecting (later ones) ──┴─▶ reconciling ─▶ connected
 *      └──────── any failure, or a dropped socket ◀───────────────────┘
 * any state ─▶ closed (close(); final)
 * ```
 *
 * `disconnected` is also where a dropped connection waits out its backoff before the next
 * `reconnecting` attempt.
 */
export type ConnectionState =
  'disconnected' | 'connecting' | 'reconnecting' | 'reconciling' | 'connected' | 'closed';

const MOVES: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  disconnected: ['connecting', 'reconnecting', 'closed'],
  connecting: ['reconciling', 'disconnected', 'closed'],
  reconnecting: ['reconciling', 'disconnected', 'closed'],
  reconciling: ['connected', 'disconnected', 'closed'],
  connected: ['disconnected', 'closed'],
  closed: [],
};

/** Whether `from → to` is a move of the connection state machine. */
export function canMove(from: ConnectionState, to: ConnectionState): boolean {
  return MOVES[from].includes(to);
}

/** Holds the current state; refuses moves the machine does not have. */
export class ConnectionStateMachine {
  #state: ConnectionState = 'disconnected';
  private readonly listener: (state: ConnectionState, previous: ConnectionState) => void;

  constructor(listener: (state: ConnectionState, previous: ConnectionState) => void = () => {}) {
    this.listener = listener;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** @throws Error when `to` is not reachable from the current state (a bug in the caller). */
  move(to: ConnectionState): void {
    const from = this.#state;
    if (!canMove(from, to)) throw new Error(`factory connection cannot go from ${from} to ${to}`);
    this.#state = to;
    this.listener(to, from);
  }
}
