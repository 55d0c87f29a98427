import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  GUARD_CONTROL_FD,
  guardCommand,
  parseGuardMessages,
  type GuardMessage,
} from '../../src/factory/agent-guard.js';
import { groupAlive } from '../../src/factory/process-group.js';
import { spawnProcess, type SpawnOptions } from '../../src/factory/spawn-agent.js';
import { cleanup, isGone, tempDir } from './fixtures.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SPAWN_AGENT = path.join(ROOT, 'src/factory/spawn-agent.ts');
const PATH = process.env.PATH ?? '/usr/bin:/bin';

const dirs: string[] = [];
const pgids: number[] = [];
afterEach(async () => {
  for (const pgid of pgids.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await cleanup(...dirs.splice(0));
});

function bash(script: string, extra: Partial<SpawnOptions> = {}): SpawnOptions {
  return { command: 'bash', args: ['-c', script], cwd: '/', env: { PATH }, ...extra };
}

/** Field 4 of /proc/<pid>/stat: the parent pid. */
async function parentOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The guard's watcher: the agent's first child (it forks it before it execs the agent). */
async function watcherOf(agent: number): Promise<number> {
  const kids = await readFile(`/proc/${agent}/task/${agent}/children`, 'utf8');
  return Number(kids.trim().split(' ')[0]);
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A "factory" in a process of its own: it runs `script` under spawnProcess and prints the
 * agent's output lines on its stdout. Resolves once `lines` lines have arrived.
 */
async function startFactory(
  script: string,
  lines: number,
): Promise<{ factory: ReturnType<typeof spawn>; lines: string[] }> {
  const dir = await tempDir();
  dirs.push(dir);
  const file = path.join(dir, 'factory.ts');
  await writeFile(
    file,
    `import { spawnProcess } from ${JSON.stringify(SPAWN_AGENT)};
void spawnProcess({
  command: 'bash',
  args: ['-c', ${JSON.stringify(script)}],
  cwd: '/',
  env: { PATH: ${JSON.stringify(PATH)} },
  graceMs: 1000,
  onStdoutLine: (line) => process.stdout.write(line + '\\n'),
});
`,
  );
  const factory = spawn(process.execPath, ['--import', 'tsx', file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const got: string[] = [];
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`factory printed only ${got.join('|')}`)),
      15000,
    );
    factory.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      got.push(...parts);
      if (got.length >= lines) {
        clearTimeout(timer);
        resolve();
      }
    });
    factory.on('exit', () => reject(new Error('the factory exited early')));
  });
  return { factory, lines: got };
}

describe('agent guard: the agent does not outlive the factory', () => {
  it('kill -9 of the factory stops the agent and its grandchildren', async () => {
    const { factory, lines } = await startFactory('echo "$$"; sleep 300 & echo "$!"; sleep 300', 2);
    const [agent, grandchild] = lines.map(Number) as [number, number];
    pgids.push(agent);
    expect(await groupAlive(agent)).toBe(true);
    // The guard exec'd the agent: the factory's own child; its watcher, the agent's.
    expect(await parentOf(agent)).toBe(factory.pid);
    const watcher = await watcherOf(agent);

    const exited = new Promise((r) => factory.on('exit', r));
    const killedAt = Date.now();
    factory.kill('SIGKILL');
    await exited;
    expect(await waitFor(async () => !(await groupAlive(agent)), 3000)).toBe(true);
    const stoppedMs = Date.now() - killedAt;
    expect(await isGone(grandchild)).toBe(true);
    expect(await waitFor(() => isGone(watcher), 3000)).toBe(true);
    console.info(`agent group gone ${stoppedMs} ms after kill -9 of the factory`);
  });

  it('a group that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const { factory, lines } = await startFactory(
      `trap '' TERM; echo "$$"; sleep 300 & echo "$!"; sleep 300`,
      2,
    );
    const [agent, grandchild] = lines.map(Number) as [number, number];
    pgids.push(agent);
    const exited = new Promise((r) => factory.on('exit', r));
    factory.kill('SIGKILL');
    await exited;
    // graceMs is 1000: still there shortly after, gone after the grace period.
    await new Promise((r) => setTimeout(r, 300));
    expect(await groupAlive(agent)).toBe(true);
    expect(await waitFor(async () => !(await groupAlive(agent)), 3000)).toBe(true);
    expect(await isGone(grandchild)).toBe(true);
  });
});

describe('agent guard: exit status and output pass through', () => {
  it('exit codes and signals are those of the agent', async () => {
    expect((await spawnProcess(bash('exit 3'))).exit).toEqual({ code: 3, signal: null });
    expect((await spawnProcess(bash('kill -TERM $$'))).exit).toEqual({
      code: null,
      signal: 'SIGTERM',
    });
    expect((await spawnProcess(bash('kill -KILL $$'))).exit).toEqual({
      code: null,
      signal: 'SIGKILL',
    });
  });

  it('cancel: SIGTERM to the group, SIGKILL after the grace period; no watcher is left', async () => {
    const controller = new AbortController();
    let watcher = 0;
    const started = Date.now();
    const out = await spawnProcess(
      bash(`trap '' TERM; echo "$$"; sleep 300`, {
        graceMs: 500,
        signal: controller.signal,
        onStdoutLine: (line) =>
          void watcherOf(Number(line)).then((pid) => {
            watcher = pid;
            controller.abort();
          }),
      }),
    );
    expect(out).toMatchObject({ reason: 'aborted', exit: { code: null, signal: 'SIGKILL' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(watcher).toBeGreaterThan(0);
    expect(await waitFor(() => isGone(watcher), 2000)).toBe(true);
    expect(await groupAlive(out.pid!)).toBe(false);
  });

  it('lines, stdin and file descriptors are as without the guard', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const chunks: Buffer[] = [];
    await spawnProcess(
      bash('echo a; echo b >&2; printf "c\\r\\nd"', {
        onStdoutLine: (l) => out.push(l),
        onStderrLine: (l) => err.push(l),
        onOutput: (c) => chunks.push(c),
      }),
    );
    expect(out).toEqual(['a', 'c', 'd']);
    expect(err).toEqual(['b']);
    // Both streams, byte for byte (their interleaving is up to the scheduler, as before).
    const raw = Buffer.concat(chunks).toString();
    expect(raw.replace('b\n', '')).toBe('a\nc\r\nd');
    expect(raw.length).toBe('a\nc\r\nd'.length + 'b\n'.length);

    // The agent has the descriptors a direct child of this process has, none of the guard's.
    const fds = 'cd /proc/$$/fd && echo *';
    const guarded: string[] = [];
    await spawnProcess(bash(fds, { onStdoutLine: (l) => guarded.push(l) }));
    const direct = await new Promise<string>((resolve) => {
      let text = '';
      const child = spawn('bash', ['-c', fds], { stdio: ['ignore', 'pipe', 'ignore'] });
      child.stdout.on('data', (c: Buffer) => (text += c.toString()));
      child.on('close', () => resolve(text.trim()));
    });
    expect(guarded).toEqual([direct]);
    expect(direct.split(' ')).toEqual(expect.arrayContaining(['0', '1', '2']));
    expect(direct.split(' ')).not.toContain('4');
    expect(direct.split(' ')).not.toContain('5');

    // stdin 'ignore': end of file at once (status 1); 'pipe': open, nothing arrives (timeout).
    const status = async (stdin: 'ignore' | 'pipe'): Promise<number> => {
      const lines: string[] = [];
      await spawnProcess(
        bash('read -t 0.3 x; echo $?', { stdin, onStdoutLine: (l) => lines.push(l) }),
      );
      return Number(lines[0]);
    };
    expect(await status('ignore')).toBe(1);
    expect(await status('pipe')).toBeGreaterThan(128);
  });

  it('a missing cwd is a spawn error of the agent, as before', async () => {
    const res = await spawnProcess(bash('true', { cwd: '/no/such/dir/fleet' }));
    expect(res.pid).toBeNull();
    expect(res.spawnError).toMatchObject({ code: 'ENOENT' });
  });

  it('the guard execs the agent, reports its watcher, and the watcher leaves once the factory lets go', async () => {
    const { command, args } = guardCommand('bash', ['-c', 'echo "$$"; exit 3'], '/', 1000);
    const guard = spawn(command, args, {
      env: { PATH },
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore', 'pipe'],
    });
    pgids.push(guard.pid!);
    const control = guard.stdio[GUARD_CONTROL_FD] as Socket;
    const messages: GuardMessage[] = [];
    let rest = '';
    control.on('data', (chunk: Buffer) => {
      rest = parseGuardMessages(rest + chunk.toString(), (m) => messages.push(m));
    });
    let printed = '';
    guard.stdout!.on('data', (c: Buffer) => (printed += c.toString()));
    // 'exit' can come before the pipes are read to the end: wait for stdout's end as well, and
    // for the watcher's message (its pipe stays open while the watcher lives).
    const stdoutEnded = new Promise((r) => guard.stdout!.on('end', r));
    const code = await new Promise<number | null>((r) => guard.on('exit', (c) => r(c)));
    await stdoutEnded;
    await waitFor(async () => messages.length > 0, 2000);
    expect(code).toBe(3);
    expect(Number(printed.trim())).toBe(guard.pid);
    expect(messages).toEqual([{ type: 'watching', pid: expect.any(Number) as number }]);
    const { pid: watcher } = messages[0] as { pid: number };
    expect(await isGone(watcher)).toBe(false);
    control.end();
    expect(await waitFor(() => isGone(watcher), 2000)).toBe(true);
  });

  it('start latency: the overhead of the guard', async () => {
    const runs = 10;
    const direct = async (): Promise<void> =>
      new Promise((r) => spawn('true', { stdio: 'ignore' }).on('close', () => r()));
    let t = performance.now();
    for (let i = 0; i < runs; i++) await direct();
    const directMs = (performance.now() - t) / runs;
    t = performance.now();
    for (let i = 0; i < runs; i++) await spawnProcess(bash('true'));
    const guardedMs = (performance.now() - t) / runs;
    console.info(
      `spawn+exit of 'true': ${directMs.toFixed(1)} ms direct, ` +
        `${guardedMs.toFixed(1)} ms through spawnProcess and the guard`,
    );
    expect(guardedMs).toBeLessThan(1000);
  });
});
