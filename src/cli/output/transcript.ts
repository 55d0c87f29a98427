import type { JobEvent } from '../../core/index.js';
import { type Palette, paintStage } from './colour.js';
import { humanDuration, truncate } from './format.js';

/** How much of a tool's output, a verify command's output or a setup's output is shown. */
const RESULT_LINES = 4;
const TAIL_LINES = 12;
const LINE_CHARS = 200;

type Data = Record<string, unknown>;

/**
 * A job's event as transcript lines for people (each ending in a newline), or '' for events
 * that say nothing a reader needs (`usage`). Understands every event the engines, the runner
 * and the store write: assistant text, thinking (dim), tool calls (`▸ Bash: npm test`), the
 * first lines of tool results, setup and verify output, stage changes, errors. An event of a
 * type it does not know is shown as its type and compact data, never dropped.
 */
export function renderEvent(event: Pick<JobEvent, 'type' | 'data' | 'at'>, p: Palette): string {
  const d = event.data;
  const render = RENDERERS[event.type];
  const lines = render === undefined ? [p.dim(`${event.type} ${compact(d)}`)] : render(d, p, event);
  return lines.map((l) => `${l}\n`).join('');
}

type Renderer = (d: Data, p: Palette, event: Pick<JobEvent, 'at'>) => string[];

const RENDERERS: Record<string, Renderer> = {
  stage: (d, p, event) => {
    const reason = str(d.reason);
    const by = str(d.factoryId);
    const tail = [reason, by === undefined ? undefined : `factory ${by}`].filter(Boolean);
    const detail = tail.length === 0 ? '' : ` ${p.dim(`(${tail.join(', ')})`)}`;
    return [`${p.dim('──')} ${paintStage(p, str(d.to) ?? '?')}${detail} ${p.dim(clock(event.at))}`];
  },
  session: (d, p) => {
    const model = str(d.model);
    return [p.dim(`session ${str(d.sessionId) ?? '?'}${model === undefined ? '' : ` · ${model}`}`)];
  },
  message: (d, p) => {
    const text = str(d.text) ?? '';
    return d.role === 'user' ? lines(text).map((l) => p.dim(`› ${l}`)) : lines(text);
  },
  thinking: (d, p) => lines(str(d.text) ?? '').map((l) => p.dim(`  ${l}`)),
  tool_call: (d, p) => {
    const name = str(d.name) ?? 'tool';
    const summary = toolSummary(d.input);
    return [`${p.cyan('▸')} ${p.bold(name)}${summary === '' ? '' : `: ${summary}`}`];
  },
  tool_result: (d, p) => {
    const shown = head(str(d.output) ?? '', RESULT_LINES);
    const paint = d.isError === true ? p.red : p.dim;
    if (shown.length === 0) return d.isError === true ? [paint('  │ (failed, no output)')] : [];
    return shown.map((l) => paint(`  │ ${l}`));
  },
  usage: () => [],
  retry: (d, p) => {
    const status = typeof d.status === 'number' ? `, HTTP ${d.status}` : '';
    const message = str(d.message);
    const what = `retrying the model API (attempt ${String(d.attempt ?? '?')}${status})`;
    return [p.yellow(message === undefined ? what : `${what}: ${message}`)];
  },
  error: (d, p) => [p.red(`error: ${str(d.message) ?? compact(d)}`)],
  result: (d, p) => {
    const subtype = str(d.subtype);
    if (d.ok === true)
      return [
        p.green(
          `✔ the agent finished${subtype === undefined || subtype === 'success' ? '' : ` (${subtype})`}`,
        ),
      ];
    const message = str(d.message);
    return [
      p.red(
        `✘ the agent failed${subtype === undefined ? '' : ` (${subtype})`}${message === undefined ? '' : `: ${truncate(oneLine(message), LINE_CHARS)}`}`,
      ),
    ];
  },
  log: (d, p) => [d.stream === 'stderr' ? p.dim(str(d.line) ?? '') : (str(d.line) ?? '')],
  raw: (d, p) => [p.dim(str(d.line) ?? '')],
  workspace: (d, p) =>
    d.inPlace === true
      ? [p.dim(`workspace ${str(d.path) ?? '?'} (${str(d.reason) ?? 'in place'})`)]
      : [p.dim(`workspace ${str(d.path) ?? '?'} on branch ${str(d.branch) ?? '?'}`)],
  setup: (d, p) => {
    const ok = d.ok === true;
    const took = typeof d.durationMs === 'number' ? `, ${humanDuration(d.durationMs)}` : '';
    const line = `${ok ? p.green('✔') : p.red('✘')} setup ${p.bold(str(d.command) ?? '?')} ${p.dim(`(exit ${exitText(d.exit)}${took})`)}`;
    return ok ? [line] : [line, ...tail(str(d.outputTail) ?? '', p)];
  },
  verify_started: (d, p) => {
    const commands = Array.isArray(d.commands) ? d.commands.length : 0;
    return [p.bold(`verify: ${commands} command${commands === 1 ? '' : 's'}`)];
  },
  verify: (d, p) => {
    const commands = Array.isArray(d.commands) ? (d.commands as Data[]) : [];
    const out = commands.flatMap((c) => {
      const ok = c.exit === 0;
      const took = typeof c.durationMs === 'number' ? `, ${humanDuration(c.durationMs)}` : '';
      const line = `${ok ? p.green('✔') : p.red('✘')} ${str(c.command) ?? '?'} ${p.dim(`(exit ${exitText(c.exit)}${took})`)}`;
      return ok ? [line] : [line, ...tail(str(c.outputTail) ?? '', p)];
    });
    return [...out, d.passed === true ? p.green('verify passed') : p.red('verify failed')];
  },
  merge: (d, p) => {
    const branch = str(d.branch) ?? '?';
    if (d.ok === true)
      return [
        `${p.green('✔')} merged ${branch} ${p.dim(`(${(str(d.commit) ?? '').slice(0, 10)})`)}`,
      ];
    const files = Array.isArray(d.conflicts) ? (d.conflicts as unknown[]).map(String) : [];
    return [
      `${p.red('✘')} merging ${branch} ${files.length > 0 ? `conflicts in ${files.join(', ')}` : 'failed'}`,
    ];
  },
  gate: (d, p) => {
    const decision = str(d.decision) ?? '?';
    const paint = decision === 'PASS' ? p.green : decision === 'FAIL' ? p.red : p.yellow;
    const checks = Array.isArray(d.checks) ? (d.checks as Data[]) : [];
    const marks = checks.map((c) => {
      const mark =
        c.passed === true ? p.green('✔') : c.required === false ? p.yellow('✘') : p.red('✘');
      return `${mark} ${str(c.name) ?? '?'}${c.required === false ? p.dim(' (optional)') : ''}`;
    });
    return [
      `${p.bold(`gate ${str(d.phase) ?? ''}:`)} ${paint(decision)}${marks.length > 0 ? ` — ${marks.join(', ')}` : ''}`,
    ];
  },
  fix_attempt: (d, p) => [
    p.yellow(
      `fix attempt ${String(d.attempt ?? '?')}: the agent is resumed with the failing output`,
    ),
  ],
  fix_skipped: (d, p) => [p.yellow(`no fix attempt: ${str(d.reason) ?? '?'}`)],
  agent_exit: (d, p) => {
    const signal = str(d.signal);
    const how = signal === undefined ? `exit ${exitText(d.code)}` : `signal ${signal}`;
    const reason = str(d.reason);
    const text = `the agent process ended (${how}${reason === undefined || reason === 'exited' ? '' : `, ${reason}`})`;
    return [d.code === 0 ? p.dim(text) : p.red(text)];
  },
  stalled: (d, p) => {
    const silent = typeof d.silentMs === 'number' ? humanDuration(d.silentMs) : '?';
    return [p.yellow(`stalled: no output for ${silent} — ${str(d.action) ?? '?'}`)];
  },
  signal: (d, p) => {
    const message = truncate(oneLine(str(d.message) ?? ''), 80);
    switch (d.status) {
      case 'pending':
        return [p.cyan(`✉ message queued (#${String(d.position ?? '?')}): ${message}`)];
      case 'delivered':
        return [p.cyan(`✉ message handed to the agent: ${message}`)];
      case 'drained':
        return [p.dim(`✉ the agent answered the message: ${message}`)];
      case 'expired':
        return [p.yellow(`✉ message expired (${str(d.reason) ?? '?'}): ${message}`)];
      default:
        return [p.dim(`signal ${compact(d)}`)];
    }
  },
  checkpoint: (d, p) => [
    p.dim(
      `checkpoint ${shortSha(str(d.wipCommit))} on ${str(d.wipBranch) ?? '?'} (a retry starts from it)`,
    ),
  ],
  commit: (d, p) => [p.green(`committed ${shortSha(str(d.commit))} on ${str(d.branch) ?? '?'}`)],
  worktree_kept: (d, p) => [p.dim(`worktree kept at ${str(d.path) ?? '?'}`)],
};

/**
 * The gist of a tool call's input in one line: the command, path, pattern or query it names,
 * else its compact JSON.
 */
export function toolSummary(input: unknown): string {
  if (typeof input === 'string') return truncate(oneLine(input), LINE_CHARS);
  if (typeof input !== 'object' || input === null) return '';
  const o = input as Data;
  for (const key of ['command', 'cmd', 'file_path', 'path', 'pattern', 'query', 'url', 'prompt']) {
    const v = o[key];
    if (typeof v === 'string' && v !== '') return truncate(oneLine(v), LINE_CHARS);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string'))
      return truncate(oneLine(v.join(' ')), LINE_CHARS);
  }
  if (Array.isArray(o.changes)) {
    const paths = (o.changes as Data[]).map((c) =>
      `${str(c.kind) ?? ''} ${str(c.path) ?? '?'}`.trim(),
    );
    return truncate(paths.join(', '), LINE_CHARS);
  }
  const json = compact(o);
  return json === '{}' ? '' : truncate(json, LINE_CHARS);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function exitText(v: unknown): string {
  return typeof v === 'number' ? String(v) : 'none';
}

function shortSha(sha: string | undefined): string {
  return sha === undefined ? '?' : sha.slice(0, 10);
}

function lines(text: string): string[] {
  const all = text.replace(/\s+$/, '').split('\n');
  return all.length === 1 && all[0] === '' ? [] : all;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ⏎ ').trim();
}

/** The first `n` lines, and how many more there were. */
function head(text: string, n: number): string[] {
  const all = lines(text);
  const shown = all.slice(0, n).map((l) => truncate(l, LINE_CHARS));
  return all.length > n
    ? [...shown, `… ${all.length - n} more line${all.length - n === 1 ? '' : 's'}`]
    : shown;
}

/** The last lines of an output tail, indented under the command. */
function tail(text: string, p: Palette): string[] {
  const all = lines(text);
  const shown = all.slice(-TAIL_LINES).map((l) => p.dim(`  │ ${truncate(l, LINE_CHARS)}`));
  return all.length > TAIL_LINES
    ? [p.dim(`  │ … ${all.length - TAIL_LINES} lines before`), ...shown]
    : shown;
}

function clock(at: number): string {
  return new Date(at).toTimeString().slice(0, 8);
}

function compact(value: unknown): string {
  return truncate(JSON.stringify(value) ?? '', LINE_CHARS);
}
