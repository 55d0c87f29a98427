import type { EventInput, Insights } from '../core/index.js';

/**
 * What an agent is doing, derived from its engine's output: `starting` (process up, nothing
 * heard yet) → `thinking` (the model is generating) ⇄ `acting` (a tool runs) ⇄ `waiting`
 * (needs input or permission, or is rate limited / retrying) → `exited`.
 */
export type AgentState = 'starting' | 'thinking' | 'acting' | 'waiting' | 'exited';

/** Fleet event types engines emit (the `type` of each EventInput). */
export const ENGINE_EVENT_TYPES = [
  'session', // {sessionId, model?, tools?} the CLI's session started
  'message', // {role: 'assistant' | 'user', text}
  'thinking', // {text}
  'tool_call', // {id, name, input}
  'tool_result', // {id, output?, isError}
  'usage', // {tokensIn, tokensOut, tokensCached} of one model request, when reported
  'retry', // {attempt, status?, message?} the CLI is retrying a failed API call
  'error', // {message}
  'result', // {ok, subtype?, message?} the CLI's own end-of-run summary
  'log', // {stream: 'stdout' | 'stderr', line} plain output (shell engine, stray lines)
  'raw', // {line} a line this adapter does not understand; kept, never dropped
] as const;
export type EngineEventType = (typeof ENGINE_EVENT_TYPES)[number];

/** What one run of an engine needs to build its command line. */
export interface EngineRunInput {
  /** The job body (instructions) or, for a follow-up, the next message. */
  prompt: string;
  model?: string;
  /** Let the agent run tools without asking (the job's `yolo`). */
  yolo: boolean;
  /** Continue an earlier session (fix loop, resume after a stall). */
  resumeSessionId?: string;
  maxTurns?: number;
}

/** A process to spawn. `env` is added to the factory's environment by the runner. */
export interface EngineCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Whether the process gets stdin (`ignore` closes it, as headless CLIs need). */
  stdin: 'ignore' | 'pipe';
}

/** What one output line meant. */
export interface ParsedLine {
  events: EventInput[];
  /** The agent's state after this line, when the line changes it. */
  state?: AgentState;
}

/** The run's totals as the engine's output told them, after the last line. */
export interface EngineSummary {
  insights: Insights;
  sessionId: string | null;
  /** The CLI's own verdict, when it printed one (`result` lines); null when it did not. */
  ok: boolean | null;
  /** Why the CLI says it failed, when it did. */
  error: string | null;
}

/**
 * Turns an engine's stdout lines into Fleet events, statefully (usage accumulates, tool calls
 * count). A line it cannot parse becomes a `raw` event; it never throws.
 */
export interface EngineParser {
  parse(line: string): ParsedLine;
  summary(): EngineSummary;
}

/** One agent CLI. */
export interface Engine {
  readonly name: 'claude-code' | 'codex' | 'gemini' | 'pi' | 'shell';
  /** The executable looked up on PATH. */
  readonly binary: string;
  /** Arguments that print the version (for `fleet engines check`). */
  readonly versionArgs: string[];
  command(input: EngineRunInput): EngineCommand;
  /**
   * A parser for one run's output. Pass the run's input: some CLIs (Codex) never print the
   * model, and the parser needs it to estimate cost.
   */
  parser(input?: Pick<EngineRunInput, 'model'>): EngineParser;
}
