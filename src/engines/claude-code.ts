import { claudeCodeCommand } from './claude-code/command.js';
import { createClaudeCodeParser } from './claude-code/parser.js';
import type { Engine } from './engine.js';

export { claudeCodeCommand } from './claude-code/command.js';
export { createClaudeCodeParser } from './claude-code/parser.js';
export { claudeUsage } from './claude-code/usage.js';

/**
 * Anthropic's Claude Code (`@anthropic-ai/claude-code`, observed at 2.1.197), run headless as
 * `claude -p --output-format stream-json --verbose`. See `claude-code/command.ts` for the command
 * line (permissions, resume) and `claude-code/parser.ts` for how its lines map to Fleet events and
 * `claude-code/usage.ts` for how tokens, turns and cost are counted.
 *
 * @example
 * claudeCode.command({ prompt: 'fix the build', model: 'sonnet', yolo: true });
 * // claude -p --output-format stream-json --verbose --model sonnet
 * //   --dangerously-skip-permissions -- 'fix the build'   (env IS_SANDBOX=1, …)
 */
export const claudeCode: Engine = {
  name: 'claude-code',
  binary: 'claude',
  versionArgs: ['--version'],
  command: claudeCodeCommand,
  parser: createClaudeCodeParser,
};
