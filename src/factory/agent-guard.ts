/**
 * The agent guard: a tiny Node process between the factory and an agent, so that an agent
 * never outlives the factory that started it, even when the factory dies by SIGKILL.
 *
 * spawnProcess starts `node -e <AGENT_GUARD_SOURCE> -- <command> <args…>` in a process group
 * of its own, with these file descriptors:
 *
 * - 0: the agent's stdin (`ignore` or a pipe the factory holds), passed through as is;
 * - 3: the control socket. The factory writes one JSON line, `{cwd, env, graceMs}`; the guard
 *   answers with JSON lines: `{type:'spawned', pid}`, `{type:'error', message, code, …}` when
 *   the agent could not be started, and `{type:'exit', code, signal}` when it ended. End of
 *   file on this socket means the factory is gone (or done with the run): the guard then sends
 *   SIGTERM to the agent's process group, SIGKILL after `graceMs` if anything of it is still
 *   alive (zombies do not count), and exits with the agent's code, or 128 + its signal;
 * - 4 and 5: the pipes for the agent's stdout and stderr. The agent gets them as its fds 1
 *   and 2 directly and the guard closes its own copies, so output reaches the factory
 *   byte for byte, without copying, and the pipes close exactly when the agent's group lets
 *   them go.
 *
 * The agent runs in a process group of its own (`detached`), whose id is the pid the guard
 * reports; the factory signals that group directly on timeout or abort, as before. SIGTERM,
 * SIGINT and SIGHUP sent to the guard itself are forwarded to the agent's group.
 *
 * The source is plain CommonJS passed with `node -e`, so no file path has to be resolved: it
 * runs the same from `src` under vitest/tsx and from `dist`, and needs no loader. It has no
 * environment of its own beyond PATH (the agent's environment arrives on the control socket),
 * so NODE_OPTIONS and friends meant for the agent do not affect the guard.
 */
export const AGENT_GUARD_SOURCE = String.raw`'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const [command, ...args] = process.argv.slice(1);
process.title = ('fleet-agent-guard ' + command + ' ' + args.join(' ')).slice(0, 200);
const ctl = new net.Socket({ fd: 3, readable: true, writable: true });
let agent = null;
let pgid = null;
let status = null;
let graceMs = 5000;
let pending = null;
let lost = false;
let exiting = false;
const send = (msg) => {
  if (lost || ctl.destroyed) return;
  try { ctl.write(JSON.stringify(msg) + '\n'); } catch {}
};
const closeOutput = () => {
  for (const fd of [4, 5]) { try { fs.closeSync(fd); } catch {} }
};
const signalGroup = (sig) => {
  if (pgid === null) return false;
  try { process.kill(-pgid, sig); return true; } catch { return false; }
};
const groupAlive = () => {
  if (!signalGroup(0)) return false;
  let entries;
  try { entries = fs.readdirSync('/proc'); } catch { return true; }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try { stat = fs.readFileSync('/proc/' + entry + '/stat', 'utf8'); } catch { continue; }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
  }
  return false;
};
const exit = () => {
  if (exiting) return;
  exiting = true;
  let code = 0;
  if (status === null) code = 1;
  else if (status.code !== null) code = status.code;
  else code = 128 + (os.constants.signals[status.signal] || 0);
  process.exit(code);
};
const onLost = () => {
  if (lost) return;
  lost = true;
  ctl.destroy();
  if (!groupAlive()) return exit();
  signalGroup('SIGTERM');
  const until = Date.now() + graceMs;
  const poll = () => {
    if (!groupAlive()) return exit();
    if (Date.now() >= until) { signalGroup('SIGKILL'); return exit(); }
    setTimeout(poll, 25);
  };
  setTimeout(poll, 25);
};
const start = (spec) => {
  if (typeof spec.graceMs === 'number') graceMs = spec.graceMs;
  try {
    agent = spawn(command, args, {
      cwd: spec.cwd, env: spec.env, detached: true, stdio: ['inherit', 4, 5],
    });
  } catch (error) {
    closeOutput();
    send({ type: 'error', message: String(error && error.message), code: error && error.code });
    return;
  }
  closeOutput();
  agent.on('error', (error) => {
    if (agent.pid !== undefined) return;
    send({ type: 'error', message: error.message, code: error.code, errno: error.errno,
      syscall: error.syscall, path: error.path });
  });
  agent.on('exit', (code, signal) => {
    status = { code, signal };
    send({ type: 'exit', code, signal });
  });
  if (agent.pid === undefined) return;
  pgid = agent.pid;
  send({ type: 'spawned', pid: agent.pid });
  if (pending !== null) signalGroup(pending);
};
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => { if (pgid === null) pending = sig; else signalGroup(sig); });
}
let buffered = '';
ctl.setEncoding('utf8');
ctl.on('data', (data) => {
  if (agent !== null || buffered === null) return;
  buffered += data;
  const nl = buffered.indexOf('\n');
  if (nl < 0) return;
  const line = buffered.slice(0, nl);
  buffered = null;
  let spec;
  try { spec = JSON.parse(line); } catch { spec = null; }
  if (spec === null || typeof spec !== 'object') {
    closeOutput();
    send({ type: 'error', message: 'agent guard: bad start message' });
    return;
  }
  start(spec);
});
ctl.on('end', onLost);
ctl.on('close', onLost);
ctl.on('error', onLost);
`;

/** What the factory sends on the control socket to start the agent. */
export interface GuardStart {
  cwd: string;
  env: Record<string, string>;
  graceMs: number;
}

/** A message of the guard on the control socket. */
export type GuardMessage =
  | { type: 'spawned'; pid: number }
  | {
      type: 'error';
      message: string;
      code?: string;
      errno?: number;
      syscall?: string;
      path?: string;
    }
  | { type: 'exit'; code: number | null; signal: NodeJS.Signals | null };

/** The guard's file descriptors, as indexes into `stdio` (see the module comment). */
export const GUARD_CONTROL_FD = 3;
export const GUARD_STDOUT_FD = 4;
export const GUARD_STDERR_FD = 5;

/**
 * The command line that runs `command args` under the guard: the current Node binary, with
 * none of the factory's own flags (an `--inspect` port must not be taken twice).
 *
 * @example
 * const { command, args } = guardCommand('bash', ['-c', 'sleep 1']);
 * // command === process.execPath, args === ['-e', AGENT_GUARD_SOURCE, '--', 'bash', '-c', 'sleep 1']
 */
export function guardCommand(command: string, args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: ['-e', AGENT_GUARD_SOURCE, '--', command, ...args] };
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
