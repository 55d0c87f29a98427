import { InvalidInputError } from '../core/index.js';
import { claudeCode } from './claude-code.js';
import { codex } from './codex.js';
import type { Engine } from './engine.js';
import { gemini } from './gemini.js';
import { pi } from './pi.js';
import { shell } from './shell.js';

/**
 * The engines a job can name, by name: Claude Code, Codex, Gemini CLI and Pi, each observed
 * against its real CLI (`docs/engines-pi.md` for Pi), and the shell.
 */
export const ENGINES = {
  'claude-code': claudeCode,
  codex,
  gemini,
  pi,
  shell,
} as const satisfies Record<string, Engine>;

export type EngineName = keyof typeof ENGINES;

/** Names of the known engines, sorted. */
export const ENGINE_NAMES = (Object.keys(ENGINES) as EngineName[]).sort();

/**
 * The engine called `name`.
 *
 * @throws InvalidInputError naming the unknown engine and listing the known ones.
 * @example
 * engineFor('gemini').command({ prompt: 'fix the build', yolo: true });
 */
export function engineFor(name: string): Engine {
  if (Object.hasOwn(ENGINES, name)) return ENGINES[name as EngineName];
  const known = ENGINE_NAMES.join(', ');
  throw new InvalidInputError('engine', [
    { path: '', message: `no engine is named ${JSON.stringify(name)}; known engines: ${known}` },
  ]);
}
