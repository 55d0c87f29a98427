import type { VerifyResult } from '../core/index.js';
import { spawnProcess } from './spawn-agent.js';

/** How much of each verify command's output is kept (its end: where errors are). */
export const VERIFY_TAIL_BYTES = 4096;

export interface VerifyOptions {
  cwd: string;
  env: Record<string, string>;
  /** The time left for the whole run; null: none. */
  deadline?: number | null;
  graceMs?: number;
  signal?: AbortSignal;
}

export interface VerifyOutcome {
  result: VerifyResult;
  /** Set when a command was stopped rather than failing on its own. */
  stopped: 'timeout' | 'aborted' | null;
}

/**
 * Runs the verify commands in order, each as `bash -c -- <command>` in `cwd`, in its own
 * process group, and stops at the first one that fails (like `a && b`): later commands would
 * run against a state already known to be bad, and the first failure is what the agent must
 * fix. Each result keeps the exit code (null when killed), the last VERIFY_TAIL_BYTES of
 * stdout and stderr interleaved, and the duration. No commands: passed, nothing run.
 *
 * @example
 * const { result } = await runVerify(['npm test'], { cwd: worktree, env });
 * // result.passed, result.commands[0].outputTail
 */
export async function runVerify(
  commands: string[],
  options: VerifyOptions,
): Promise<VerifyOutcome> {
  const results: VerifyResult['commands'] = [];
  for (const command of commands) {
    const tail = new TailBuffer(VERIFY_TAIL_BYTES);
    const timeoutMs = options.deadline == null ? null : Math.max(1, options.deadline - Date.now());
    const out = await spawnProcess({
      command: 'bash',
      args: ['-c', '--', command],
      cwd: options.cwd,
      env: options.env,
      timeoutMs,
      graceMs: options.graceMs,
      signal: options.signal,
      onOutput: (chunk) => tail.push(chunk),
    });
    const spawnNote = out.spawnError ? `\n[fleet] could not start: ${out.spawnError.message}` : '';
    results.push({
      command,
      exit: out.exit.code,
      outputTail: tail.text() + spawnNote,
      durationMs: out.durationMs,
    });
    if (out.reason !== 'exited')
      return { result: { passed: false, commands: results }, stopped: out.reason };
    if (out.exit.code !== 0) return { result: { passed: false, commands: results }, stopped: null };
  }
  return { result: { passed: true, commands: results }, stopped: null };
}

/** Keeps the last `max` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - (this.chunks[0]?.length ?? 0) >= this.max) {
      this.size -= this.chunks.shift()?.length ?? 0;
    }
  }

  /** The kept bytes as UTF-8, without a character cut in half at the start. */
  text(): string {
    let buf = Buffer.concat(this.chunks);
    if (buf.length > this.max) {
      buf = buf.subarray(buf.length - this.max);
      // Skip UTF-8 continuation bytes left over from a character cut at the start.
      let i = 0;
      while (i < buf.length && i < 4 && ((buf[i] ?? 0) & 0xc0) === 0x80) i++;
      buf = buf.subarray(i);
    }
    return buf.toString('utf8');
  }
}
