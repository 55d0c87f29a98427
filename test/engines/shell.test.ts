import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shell, shellStderrEvent } from '../../src/engines/shell.js';

describe('shell command', () => {
  it('runs the body with bash -c --, stdin closed, and ignores agent options', () => {
    expect(
      shell.command({
        prompt: 'npm ci && npm test',
        model: 'gpt-5',
        yolo: true,
        resumeSessionId: 'x',
        maxTurns: 3,
      }),
    ).toEqual({
      command: 'bash',
      args: ['-c', '--', 'npm ci && npm test'],
      env: {},
      stdin: 'ignore',
    });
    expect(shell.name).toBe('shell');
    expect(shell.binary).toBe('bash');
    expect(shell.versionArgs).toEqual(['--version']);
  });

  it('keeps bash defaults: a failing line does not stop the script, the last status is the exit', () => {
    const body = 'false\necho after\nfalse | true\necho "$1-$0"\nexit 3';
    const { command, args } = shell.command({ prompt: body, yolo: false });
    const out = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out.stdout).toBe('after\n-bash\n');
    expect(out.status).toBe(3);
  });

  it.each(['--version; echo ran', '-e 2>/dev/null; echo ran', '- x 2>/dev/null\necho ran'])(
    'runs a body that starts with a dash (%j) as a script, not as bash options',
    (body) => {
      const { command, args } = shell.command({ prompt: body, yolo: false });
      const out = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out.stdout).toBe('ran\n');
      expect(out.stdout).not.toContain('GNU bash');
    },
  );
});

describe('shell parser', () => {
  it('turns every stdout line into a log line, acting, and keeps blank lines', () => {
    const parser = shell.parser();
    const lines = ['building…', '', '{"type":"init"}', '  indented'];
    for (const line of lines)
      expect(parser.parse(line)).toEqual({
        events: [{ type: 'log', data: { stream: 'stdout', line } }],
        state: 'acting',
      });
  });

  it('has no tokens, cost, session or verdict: the exit code decides', () => {
    const parser = shell.parser();
    parser.parse('done');
    expect(parser.summary()).toEqual({ insights: {}, sessionId: null, ok: null, error: null });
  });

  it('makes stderr lines log events of stream stderr', () => {
    expect(shellStderrEvent('rm: cannot remove x')).toEqual({
      type: 'log',
      data: { stream: 'stderr', line: 'rm: cannot remove x' },
    });
  });
});
