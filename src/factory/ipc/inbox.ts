import type { EventInput } from '../../core/index.js';
import { IpcError } from './protocol.js';

/** The most messages a run holds waiting for its agent's next turn. */
export const INBOX_MAX_MESSAGES = 20;
/** The longest message a run takes (UTF-8 bytes). */
export const INBOX_MAX_MESSAGE_BYTES = 16 * 1024;

/** Stops the running agent so its session can be resumed now; false when it cannot be. */
type Interrupt = () => boolean;

/**
 * The messages waiting for one local run's agent (IPC `notify` and `resume`). Agents run in
 * one-shot print mode, so a message cannot be typed into a running turn: the runner takes the
 * queued messages at the agent's next turn boundary (it exited, or a verify ended) and resumes
 * the agent's session with them as its next prompt. A `resume` may also stop the running agent
 * at once ({@link interrupt}) so its session is resumed with the messages right away.
 *
 * Every message gets `signal` events on the run (`fleet logs` shows them), following the signal
 * lifecycle: `{status: 'pending', message, position}` when queued, `{status: 'delivered',
 * message, sessionId}` when handed to the agent (its session resumed with it), `{status:
 * 'drained', message, sessionId}` once the agent answered it (its first output after the
 * hand-over: the model read the prompt), and `{status: 'expired', message, reason}` when the run
 * ends (or cannot resume its agent) before handing it over, or before the agent answered.
 */
export class RunInbox {
  private queue: string[] = [];
  /** Handed to the agent, not answered yet. */
  private handed: { message: string; sessionId: string }[] = [];
  private closedBecause: string | null = null;
  private interrupt: Interrupt | null = null;

  /**
   * @param label how errors name the run, e.g. `job j_1`.
   * @param onEvent receives the `signal` events.
   */
  constructor(
    private readonly label: string,
    private readonly onEvent: (event: EventInput) => void = () => undefined,
  ) {}

  /** Messages waiting. */
  get size(): number {
    return this.queue.length;
  }

  /** Whether the run still takes messages. */
  get open(): boolean {
    return this.closedBecause === null;
  }

  /**
   * Queues `message`; returns its position (1 = next to be handed over).
   *
   * @throws IpcError `bad_request` (too long, naming `message`) or `conflict` (the run takes no
   *   more messages, or its queue is full).
   */
  push(message: string): number {
    const bytes = Buffer.byteLength(message);
    if (bytes > INBOX_MAX_MESSAGE_BYTES) {
      const why = `message is ${bytes} bytes; a run takes messages of at most ${INBOX_MAX_MESSAGE_BYTES} bytes (put long text in a file and send its path)`;
      throw new IpcError('bad_request', why, [{ path: 'message', message: why }]);
    }
    if (this.closedBecause !== null)
      throw new IpcError('conflict', `${this.label} takes no more messages: ${this.closedBecause}`);
    if (this.queue.length >= INBOX_MAX_MESSAGES)
      throw new IpcError(
        'conflict',
        `${this.label} already has ${INBOX_MAX_MESSAGES} messages waiting (the most a run holds); send again once some are handed over (its \`signal\` events with status delivered)`,
      );
    this.queue.push(message);
    const position = this.queue.length;
    this.signal({ status: 'pending', message, position });
    return position;
  }

  /**
   * Asks the runner to stop the agent now and resume its session with the waiting messages:
   * `resumed` when it will, `no_agent` when no agent process runs (setup, verify), `no_session`
   * when the agent has not reported a session yet.
   */
  interruptAgent(): 'resumed' | 'no_agent' | 'no_session' {
    if (this.interrupt === null) return 'no_agent';
    return this.interrupt() ? 'resumed' : 'no_session';
  }

  // ---- the runner's side ---------------------------------------------------------------------

  /** Set by the runner while an agent runs (null when it exits). */
  onInterrupt(interrupt: Interrupt | null): void {
    this.interrupt = interrupt;
  }

  /** Takes every waiting message, marking each `delivered` to `sessionId`. */
  deliver(sessionId: string): string[] {
    const messages = this.queue;
    this.queue = [];
    for (const message of messages) {
      this.signal({ status: 'delivered', message, sessionId });
      this.handed.push({ message, sessionId });
    }
    return messages;
  }

  /** Whether delivered messages wait for the agent's answer (see `answered`). */
  get awaitingAnswer(): boolean {
    return this.handed.length > 0;
  }

  /** The agent produced output after the hand-over: its messages are `drained` (consumed). */
  answered(): void {
    const handed = this.handed;
    this.handed = [];
    for (const h of handed) this.signal({ status: 'drained', ...h });
  }

  /** Drops every waiting message as `expired` for `reason`; the run goes on taking new ones. */
  expire(reason: string): void {
    const messages = this.queue;
    this.queue = [];
    for (const message of messages) this.signal({ status: 'expired', message, reason });
  }

  /**
   * No more messages (the run is ending): what still waits expires for `reason`, and so does
   * what was handed to an agent that never answered it.
   */
  close(reason: string): void {
    if (this.closedBecause !== null) return;
    this.closedBecause = reason;
    this.interrupt = null;
    const handed = this.handed;
    this.handed = [];
    for (const { message } of handed)
      this.signal({
        status: 'expired',
        message,
        reason: `the agent did not answer it before ${reason}`,
      });
    this.expire(reason);
  }

  private signal(data: Record<string, unknown>): void {
    try {
      this.onEvent({ type: 'signal', data });
    } catch {
      /* the listener's problem, not the run's */
    }
  }
}

/** The prompt that resumes an agent with messages sent to its run. */
export function messagesPrompt(messages: string[]): string {
  if (messages.length === 1) return messages[0]!;
  return [
    `${messages.length} messages arrived for you, oldest first:`,
    ...messages.map((m, i) => `\n--- message ${i + 1} ---\n${m}`),
  ].join('\n');
}
