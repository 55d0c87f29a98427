import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/core/index.js';
import { ENGINES, ENGINE_NAMES, engineFor } from '../../src/engines/registry.js';

describe('engine registry', () => {
  it('knows claude-code, codex, gemini, pi and shell, each under its own name', () => {
    expect(ENGINE_NAMES).toEqual(['claude-code', 'codex', 'gemini', 'pi', 'shell']);
    for (const name of ENGINE_NAMES) {
      expect(engineFor(name)).toBe(ENGINES[name]);
      expect(engineFor(name).name).toBe(name);
    }
  });

  it('names an unknown engine and lists the known ones', () => {
    expect(() => engineFor('gpt-engineer')).toThrow(InvalidInputError);
    expect(() => engineFor('gpt-engineer')).toThrow(
      'invalid engine: no engine is named "gpt-engineer"; known engines: claude-code, codex, gemini, pi, shell',
    );
  });

  it('has pi, run headless in JSON mode', () => {
    expect(engineFor('pi').command({ prompt: 'fix the build', yolo: true }).args).toEqual([
      '--mode',
      'json',
      'fix the build',
    ]);
  });

  it('does not mistake object properties or other spellings for engines', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'Gemini', 'claude', 'Pi', ''])
      expect(() => engineFor(name)).toThrow(InvalidInputError);
  });
});
