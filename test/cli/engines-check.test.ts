import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runFleet } from '../helpers/fleet-process.js';

function fakeBin(dir: string, name: string, script: string): void {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
}

it('fleet engines check reports found, version and what is wrong', async () => {
  const bin = mkdtempSync(join(tmpdir(), 'fleet-bin-'));
  fakeBin(bin, 'claude', 'echo "2.1.197 (Claude Code)"');
  fakeBin(bin, 'codex', 'echo "codex: broken install" >&2; exit 3');
  fakeBin(bin, 'bash', 'echo "GNU bash, version 5.2.15"');
  // pi prints its version on stderr.
  fakeBin(bin, 'pi', 'echo "0.73.1" >&2');
  // gemini is absent. The PATH holds only the fake binaries (and sh for their shebang).
  const env = { PATH: `${bin}:/bin` };
  const human = await runFleet(['engines', 'check'], env);
  expect(human.code).toBe(0);
  expect(human.stdout).toContain(`claude-code  ok  2.1.197 (Claude Code) (${join(bin, 'claude')})`);
  expect(human.stdout).toMatch(/codex\s+--\s+.*codex --version failed: codex: broken install/);
  expect(human.stdout).toMatch(/gemini\s+--\s+gemini is not on PATH/);
  expect(human.stdout).toContain(`pi           ok  0.73.1 (${join(bin, 'pi')})`);
  expect(human.stdout).toContain('shell        ok  GNU bash, version 5.2.15');
  const json = await runFleet(['engines', 'check', '--json'], env);
  const probes = JSON.parse(json.stdout) as { engine: string; problem: string | null }[];
  expect(probes.map((p) => [p.engine, p.problem === null])).toEqual([
    ['claude-code', true],
    ['codex', false],
    ['gemini', false],
    ['pi', true],
    ['shell', true],
  ]);
});
