import { spawn } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DaemonControl, FactorySnapshot } from '../../src/factory/daemon-control.js';
import {
  FactoryNotRunningError,
  IpcClient,
  IpcError,
  startIpcServer,
  type IpcServer,
} from '../../src/factory/ipc/index.js';
import { cleanup, tempDir } from './fixtures.js';

const SNAPSHOT: FactorySnapshot = {
  schema: 'fleet.snapshot.v1',
  factory: {
    id: 'f_1',
    name: 'main',
    server: 'http://127.0.0.1:7700',
    connection: 'connected',
    draining: false,
    seats: { total: 2, busy: 1 },
  },
  runs: [
    {
      jobId: 'j_1',
      epoch: 3,
      key: null,
      engine: 'claude',
      state: 'thinking',
      startedAt: 1_700_000_000_000,
      lastEvent: { type: 'tool_use', at: 1_700_000_001_000 },
      insights: { model: 'sonnet', tokensIn: 10, turns: 2 },
    },
  ],
};

function fakeControl(): DaemonControl & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    status: () => ({
      name: 'main',
      connection: 'connected',
      seats: { total: 2, busy: 1 },
      draining: false,
    }),
    snapshot: () => SNAPSHOT,
    notify: async (jobId, message) => {
      calls.push(['notify', jobId, message]);
      return jobId === 'j_1' ? { delivered: true } : { delivered: false, reason: 'no such run' };
    },
    resume: async (jobId) => {
      calls.push(['resume', jobId]);
      return { resumed: true };
    },
    drain: async () => {
      calls.push(['drain']);
    },
    shutdown: async (deadlineMs) => {
      calls.push(['shutdown', deadlineMs]);
    },
  };
}

/** A raw connection reading response lines. */
async function rawConnect(socketPath: string) {
  const socket: Socket = createConnection(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (text: string) => {
    buf += text;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    waiters.splice(0).forEach((w) => w());
  });
  let read = 0;
  return {
    socket,
    write: (text: string) => socket.write(text),
    /** The next `n` responses, parsed. */
    async next(n = 1): Promise<Array<Record<string, unknown>>> {
      while (lines.length - read < n) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`timed out; got ${lines.length}`)), 5000);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      const out = lines.slice(read, read + n).map((l) => JSON.parse(l) as Record<string, unknown>);
      read += n;
      return out;
    },
    close: () => socket.destroy(),
  };
}

describe('local IPC', () => {
  let dir: string;
  let sockPath: string;
  let control: ReturnType<typeof fakeControl>;
  let server: IpcServer | undefined;
  let client: IpcClient | undefined;

  beforeEach(async () => {
    dir = await tempDir('fleet-ipc-');
    sockPath = path.join(dir, 'factory-main.sock');
    control = fakeControl();
  });

  afterEach(async () => {
    client?.close();
    client = undefined;
    await server?.close();
    server = undefined;
    await cleanup(dir);
  });

  it('round-trips every op through the typed client', async () => {
    server = await startIpcServer({ path: sockPath, control });
    client = new IpcClient(sockPath);
    expect(await client.status()).toEqual({
      name: 'main',
      connection: 'connected',
      seats: { total: 2, busy: 1 },
      draining: false,
    });
    expect(await client.snapshot()).toEqual(SNAPSHOT);
    expect(await client.notify('j_1', 'hello')).toEqual({ delivered: true });
    expect(await client.notify('j_9', 'hello')).toEqual({
      delivered: false,
      reason: 'no such run',
    });
    expect(await client.resume('j_1')).toEqual({ resumed: true });
    expect(await client.drain()).toEqual({ draining: true });
    expect(await client.shutdown(5000)).toEqual({ shuttingDown: true, deadlineMs: 5000 });
    expect(control.calls).toEqual([
      ['notify', 'j_1', 'hello'],
      ['notify', 'j_9', 'hello'],
      ['resume', 'j_1'],
      ['drain'],
      ['shutdown', 5000],
    ]);
  });

  it('defaults the shutdown deadline to 30s', async () => {
    server = await startIpcServer({ path: sockPath, control });
    const conn = await rawConnect(sockPath);
    conn.write('{"id":"s","op":"shutdown"}\n');
    expect(await conn.next()).toEqual([
      { id: 's', ok: true, result: { shuttingDown: true, deadlineMs: 30_000 } },
    ]);
    expect(control.calls).toEqual([['shutdown', 30_000]]);
    conn.close();
  });

  it('creates the socket with mode 0600', async () => {
    server = await startIpcServer({ path: sockPath, control });
    const stat = statSync(sockPath);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
  });

  it('answers bad JSON, unknown ops and bad arguments with error lines and keeps the connection', async () => {
    server = await startIpcServer({ path: sockPath, control });
    const conn = await rawConnect(sockPath);

    conn.write('this is not json\n');
    const [badJson] = await conn.next();
    expect(badJson).toMatchObject({ id: null, ok: false, error: { code: 'bad_json' } });

    conn.write('{"id":2,"op":"explode"}\n');
    const [unknownOp] = await conn.next();
    expect(unknownOp).toMatchObject({
      id: 2,
      ok: false,
      error: { code: 'bad_request', issues: [{ path: 'op' }] },
    });
    expect((unknownOp!.error as { message: string }).message).toContain('explode');

    conn.write('{"id":3,"op":"resume"}\n');
    const [missingJobId] = await conn.next();
    expect(missingJobId).toMatchObject({
      id: 3,
      ok: false,
      error: { code: 'bad_request', issues: [{ path: 'jobId' }] },
    });
    expect((missingJobId!.error as { message: string }).message).toContain('jobId');

    conn.write('{"id":4,"op":"notify","jobId":"j_1","message":7}\n');
    const [badMessage] = await conn.next();
    expect(badMessage).toMatchObject({ id: 4, error: { issues: [{ path: 'message' }] } });

    conn.write('[1,2]\n{"op":"status","jobid":"x"}\n');
    const [notObject, unknownKey] = await conn.next(2);
    expect(notObject).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(unknownKey).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect((unknownKey!.error as { message: string }).message).toContain('jobid');

    conn.write('{"id":5,"op":"status"}\n');
    const [ok] = await conn.next();
    expect(ok).toMatchObject({ id: 5, ok: true, result: { name: 'main' } });
    conn.close();
  });

  it('answers requests pipelined in one write in order', async () => {
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    control.resume = async (jobId) => {
      await slow; // the first request finishes last; its answer must still come first
      return { resumed: jobId === 'j_1' };
    };
    server = await startIpcServer({ path: sockPath, control });
    const conn = await rawConnect(sockPath);
    conn.write(
      [
        '{"id":1,"op":"resume","jobId":"j_1"}',
        '{"id":2,"op":"status"}',
        'garbage',
        '',
        '{"id":3,"op":"notify","jobId":"j_1","message":"m"}',
        '{"id":4,"op":"drain"}',
      ].join('\n') + '\n',
    );
    setTimeout(release, 50);
    const responses = await conn.next(5);
    expect(responses.map((r) => [r.id, r.ok])).toEqual([
      [1, true],
      [2, true],
      [null, false],
      [3, true],
      [4, true],
    ]);
    conn.close();
  });

  it('rejects a huge line without newline, then recovers', async () => {
    server = await startIpcServer({ path: sockPath, control, maxLineBytes: 64 * 1024 });
    const conn = await rawConnect(sockPath);
    const chunk = 'x'.repeat(16 * 1024);
    for (let i = 0; i < 10; i++) conn.write(chunk); // 160 KiB, no newline yet
    const [tooLong] = await conn.next();
    expect(tooLong).toMatchObject({ id: null, ok: false, error: { code: 'line_too_long' } });
    // The rest of that line is dropped up to its newline; then requests work again.
    conn.write(chunk + '\n{"id":7,"op":"status"}\n');
    const [ok] = await conn.next();
    expect(ok).toMatchObject({ id: 7, ok: true });
    conn.close();
  });

  it('rejects a line over the default 1 MiB limit', async () => {
    server = await startIpcServer({ path: sockPath, control });
    const conn = await rawConnect(sockPath);
    conn.write(
      `{"id":1,"op":"notify","jobId":"j_1","message":"${'y'.repeat(1024 * 1024 + 10)}"}\n`,
    );
    conn.write('{"id":2,"op":"status"}\n');
    const [tooLong, ok] = await conn.next(2);
    expect(tooLong).toMatchObject({ ok: false, error: { code: 'line_too_long' } });
    expect(ok).toMatchObject({ id: 2, ok: true });
    expect(control.calls).toEqual([]);
    conn.close();
  });

  it('maps errors thrown by control methods to error responses', async () => {
    control.notify = async () => {
      throw new Error('agent stdin closed');
    };
    control.resume = async () => {
      throw new IpcError('not_found', 'no run for job j_404');
    };
    control.status = () => {
      throw new Error('boom');
    };
    control.shutdown = async () => {
      throw new Error('already shutting down');
    };
    const warn = vi.fn();
    server = await startIpcServer({ path: sockPath, control, logger: { warn } });
    client = new IpcClient(sockPath);
    await expect(client.notify('j_1', 'hi')).rejects.toMatchObject({
      name: 'IpcError',
      code: 'internal',
      message: 'notify failed: agent stdin closed',
    });
    await expect(client.resume('j_404')).rejects.toMatchObject({
      code: 'not_found',
      message: 'no run for job j_404',
    });
    await expect(client.status()).rejects.toMatchObject({ code: 'internal' });
    await expect(client.shutdown(10)).rejects.toMatchObject({
      code: 'internal',
      message: 'shutdown failed: already shutting down',
    });
    // Still usable.
    expect(await client.snapshot()).toEqual(SNAPSHOT);
    expect(warn).toHaveBeenCalled();
  });

  it('replaces a stale socket file', async () => {
    // A socket file nothing listens on, left by a daemon that was SIGKILLed.
    const child = spawn(
      process.execPath,
      [
        '-e',
        "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))",
        sockPath,
      ],
      { stdio: 'ignore' },
    );
    await new Promise((r) => child.once('exit', r));
    expect(statSync(sockPath).isSocket()).toBe(true);
    server = await startIpcServer({ path: sockPath, control });
    expect(statSync(sockPath).mode & 0o777).toBe(0o600);
    client = new IpcClient(sockPath);
    expect((await client.status()).name).toBe('main');
  });

  it('refuses to start while another server answers on the path', async () => {
    server = await startIpcServer({ path: sockPath, control });
    await expect(startIpcServer({ path: sockPath, control: fakeControl() })).rejects.toThrow(
      /already running/,
    );
    // The first one is untouched.
    client = new IpcClient(sockPath);
    expect((await client.status()).name).toBe('main');
  });

  it('refuses to remove a path that is not a socket', async () => {
    writeFileSync(sockPath, 'precious');
    await expect(startIpcServer({ path: sockPath, control })).rejects.toThrow(/not a socket/);
    expect(existsSync(sockPath)).toBe(true);
  });

  it('tells the client no factory is running at a missing path', async () => {
    client = new IpcClient(path.join(dir, 'nope.sock'));
    const err: unknown = await client.status().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FactoryNotRunningError);
    expect((err as Error).message).toContain(
      `No factory is running at ${path.join(dir, 'nope.sock')}`,
    );
    expect((err as Error).message).toContain('fleet factory');
  });

  it('rejects a result that does not match the schema', async () => {
    control.snapshot = () =>
      ({ ...SNAPSHOT, schema: 'fleet.snapshot.v0' }) as unknown as FactorySnapshot;
    server = await startIpcServer({ path: sockPath, control });
    client = new IpcClient(sockPath);
    await expect(client.snapshot()).rejects.toMatchObject({ code: 'bad_response' });
  });

  it('close() removes the socket file and ends connections', async () => {
    server = await startIpcServer({ path: sockPath, control });
    const conn = await rawConnect(sockPath);
    const ended = new Promise<void>((r) => conn.socket.once('close', () => r()));
    await server.close();
    server = undefined;
    expect(existsSync(sockPath)).toBe(false);
    await ended;
    client = new IpcClient(sockPath);
    await expect(client.status()).rejects.toBeInstanceOf(FactoryNotRunningError);
  });

  it('close() lets a connected client go promptly', async () => {
    server = await startIpcServer({ path: sockPath, control });
    client = new IpcClient(sockPath);
    await client.status();
    const started = Date.now();
    await server.close();
    server = undefined;
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(client.status()).rejects.toBeInstanceOf(FactoryNotRunningError);
  });

  it('answers a last request without newline when the client ends its side', async () => {
    server = await startIpcServer({ path: sockPath, control });
    const conn = await rawConnect(sockPath);
    conn.socket.end('{"id":1,"op":"status"}');
    const [ok] = await conn.next();
    expect(ok).toMatchObject({ id: 1, ok: true });
  });
});
