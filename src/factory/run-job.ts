import type {
  Checkpoint,
  EventInput,
  Insights,
  Job,
  RunExit,
  RunResult,
  VerifyResult,
} from '../core/index.js';
import type { AgentState, Engine, EngineParser, EngineRunInput } from '../engines/engine.js';
import { commitAll, diffstat } from './checkpoint.js';
import { messagesPrompt, type RunInbox } from './ipc/inbox.js';
import type { PipePoller } from './pipe-poller.js';
import { DEFAULT_GRACE_MS, spawnProcess } from './spawn-agent.js';
import { runVerify, TailBuffer, VERIFY_TAIL_BYTES } from './verify.js';
import { RESTART_MESSAGE, Watchdog, type StallConfig } from './watchdog.js';
import {
  branchName,
  createWorktree,
  detachWorktree,
  MissingBaseError,
  removeWorktree,
  repoRoot,
  type Workspace,
} from './worktree.js';

export interface RunJobInput {
  job: Pick<Job, 'id' | 'key' | 'bodyMd' | 'verify' | 'timeoutMs' | 'checkpoint'> & {
    cwd: string;
    env?: Record<string, string>;
    /** Times the agent may be resumed to fix a failing verify; default 1. */
    fixAttempts?: number;
    /** Runs (`bash -c`) in the worktree before the agent. */
    setup?: string;
    yolo?: boolean;
    model?: string;
    /** Stall supervision of the agent (see watchdog.ts); none when unset. */
    stall?: StallConfig | null;
    /** The ref (a branch) a run without a checkpoint starts from instead of HEAD. */
    base?: string | null;
  };
  engine: Engine;
  /** Where worktrees go. */
  workRoot: string;
  /** FLEET_URL, FLEET_JOB_ID, FLEET_TOKEN, FLEET_PORT…: passed to every process, last. */
  env: Record<string, string>;
  graceMs?: number;
  /** Cancel or lease loss. An abort whose reason is 'lease_lost' ends the run as lease_lost. */
  signal?: AbortSignal;
  onEvent?: (event: EventInput) => void;
  onState?: (state: AgentState) => void;
  /** Lines longer than this are split (see LineSplitter). */
  maxLineChars?: number;
  /** Messages for the agent (IPC `notify`/`resume`), handed over at its turn boundaries. */
  inbox?: RunInbox;
  /** Reads the agent's output (not setup's or verify's) on a timer; see PipePoller. */
  poller?: PipePoller;
}

export interface RunOutcome {
  result: RunResult;
  exit: RunExit | null;
  verifyResult: VerifyResult | null;
  insights: Insights;
  /** Work in progress committed on a run that did not succeed and changed something. */
  checkpoint: Checkpoint | null;
  /** The deliverable: the branch's commit after a successful run (in a git repository). */
  commit: string | null;
  /** The worktree (or, in place, the job's cwd). Kept unless the run succeeded. */
  worktree: string;
  branch: string | null;
  sessionId: string | null;
  /** Why the run failed, when the runner knows better than the result (a stall). */
  error?: string;
  /** False when trying again cannot help (a missing base branch, a failed gate). */
  retryable?: boolean;
  /** More outcome data for the run's `output` (a gate's decision). */
  output?: Record<string, unknown>;
}

/** The abort reason of an agent stopped by the stall watchdog. */
const STALLED = 'stalled';
/** The abort reason of an agent stopped to be resumed now with messages (IPC `resume`). */
const INTERRUPTED = 'interrupted';
type StallAction = 'fail' | 'resume' | 'restart';

/** The reason to pass to `AbortController.abort` when the lease was lost. */
export const LEASE_LOST = 'lease_lost';

/**
 * Runs one attempt of a job to its end, with no server involved:
 *
 * 1. Workspace: a git worktree on `fleet/<key or id>` from the repository holding `job.cwd`
 *    (from the job's checkpoint, else `job.base`, else HEAD); a cwd outside git runs in place,
 *    and a `workspace` event says so.
 * 2. Setup (`bash -c`), when set. A failing setup ends the run as `crashed`: the agent never
 *    ran, the cause is the environment, and nothing is checkpointed.
 * 3. The engine's command, in its own process group, with the factory's environment, the job's
 *    `env`, the engine's env and `env` (Fleet's variables) layered in that order.
 * 4. Verify, after the agent exits 0. On failure with fix attempts left, the agent's session is
 *    resumed with the failing output as its next message, then verify runs again. An engine
 *    that reports no session (the shell engine) has no fix loop: the run is `gate_failed`.
 *    Messages in `inbox` are handed over at each turn boundary: when the agent exits 0 (before
 *    verify) and when a verify ends, the session is resumed with them as the next prompt (after
 *    a failing verify's output), then verify runs (again). A `resume` may stop the agent to
 *    resume its session with them at once. Messages still waiting when the run ends expire.
 * 5. Success: everything is committed on the branch (`commit`) and the worktree removed.
 *    Otherwise: uncommitted work is committed as a checkpoint when the run changed anything,
 *    the worktree is kept (HEAD detached, so the branch is free for a retry).
 *
 * `job.stall` (optional) supervises the agent: every stdout or stderr line counts as activity;
 * after `stall.afterMs` of silence a `stalled` event ({silentMs, policy, action}) is emitted and
 * the policy applied (see StallConfig): `action` is `fail` (the agent is stopped and the run
 * ends `agent_failed`, `error` "stalled: no output for Ns"), `resume` (stopped, its session
 * resumed with a message) or `restart` (stopped, its command run again in the same worktree).
 * Setup and verify are not supervised (the timeout bounds them).
 *
 * `job.timeoutMs` bounds the whole run (setup, agent, verify, fix attempts): at the deadline
 * the running process group gets SIGTERM, then SIGKILL after `graceMs`. An abort does the same.
 * Never rejects: unexpected failures end as `crashed` with an `error` event. An `onEvent` or
 * `onState` that throws is ignored (it must not stop the agent from inside a stream handler).
 *
 * A run without a checkpoint (re)creates `fleet/<key or id>` at `job.base` (a missing one fails
 * the run, not retryable) or else the repository's HEAD; one with a checkpoint resets it to the
 * checkpoint's commit. The deliverable `commit` is the branch's HEAD after the run, also when
 * the agent committed on its own or changed nothing (then it is the start commit). Diffstat
 * insights count this run's changes (start..end); a checkpoint's `wipBase` is the base of the
 * whole line of work (carried over from the job's checkpoint).
 */
export async function runJob(input: RunJobInput): Promise<RunOutcome> {
  const { job, engine } = input;
  const onEvent = guarded(input.onEvent);
  const onState = guarded(input.onState);
  const emit = (type: string, data: Record<string, unknown>): void => onEvent({ type, data });
  const graceMs = input.graceMs ?? DEFAULT_GRACE_MS;
  const deadline = job.timeoutMs == null ? null : Date.now() + job.timeoutMs;
  const parser = engine.parser({ model: job.model });
  /** Restarts after stalls so far, over the whole run. */
  let restarts = 0;

  const outcome = initialOutcome(job.cwd);
  const opened = await prepareWorkspace(() => openWorkspace(input), 'the workspace', outcome, emit);
  if (opened === null) return outcome;
  const ws: Workspace = opened;
  emit(
    'workspace',
    ws.inPlace
      ? {
          inPlace: true,
          path: ws.cwd,
          reason: `${job.cwd} is not a git repository; running in place`,
        }
      : { inPlace: false, path: ws.cwd, branch: ws.branch, base: ws.start },
  );

  const env: Record<string, string> = {
    ...inheritedEnv(process.env),
    ...(job.env ?? {}),
  };
  const stopped = (): RunResult | null => {
    if (input.signal?.aborted)
      return input.signal.reason === LEASE_LOST ? 'lease_lost' : 'cancelled';
    return null;
  };
  const resultOf = (reason: 'exited' | 'timeout' | 'aborted'): RunResult | null =>
    reason === 'timeout' ? 'timeout' : reason === 'aborted' ? (stopped() ?? 'cancelled') : null;

  try {
    const result = await runPhases();
    outcome.result = result;
  } catch (error) {
    emit('error', { message: `runner failed: ${messageOf(error)}` });
    outcome.result = 'crashed';
  }
  input.inbox?.close(`the run ended (${outcome.result})`);
  const summary = parser.summary();
  outcome.sessionId = summary.sessionId;
  outcome.insights = { ...summary.insights };
  await finish();
  return outcome;

  async function runPhases(): Promise<RunResult> {
    if (job.setup) {
      const tail = new TailBuffer(VERIFY_TAIL_BYTES);
      const out = await spawnProcess({
        command: 'bash',
        args: ['-c', '--', job.setup],
        cwd: ws.cwd,
        env: { ...env, ...input.env },
        timeoutMs: remaining(deadline),
        graceMs,
        signal: input.signal,
        onOutput: (chunk) => tail.push(chunk),
      });
      const ok = out.reason === 'exited' && out.exit.code === 0 && out.spawnError === null;
      emit('setup', {
        command: job.setup,
        exit: out.exit.code,
        ok,
        durationMs: out.durationMs,
        outputTail: tail.text(),
      });
      const why = resultOf(out.reason);
      if (why) return why;
      if (!ok) {
        outcome.exit = out.exit;
        return 'crashed';
      }
    }

    const first = await runAgent({ prompt: job.bodyMd, yolo: job.yolo ?? false, model: job.model });
    if (first) return first;

    let fixesLeft = job.fixAttempts ?? 1;
    /** A failed verify's output, to go before the messages that arrived during it. */
    let lead: string | null = null;
    for (;;) {
      const handed = await handOver(lead);
      lead = null;
      if (handed) return handed;
      if (job.verify.length === 0) return 'success';
      emit('verify_started', { commands: job.verify });
      const verified = await runVerify(job.verify, {
        cwd: ws.cwd,
        env: { ...env, ...input.env },
        deadline,
        graceMs,
        signal: input.signal,
      });
      outcome.verifyResult = verified.result;
      emit('verify', { ...verified.result });
      if (verified.stopped) return resultOf(verified.stopped) ?? 'cancelled';
      // Messages sent during verify go to the agent now (with the output, when it failed).
      if (input.inbox?.size && parser.summary().sessionId !== null) {
        lead = verified.result.passed ? null : fixPrompt(verified.result);
        continue;
      }
      if (verified.result.passed) return 'success';
      if (fixesLeft <= 0) return 'gate_failed';
      const sessionId = parser.summary().sessionId;
      if (sessionId === null) {
        emit('fix_skipped', {
          reason: `engine ${engine.name} reported no session to resume; no fix loop`,
        });
        return 'gate_failed';
      }
      fixesLeft -= 1;
      const prompt = fixPrompt(verified.result);
      emit('fix_attempt', { attempt: (job.fixAttempts ?? 1) - fixesLeft, sessionId, prompt });
      const fixed = await runAgent({
        prompt,
        resumeSessionId: sessionId,
        yolo: job.yolo ?? false,
        model: job.model,
      });
      if (fixed) return fixed;
    }
  }

  /**
   * The turn boundary: while messages wait in the inbox, resumes the agent's session with them
   * (after `lead`, when set). Null when the agent took them and exited 0 (or none waited).
   */
  async function handOver(lead: string | null): Promise<RunResult | null> {
    const inbox = input.inbox;
    while (inbox !== undefined && inbox.size > 0) {
      const sessionId = parser.summary().sessionId;
      if (sessionId === null) {
        inbox.expire(`engine ${engine.name} reported no session to resume`);
        return null;
      }
      const messages = messagesPrompt(inbox.deliver(sessionId));
      const prompt = lead === null ? messages : `${lead}\n\n${messages}`;
      lead = null;
      const result = await runAgent({
        prompt,
        resumeSessionId: sessionId,
        yolo: job.yolo ?? false,
        model: job.model,
      });
      if (result) return result;
    }
    return null;
  }

  /**
   * Runs the engine until it exits on its own; null when it exited 0 (and did not say it
   * failed). A stall under a `restart` or `nudge` policy stops it and runs it again here, and
   * so does a `resume` from the inbox (its session resumed with the waiting messages).
   */
  async function runAgent(first: EngineRunInput): Promise<RunResult | null> {
    let run = first;
    for (;;) {
      const once = await runAgentOnce(run);
      if (once.kind === 'done') return once.result;
      if (once.kind === 'interrupted') {
        const messages = input.inbox?.deliver(once.sessionId) ?? [];
        const prompt = messages.length > 0 ? messagesPrompt(messages) : RESTART_MESSAGE;
        run = { ...first, prompt, resumeSessionId: once.sessionId };
        continue;
      }
      if (once.action === 'fail') {
        outcome.error = `stalled: no output for ${seconds(once.silentMs)}s`;
        return 'agent_failed';
      }
      // The parser's session is read now: the stopped run may have reported it late.
      const sessionId = parser.summary().sessionId;
      run =
        sessionId !== null
          ? { ...first, prompt: resumeMessage(), resumeSessionId: sessionId }
          : first;
    }
  }

  function resumeMessage(): string {
    return job.stall?.policy === 'nudge' ? job.stall.nudge : RESTART_MESSAGE;
  }

  async function runAgentOnce(
    run: EngineRunInput,
  ): Promise<
    | { kind: 'done'; result: RunResult | null }
    | { kind: 'stalled'; action: StallAction; silentMs: number }
    | { kind: 'interrupted'; sessionId: string }
  > {
    const command = engine.command(run);
    const stall = job.stall ?? null;
    // The agent's own stop: the run's signal, or a stall.
    const local = new AbortController();
    const forward = (): void => local.abort(input.signal?.reason);
    if (input.signal?.aborted) forward();
    else input.signal?.addEventListener('abort', forward, { once: true });
    let stalled: { action: StallAction; silentMs: number } | null = null;
    const dog =
      stall === null
        ? null
        : new Watchdog({
            stalledAfterMs: stall.afterMs,
            onStall: (silentMs) => {
              if (local.signal.aborted) return;
              dog?.stop();
              const action: StallAction =
                stall.policy === 'fail' || restarts >= stall.maxRestarts
                  ? 'fail'
                  : parser.summary().sessionId !== null
                    ? 'resume'
                    : 'restart';
              if (action !== 'fail') restarts += 1;
              stalled = { action, silentMs };
              emit('stalled', {
                silentMs,
                policy: stall.policy,
                action,
                ...(action === 'fail' ? {} : { restart: restarts, maxRestarts: stall.maxRestarts }),
              });
              local.abort(STALLED);
            },
          });
    let interrupted: string | null = null;
    input.inbox?.onInterrupt(() => {
      const sessionId = parser.summary().sessionId;
      if (local.signal.aborted || sessionId === null) return false;
      dog?.stop();
      interrupted = sessionId;
      local.abort(INTERRUPTED);
      return true;
    });
    onState('starting');
    dog?.start();
    const out = await spawnProcess({
      command: command.command,
      args: command.args,
      cwd: ws.cwd,
      env: { ...env, ...command.env, ...input.env },
      stdin: command.stdin,
      timeoutMs: remaining(deadline),
      graceMs,
      signal: local.signal,
      maxLineChars: input.maxLineChars,
      ...(input.poller === undefined ? {} : { poller: input.poller }),
      onStdoutLine: (line) => {
        dog?.touch();
        feed(parser, line);
      },
      onStderrLine: (line) => {
        dog?.touch();
        onEvent({ type: 'log', data: { stream: 'stderr', line } });
      },
    });
    dog?.stop();
    input.inbox?.onInterrupt(null);
    input.signal?.removeEventListener('abort', forward);
    onState('exited');
    outcome.exit = out.exit;
    emit('agent_exit', { code: out.exit.code, signal: out.exit.signal, reason: out.reason });
    const done = (result: RunResult | null) => ({ kind: 'done' as const, result });
    if (out.spawnError) {
      emit('error', { message: `could not start ${command.command}: ${out.spawnError.message}` });
      return done('crashed');
    }
    // A cancel or lost lease wins over a stall that happened at the same time.
    if (out.reason === 'aborted' && !input.signal?.aborted && stalled !== null)
      return { kind: 'stalled', ...(stalled as { action: StallAction; silentMs: number }) };
    if (out.reason === 'aborted' && !input.signal?.aborted && interrupted !== null)
      return { kind: 'interrupted', sessionId: interrupted };
    return done(agentResult(out));
  }

  function agentResult(out: {
    reason: 'exited' | 'timeout' | 'aborted';
    exit: RunExit;
  }): RunResult | null {
    const why = resultOf(out.reason);
    if (why) return why;
    if (out.exit.code !== 0) return 'agent_failed';
    if (parser.summary().ok === false) return 'agent_failed';
    return null;
  }

  function feed(p: EngineParser, line: string): void {
    const parsed = p.parse(line);
    for (const event of parsed.events) {
      onEvent(event);
      if (input.inbox?.awaitingAnswer && answers(event)) input.inbox.answered();
    }
    if (parsed.state) onState(parsed.state);
  }

  async function finish(): Promise<void> {
    if (ws.inPlace || ws.repo === null || ws.start === null) return;
    const label = job.key ?? job.id;
    try {
      if (outcome.result === 'success') {
        const commit = await commitAll(ws.root, `fleet: ${label}\n\nResult of job ${job.id}.`);
        outcome.commit = commit;
        Object.assign(outcome.insights, await diffstat(ws.root, ws.start, commit));
        await removeWorktree(ws.repo, ws.root);
        emit('commit', { branch: ws.branch, commit, base: ws.start });
        return;
      }
      const head = await commitAll(
        ws.root,
        `fleet: WIP ${label} (${outcome.result})\n\nWork in progress of job ${job.id}, kept so a retry can start from it.`,
      );
      if (head !== ws.start && ws.branch !== null) {
        outcome.checkpoint = {
          wipBranch: ws.branch,
          // The base of the whole line of work: a resumed run keeps the first run's base.
          wipBase: job.checkpoint?.wipBase ?? ws.start,
          wipCommit: head,
        };
        Object.assign(outcome.insights, await diffstat(ws.root, ws.start, head));
        emit('checkpoint', { ...outcome.checkpoint });
      }
      await detachWorktree(ws.root);
      emit('worktree_kept', { path: ws.root });
    } catch (error) {
      emit('error', { message: `could not commit the run's work: ${messageOf(error)}` });
      if (outcome.result === 'success') {
        outcome.result = 'crashed';
        outcome.commit = null;
      }
    }
  }
}

async function openWorkspace(input: RunJobInput): Promise<Workspace> {
  const { job } = input;
  if ((await repoRoot(job.cwd)) === null) {
    return { root: job.cwd, cwd: job.cwd, inPlace: true, repo: null, branch: null, start: null };
  }
  return createWorktree({
    cwd: job.cwd,
    workRoot: input.workRoot,
    branch: branchName(job.key, job.id),
    checkpoint: job.checkpoint,
    base: job.base ?? null,
    label: job.key ?? job.id,
  });
}

/**
 * The message that resumes the agent after a failed verify: which command failed, its exit
 * code and the tail of its output.
 */
export function fixPrompt(result: VerifyResult): string {
  const failed = result.commands.find((c) => c.exit !== 0) ?? result.commands.at(-1);
  if (failed === undefined) return 'The verify commands failed. Fix the problem.';
  return [
    `The verify command \`${failed.command}\` failed (exit ${failed.exit ?? 'killed'}).`,
    'Fix the problem so that it passes. The end of its output:',
    '',
    '```',
    failed.outputTail,
    '```',
  ].join('\n');
}

/** 0.3, 9.5, 600: one decimal under ten seconds. */
function seconds(ms: number): string {
  return ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.round(ms / 1000));
}

function remaining(deadline: number | null): number | null {
  return deadline === null ? null : Math.max(1, deadline - Date.now());
}

/**
 * `listener` made safe to call from inside a stream handler: what it throws is swallowed (the
 * listener's problem, not the run's).
 */
export function guarded<T>(listener: ((value: T) => void) | undefined): (value: T) => void {
  return (value) => {
    try {
      listener?.(value);
    } catch {
      /* the listener's problem, not the run's */
    }
  };
}

/** A run's outcome before anything happened: `crashed`, in `cwd`, with nothing delivered. */
export function initialOutcome(cwd: string): RunOutcome {
  return {
    result: 'crashed',
    exit: null,
    verifyResult: null,
    insights: {},
    checkpoint: null,
    commit: null,
    worktree: cwd,
    branch: null,
    sessionId: null,
  };
}

/**
 * Opens a run's workspace with `open` and records its root and branch in `outcome`. When that
 * fails, `outcome.error` says why ("could not prepare `what`: …"; not retryable for a missing
 * base), an `error` event is emitted and the result is null.
 */
export async function prepareWorkspace(
  open: () => Promise<Workspace>,
  what: string,
  outcome: RunOutcome,
  emit: (type: string, data: Record<string, unknown>) => void,
): Promise<Workspace | null> {
  let ws: Workspace;
  try {
    ws = await open();
  } catch (error) {
    outcome.error = `could not prepare ${what}: ${messageOf(error)}`;
    if (error instanceof MissingBaseError) outcome.retryable = false;
    emit('error', { message: outcome.error });
    return null;
  }
  outcome.worktree = ws.root;
  outcome.branch = ws.branch;
  return ws;
}

/** The variables of `env` that are set. */
/**
 * The factory's environment as its runs inherit it: without FLEET_TOKEN, the factory's own
 * credential (it claims and completes any job of its tenants), which no agent may hold. A run
 * gets its own job-scoped token in `input.env` instead.
 */
export function inheritedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out = stringEnv(env);
  delete out.FLEET_TOKEN;
  return out;
}

export function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** An error's message, or the thrown value as text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Whether an engine event shows the agent answering its prompt: the model's own output (text,
 * thinking, a tool call) or its end-of-turn result. Session lines and echoed user messages come
 * before the model read anything.
 */
function answers(event: EventInput): boolean {
  switch (event.type) {
    case 'thinking':
    case 'tool_call':
    case 'result':
      return true;
    case 'message':
      return (event.data as { role?: unknown } | undefined)?.role === 'assistant';
    default:
      return false;
  }
}
