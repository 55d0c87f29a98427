import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startDeadEndpoint, type DeadEndpoint } from './dead-endpoint.js';
import type { Engine, EngineParser } from './engine.js';
import { readJsonLine } from './json-line.js';
import { PROBE_SETUPS } from './probe-setups.js';

/** What running an engine's CLI headless against a dead model endpoint showed. */
export interface JsonProbe {
  /**
   * Whether the engine's parser turned a stdout line into a Fleet event (not `raw`); null for
   * an engine without JSON output (the shell).
   */
  ok: boolean | null;
  /** One line for a person: what was seen, or precisely why the output is not usable. */
  detail: string;
  /** The first non-blank stdout line (cut at 500 characters), or null when there was none. */
  firstLine: string | null;
  /** The type of the first event that was not `raw` (`session` for every CLI observed). */
  event: string | null;
  /** The dead endpoint the CLI was pointed at. */
  endpoint: string | null;
  /** Connections the CLI opened to the dead endpoint (each one dropped at once). */
  connections: number;
  exitCode: number | null;
  signal: string | null;
  /** Whether the CLI was stopped because it outlived the probe's timeout. */
  timedOut: boolean;
  ms: number;
}

export interface JsonProbeOptions {
  /**
   * The caller's environment. Only `PATH` and `LANG` reach the CLI: no key, login, proxy or
   * provider switch of the user's (say `CLAUDE_CODE_USE_BEDROCK`) can send the probe elsewhere.
   */
  env: Readonly<Record<string, string | undefined>>;
  /** Stop the CLI (its whole process group) after this long; 20 s by default. */
  timeoutMs?: number;
  /** Where the sandbox directory is made; the OS temp directory by default. */
  tmpDir?: string;
}

/** How long a CLI has after SIGTERM before its process group gets SIGKILL. */
const KILL_GRACE_MS = 2_000;
const FIRST_LINE_MAX = 500;

/**
 * Answers "does this engine's JSON output work?" without reaching a model: starts the CLI at
 * `binaryPath` headless in its JSON mode, with the engine's own command line (no yolo), a tiny
 * prompt, a temporary HOME, cwd and TMPDIR, and its model endpoint pointed at a loopback port
 * that drops every connection ({@link PROBE_SETUPS}). Its stdout goes through the engine's
 * parser; the probe passes when one line becomes a Fleet event other than `raw` (the session
 * line these CLIs print before their first model request). The CLI's process group is killed
 * at the end and the sandbox removed. It never throws for what the CLI does.
 *
 * @example
 * await probeJsonOutput(claudeCode, '/usr/local/bin/claude', { env: process.env });
 * // { ok: true, event: 'session', detail: 'JSON ok: session line, then API unreachable as
 * //   expected ("API Error: Unable to connect to API (ECONNRESET)", exit 1)', … }
 */
export async function probeJsonOutput(
  engine: Engine,
  binaryPath: string,
  options: JsonProbeOptions,
): Promise<JsonProbe> {
  if (engine.name === 'shell')
    return {
      ok: null,
      detail: 'no JSON output: the shell engine logs lines',
      firstLine: null,
      event: null,
      endpoint: null,
      connections: 0,
      exitCode: null,
      signal: null,
      timedOut: false,
      ms: 0,
    };
  const setup = PROBE_SETUPS[engine.name];
  const timeoutMs = options.timeoutMs ?? 20_000;
  const root = await mkdtemp(join(options.tmpDir ?? tmpdir(), `fleet-probe-${engine.name}-`));
  let dead: DeadEndpoint | undefined;
  try {
    dead = await startDeadEndpoint();
    const home = join(root, 'home');
    const work = join(root, 'work');
    const tmp = join(root, 'tmp');
    for (const dir of [home, work, tmp]) await mkdir(dir);
    const cmd = engine.command(setup.input);
    const env: Record<string, string> = {
      PATH: options.env.PATH ?? '',
      LANG: options.env.LANG ?? 'C.UTF-8',
      HOME: home,
      TMPDIR: tmp,
      ...cmd.env,
      ...(await setup.prepare({ home, endpoint: dead.url })),
    };
    const started = Date.now();
    const parser = engine.parser(setup.input);
    const ran = await runToEnd(binaryPath, cmd.args, parser, { cwd: work, env, timeoutMs });
    const ms = Date.now() - started;
    return describe(ran, { endpoint: dead.url, connections: dead.connections(), timeoutMs, ms });
  } finally {
    await dead?.close();
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  }
}

interface Ran {
  firstLine: string | null;
  /** The first line the parser understood, and the event it became. */
  understood: { event: string } | null;
  /** What the CLI's own output says went wrong (the parser's summary). */
  cliError: string | null;
  stderr: string;
  spawnError: Error | null;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
}

/**
 * Runs the CLI in its own process group, parsing stdout as it comes; stops the group after
 * `timeoutMs` (SIGTERM, then SIGKILL), and kills what is left of it once the CLI exits.
 */
function runToEnd(
  path: string,
  args: string[],
  parser: EngineParser,
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<Ran> {
  const ran: Ran = {
    firstLine: null,
    understood: null,
    cliError: null,
    stderr: '',
    spawnError: null,
    exitCode: null,
    signal: null,
    timedOut: false,
  };
  const child = spawn(path, args, {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const killGroup = (signal: NodeJS.Signals): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // ESRCH: every process of the group has exited already.
    }
  };
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (ran.stderr.length < 4096) ran.stderr += chunk;
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (ran.firstLine === null && line.trim() !== '') ran.firstLine = line.slice(0, FIRST_LINE_MAX);
    const events = parser.parse(line).events;
    const event = events.find((e) => e.type !== 'raw');
    if (ran.understood === null && event !== undefined) ran.understood = { event: event.type };
  });
  let grace: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    ran.timedOut = true;
    killGroup('SIGTERM');
    grace = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
  }, opts.timeoutMs);
  return new Promise((resolve) => {
    child.on('error', (err) => (ran.spawnError = err));
    // Helpers the CLI started (MCP servers, a relaunched child) go with it.
    child.on('exit', () => killGroup('SIGKILL'));
    // 'close' comes after 'exit' (or after 'error' when it could not start) and after stdout
    // ended, so every line has been parsed.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(grace);
      ran.exitCode = code;
      ran.signal = signal;
      ran.cliError = parser.summary().error;
      resolve(ran);
    });
  });
}

/** A string for a one-line report: quoted, cut at 120 characters. */
function quote(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
}

/** The probe's verdict and its one-line detail, from what the run showed. */
function describe(
  ran: Ran,
  seen: { endpoint: string; connections: number; timeoutMs: number; ms: number },
): JsonProbe {
  const facts = {
    firstLine: ran.firstLine,
    event: ran.understood?.event ?? null,
    endpoint: seen.endpoint,
    connections: seen.connections,
    exitCode: ran.exitCode,
    signal: ran.signal,
    timedOut: ran.timedOut,
    ms: seen.ms,
  };
  const ended = ran.timedOut
    ? `still running after ${seen.timeoutMs} ms, stopped`
    : ran.exitCode !== null
      ? `exit ${ran.exitCode}`
      : `killed by ${ran.signal ?? 'a signal'}`;
  if (ran.spawnError !== null)
    return { ok: false, detail: `could not start: ${ran.spawnError.message}`, ...facts };
  if (ran.understood !== null) {
    const said = ran.cliError === null ? '' : `${quote(ran.cliError)}, `;
    const then = ran.timedOut
      ? `then ${ended}`
      : seen.connections > 0
        ? `then API unreachable as expected (${said}${ended})`
        : `and it never called the model endpoint (${said}${ended})`;
    return { ok: true, detail: `JSON ok: ${ran.understood.event} line, ${then}`, ...facts };
  }
  const stderr = ran.stderr.split('\n').find((l) => l.trim() !== '');
  const stderrNote = stderr === undefined ? '' : `; stderr: ${quote(stderr.trim())}`;
  if (ran.firstLine === null) {
    const what = ran.timedOut
      ? `timed out: no output on stdout within ${seen.timeoutMs} ms`
      : 'no output on stdout';
    return { ok: false, detail: `${what} (${ended}${stderrNote})`, ...facts };
  }
  const kind =
    readJsonLine(ran.firstLine) === 'raw'
      ? 'non-JSON output'
      : 'JSON its parser does not understand';
  const prefix = ran.timedOut ? `timed out after ${seen.timeoutMs} ms with ` : '';
  return {
    ok: false,
    detail: `${prefix}${kind}: first line ${quote(ran.firstLine)} (${ended}${stderrNote})`,
    ...facts,
  };
}
