/**
 * The agent guard: a tiny POSIX `sh` watcher beside each agent, so that an agent never outlives
 * the factory that started it, even when the factory dies by SIGKILL.
 *
 * spawnProcess starts `sh -c <AGENT_GUARD_SCRIPT> fleet-agent-guard <cwd> <graceMs> <command>
 * <args…>` with `detached: true` (a session and process group of its own) and the agent's own
 * environment. The shell:
 *
 * 1. changes to `cwd` and checks that `command` can be found on the agent's PATH; if not, it
 *    writes `{type:'error', reason:'cwd'|'command'}` on fd 3 and exits 127 (the factory
 *    reports a spawn error);
 * 2. forks the watcher (a subshell, about 1 MB) and writes `{type:'watching', pid}` on fd 3;
 * 3. closes fd 3 and `exec`s the agent. The agent thus keeps the shell's pid, which is also its
 *    process group id; it is the factory's direct child (exit status and signals are exact)
 *    with stdin, stdout and stderr as the factory opened them.
 *
 * The watcher holds the only other end of fd 3, a socket whose far end only the factory holds.
 * End of file on it means the factory is gone (or done with the run): the watcher then sends
 * SIGTERM to the agent's process group, SIGKILL after `graceMs` if any member other than itself
 * is still alive (zombies do not count), and exits. It is a member of that group and ignores
 * SIGTERM, SIGINT and SIGHUP, so the group id cannot be reused while it watches, and a stop by
 * the factory (SIGTERM to the group) leaves it watching until the group is gone; it closes its
 * stdin, stdout and stderr, so the agent's output pipes close when the agent's group lets go.
 * Members are found in /proc; without /proc the watcher waits out the grace period.
 *
 * In the source below `$\{` stands for the shell's `${`, which the template would interpolate.
 */
export const AGENT_GUARD_SCRIPT = String.raw`cwd=$1 grace=$2
shift 2
fail() {
  printf '{"type":"error","reason":"%s"}\n' "$1" >&3
  exit 127
}
cd -P -- "$cwd" 2>/dev/null || fail cwd
command -v -- "$1" >/dev/null 2>&1 || fail command
(
  trap '' TERM INT HUP
  exec </dev/null >/dev/null 2>&1
  while read -r _ <&3; do :; done
  PATH=/usr/bin:/bin:$PATH
  read -r me </proc/self/stat && me=$\{me%% *}
  alive() {
    kill -0 -$$ 2>/dev/null || return 1
    [ -r /proc/self/stat ] || return 0
    for f in /proc/[0-9]*/stat; do
      read -r s <"$f" 2>/dev/null || continue
      [ "$\{s%% *}" = "$me" ] && continue
      s=$\{s##*) }
      state=$\{s%% *} s=$\{s#* } s=$\{s#* }
      [ "$\{s%% *}" = $$ ] && [ "$state" != Z ] && return 0
    done
    return 1
  }
  kill -TERM -$$ 2>/dev/null
  polls=$((grace / 50))
  while [ $polls -gt 0 ] && alive; do sleep 0.05; polls=$((polls - 1)); done
  kill -KILL -$$ 2>/dev/null
) &
printf '{"type":"watching","pid":%d}\n' $! >&3
exec 3>&-
exec "$@"
`.replaceAll('$\\{', '${');

/** A message of the guard on the control socket. */
export type GuardMessage =
  | { type: 'watching'; pid: number }
  /** The agent could not be started: no such working directory, or command not found. */
  | { type: 'error'; reason: 'cwd' | 'command' };

/** The guard's control socket, as an index into `stdio` (see the module comment). */
export const GUARD_CONTROL_FD = 3;

/**
 * The command line that runs `command args` in `cwd` under the guard; spawn it detached, with
 * the agent's environment and stdio `[stdin, 'pipe', 'pipe', 'pipe']`.
 *
 * @example
 * const { command, args } = guardCommand('bash', ['-c', 'sleep 1'], '/tmp', 5000);
 * // command === '/bin/sh',
 * // args === ['-c', AGENT_GUARD_SCRIPT, 'fleet-agent-guard', '/tmp', '5000', 'bash', '-c', 'sleep 1']
 */
export function guardCommand(
  command: string,
  args: string[],
  cwd: string,
  graceMs: number,
): { command: string; args: string[] } {
  return {
    command: '/bin/sh',
    args: [
      '-c',
      AGENT_GUARD_SCRIPT,
      'fleet-agent-guard',
      cwd,
      String(Math.max(0, Math.round(graceMs))),
      command,
      ...args,
    ],
  };
}

/**
 * Splits the control socket's text into guard messages; returns the unfinished rest. Lines
 * that are not guard messages are skipped.
 */
export function parseGuardMessages(
  text: string,
  onMessage: (message: GuardMessage) => void,
): string {
  let rest = text;
  for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
    const line = rest.slice(0, nl);
    rest = rest.slice(nl + 1);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    if (parsed !== null && typeof parsed === 'object' && 'type' in parsed) {
      onMessage(parsed as GuardMessage);
    }
  }
  return rest;
}
