import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/core/index.js';
import { ENGINES, ENGINE_NAMES, engineFor } from '../../src/engines/registry.js';

describe('engine registry', () => {
  it('knows claude-code, codex, gemini and shell, each under its own name', () => {
    expect(ENGINE_NAMES).toEqual(['claude-code', 'codex', 'gemini', 'shell']);
    for (const name of ENGINE_NAMES) {
      expect(engineFor(name)).toBe(ENGINES[name]);
      expect(engineFor(name).name).toBe(name);
    }
  });

  it('names an unknown engine and lists the known ones', () => {
    expect(() => engineFor('gpt-engineer')).toThrow(InvalidInputError);
    expect(() => engineFor('gpt-engineer')).toThrow(
      'invalid engine: no engine is named "gpt-engineer"; known engines: claude-code, codex, gemini, shell',
    );
  });

  it('says pi is not supported yet', () => {
    expect(() => engineFor('pi')).toThrow(
      'invalid engine: engine "pi" is not supported yet (its output has not been observed); ' +
        'known engines: claude-code, codex, gemini, shell',
    );
  });

  it('does not mistake object properties or other spellings for engines', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'Gemini', 'claude', ''])
      expect(() => engineFor(name)).toThrow(InvalidInputError);
  });
});
