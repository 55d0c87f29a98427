import type { Engine } from './engine.js';
import { codexCommand } from './codex/command.js';
import { createCodexParser } from './codex/parser.js';

export { codexCommand, codexProviderArgs, type CodexProvider } from './codex/command.js';
export {
  codexUsage,
  createCodexParser,
  type CodexParserOptions,
  type CodexUsage,
} from './codex/parser.js';

/**
 * OpenAI's Codex CLI (`@openai/codex`, observed at 0.169.0), run headless as `codex exec --json`.
 * See `codex/command.ts` for the command line and `codex/parser.ts` for how its JSON lines map to
 * Fleet events, including how cumulative thread usage is reported after a resume.
 */
export const codex: Engine = {
  name: 'codex',
  binary: 'codex',
  versionArgs: ['--version'],
  command: codexCommand,
  // Codex never prints its model: the parser takes it from the run's input to price tokens.
  parser: (input) => createCodexParser(input?.model === undefined ? {} : { model: input.model }),
};
