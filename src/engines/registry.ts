import { InvalidInputError } from '../core/index.js';
import { claudeCode } from './claude-code.js';
import { codex } from './codex.js';
import type { Engine } from './engine.js';
import { gemini } from './gemini.js';
import { shell } from './shell.js';

/**
 * The engines a job can name, by name. Pi (`@mariozechner/pi-coding-agent`) is left out: its
 * output has not been observed on this machine yet, and an adapter written blind would misreport
 * runs. `engineFor('pi')` says so.
 */
export const ENGINES = {
  'claude-code': claudeCode,
  codex,
  gemini,
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
  const why =
    name === 'pi'
      ? 'engine "pi" is not supported yet (its output has not been observed)'
      : `no engine is named ${JSON.stringify(name)}`;
  throw new InvalidInputError('engine', [{ path: '', message: `${why}; known engines: ${known}` }]);
}
