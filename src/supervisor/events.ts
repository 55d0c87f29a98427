/** How a child process ended: its exit code, or the signal that ended it. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What a supervisor reports about its children, in the order it happens. */
export type SupervisorEvent =
  | { type: 'started'; name: string; pid: number; restart: boolean }
  | { type: 'exited'; name: string; pid: number; exit: ExitInfo; restartInMs: number }
  | { type: 'stopping'; name: string; pid: number }
  | { type: 'killing'; name: string; pid: number; graceMs: number }
  | { type: 'stopped'; name: string; pid: number; exit: ExitInfo };

/**
 * One line for a person reading the supervisor's log.
 *
 * @example describeEvent({ type: 'exited', name: 'factory', pid: 7, exit: { code: 1, signal: null }, restartInMs: 1234 })
 * // 'factory exited (code 1, signal null); restarting in 1.2s'
 */
export function describeEvent(event: SupervisorEvent): string {
  switch (event.type) {
    case 'started':
      return `${event.restart ? 'restarted' : 'started'} ${event.name} (pid ${event.pid})`;
    case 'exited':
      return `${event.name} exited (${describeExit(event.exit)}); restarting in ${seconds(event.restartInMs)}`;
    case 'stopping':
      return `stopping ${event.name} (pid ${event.pid})`;
    case 'killing':
      return `${event.name} did not stop within ${seconds(event.graceMs)}; sending SIGKILL`;
    case 'stopped':
      return `${event.name} stopped (${describeExit(event.exit)})`;
  }
}

/** `code 1, signal null`, as the supervisor's log lines put it. */
export function describeExit(exit: ExitInfo): string {
  return `code ${exit.code}, signal ${exit.signal}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
