import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { groupAlive } from '../../src/factory/process-group.js';

describe('groupAlive', () => {
  it('is true while a group has a live member and false once it is gone', async () => {
    const child = spawn('bash', ['-c', 'sleep 30'], { detached: true, stdio: 'ignore' });
    const pid = child.pid!;
    const exited = new Promise((r) => child.on('exit', r));
    expect(await groupAlive(pid)).toBe(true);
    process.kill(-pid, 'SIGKILL');
    await exited;
    expect(await groupAlive(pid)).toBe(false);
  });

  it('is false for a group that never existed', async () => {
    expect(await groupAlive(2 ** 22 + 12345)).toBe(false);
  });
});
