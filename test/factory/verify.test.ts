import { afterEach, describe, expect, it } from 'vitest';
import { runVerify, TailBuffer, VERIFY_TAIL_BYTES } from '../../src/factory/verify.js';
import { cleanup, tempDir } from './fixtures.js';

const dirs: string[] = [];
afterEach(async () => {
  await cleanup(...dirs.splice(0));
});

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

describe('runVerify', () => {
  it('runs each command with bash in cwd and passes when all exit 0', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const { result, stopped } = await runVerify(['pwd', 'echo out; echo err >&2', 'true'], {
      cwd: dir,
      env,
    });
    expect(stopped).toBeNull();
    expect(result.passed).toBe(true);
    expect(result.commands.map((c) => [c.command, c.exit])).toEqual([
      ['pwd', 0],
      ['echo out; echo err >&2', 0],
      ['true', 0],
    ]);
    expect(result.commands[0]?.outputTail).toBe(`${dir}\n`);
    expect(result.commands[1]?.outputTail).toContain('out\n');
    expect(result.commands[1]?.outputTail).toContain('err\n');
  });

  it('stops at the first failure and keeps only the last 4 KB of output', async () => {
    const { result } = await runVerify(
      ["for i in $(seq 1 2000); do echo line-$i; done; echo 'the real error' >&2; exit 5", 'true'],
      { cwd: process.cwd(), env },
    );
    expect(result.passed).toBe(false);
    expect(result.commands).toHaveLength(1);
    const [cmd] = result.commands;
    expect(cmd?.exit).toBe(5);
    expect(Buffer.byteLength(cmd!.outputTail)).toBeLessThanOrEqual(VERIFY_TAIL_BYTES);
    expect(Buffer.byteLength(cmd!.outputTail)).toBeGreaterThan(VERIFY_TAIL_BYTES - 20);
    expect(cmd?.outputTail).toContain('line-2000');
    expect(cmd?.outputTail).not.toContain('line-1\n');
    expect(cmd?.outputTail.trimEnd().endsWith('the real error')).toBe(true);
  });

  it('records durations; a deadline stops a command as timeout', async () => {
    const { result, stopped } = await runVerify(['sleep 0.2', 'sleep 30'], {
      cwd: process.cwd(),
      env,
      deadline: Date.now() + 500,
      graceMs: 500,
    });
    expect(stopped).toBe('timeout');
    expect(result.passed).toBe(false);
    expect(result.commands[0]?.durationMs).toBeGreaterThanOrEqual(180);
    expect(result.commands[1]?.exit).toBeNull();
  });

  it('an abort stops the running command', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const { stopped } = await runVerify(['sleep 30'], {
      cwd: process.cwd(),
      env,
      signal: controller.signal,
    });
    expect(stopped).toBe('aborted');
  });

  it('no commands: passed, nothing run', async () => {
    expect(await runVerify([], { cwd: process.cwd(), env })).toEqual({
      result: { passed: true, commands: [] },
      stopped: null,
    });
  });
});

describe('TailBuffer', () => {
  it('keeps the last bytes and drops a character cut at the start', () => {
    const tail = new TailBuffer(5);
    tail.push(Buffer.from('abc'));
    tail.push(Buffer.from('dé'));
    expect(tail.text()).toBe('bcdé');
    const cut = new TailBuffer(4);
    cut.push(Buffer.from('é€'));
    // 2 + 3 bytes; the last 4 start inside 'é'.
    expect(cut.text()).toBe('€');
    const small = new TailBuffer(10);
    small.push(Buffer.from('hi'));
    expect(small.text()).toBe('hi');
  });
});
