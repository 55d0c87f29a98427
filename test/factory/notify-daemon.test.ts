import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { JobEvent } from '../../src/core/index.js';
import { startFactory } from '../../src/factory/daemon.js';
import { IpcClient, startIpcServer } from '../../src/factory/ipc/index.js';
import { git } from '../../src/factory/git.js';
import { factoryTestbed } from './fixtures.js';

async function until(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A stand-in `claude` for the claude-code engine: speaks its stream-json (init with a session
 * id, then result). A first turn writes `bad` to status.txt and waits for `$FAKE_GO`; a
 * `--resume SESSION` turn records its prompt (the argument after `--`) in `$FAKE_PROMPT` and
 * writes `ok`.
 */
const FAKE_CLAUDE = `#!/usr/bin/env bash
resume=""; prompt=""
while [ $# -gt 0 ]; do
  case "$1" in
    --resume) resume="$2"; shift 2 ;;
    --) prompt="$2"; shift 2 ;;
    *) shift ;;
  esac
done
sid="\${resume:-sess-1}"
echo '{"type":"system","subtype":"init","session_id":"'"$sid"'","model":"claude-test","tools":[]}'
if [ -z "$resume" ]; then
  echo bad > status.txt
  while [ ! -f "$FAKE_GO" ]; do sleep 0.02; done
else
  printf '%s' "$prompt" > "$FAKE_PROMPT"
  echo ok > status.txt
fi
echo '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"done","session_id":"'"$sid"'","total_cost_usd":0.01,"usage":{"input_tokens":10,"output_tokens":2}}'
`;

async function setup() {
  const { server, token, operator, workDir, repo } = await factoryTestbed();
  const bin = path.join(workDir, 'bin');
  await mkdir(bin);
  await writeFile(path.join(bin, 'claude'), FAKE_CLAUDE);
  await chmod(path.join(bin, 'claude'), 0o755);

  const factory = await startFactory({
    server: server.baseUrl,
    token,
    name: 'notify-factory',
    seats: 2,
    capabilities: [],
    workDir,
    logger: pino({ level: 'silent' }),
    pollMs: 200,
    graceMs: 500,
  });
  onTestFinished(() => factory.stop());
  const ipc = await startIpcServer({ path: path.join(workDir, 'f.sock'), control: factory });
  onTestFinished(() => ipc.close());
  const client = new IpcClient(ipc.path);
  onTestFinished(() => client.close());

  const go = path.join(workDir, 'go');
  const promptFile = path.join(workDir, 'prompt.txt');
  const submit = async (spec: Record<string, unknown>): Promise<string> => {
    const { jobs } = await operator.submitJobs([spec as never]);
    return jobs[0]!.job.id;
  };
  /** A claude-code job (the stand-in above) verifying that status.txt says ok. */
  const submitAgent = (key: string) =>
    submit({
      key,
      bodyMd: 'do the work',
      engine: 'claude-code',
      verify: ['grep -qx ok status.txt'],
      manifest: {
        cwd: repo,
        fixAttempts: 0,
        env: {
          PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
          FAKE_GO: go,
          FAKE_PROMPT: promptFile,
        },
      },
    });
  const job = async (id: string) => (await server.store.getJob('acme', id))!;
  const events = (id: string): Promise<JobEvent[]> =>
    server.store.readEvents('acme', id, { limit: 10_000 });
  const hasSession = (id: string) =>
    factory.snapshot().runs.some((r) => r.jobId === id && r.state === 'thinking');
  return {
    server,
    factory,
    client,
    repo,
    go,
    promptFile,
    submit,
    submitAgent,
    job,
    events,
    hasSession,
  };
}

const signals = (events: JobEvent[]) =>
  events.filter((e) => e.type === 'signal').map((e) => e.data as Record<string, unknown>);

describe('notify and resume through the IPC socket of a running factory', () => {
  it('queues a message for a running agent, hands it to the resumed session, then verifies', async () => {
    const f = await setup();
    const id = await f.submitAgent('ipc-n1');
    await until(() => f.hasSession(id));

    expect(await f.client.notify(id, 'also update the changelog')).toEqual({
      delivered: false,
      queued: true,
      position: 1,
    });
    await writeFile(f.go, '');
    await until(async () => (await f.job(id)).stage === 'succeeded');

    expect(await readFile(f.promptFile, 'utf8')).toBe('also update the changelog');
    const events = await f.events(id);
    expect(signals(events)).toEqual([
      { status: 'pending', message: 'also update the changelog', position: 1 },
      { status: 'delivered', message: 'also update the changelog', sessionId: 'sess-1' },
      { status: 'drained', message: 'also update the changelog', sessionId: 'sess-1' },
    ]);
    const types = events.map((e) => e.type);
    const delivered = events.findIndex((e) => e.data.status === 'delivered');
    // Handed over after the first turn, before verify.
    expect(types.indexOf('agent_exit')).toBeLessThan(delivered);
    expect(delivered).toBeLessThan(types.indexOf('verify_started'));
    expect(await git(f.repo, ['show', 'fleet/ipc-n1:status.txt'])).toBe('ok\n');

    // The run is gone: a precise error, and the connection stays usable.
    await expect(f.client.notify(id, 'late')).rejects.toMatchObject({
      name: 'IpcError',
      code: 'not_found',
      message: `no run of job ${id} on this factory: it has finished or runs elsewhere (the IPC \`snapshot\` lists the runs here)`,
    });
    expect((await f.client.status()).name).toBe('notify-factory');
  });

  it('refuses a message for a shell job precisely, and keeps the connection', async () => {
    const f = await setup();
    const id = await f.submit({ bodyMd: 'sleep 30', engine: 'shell', manifest: { cwd: f.repo } });
    await until(() => f.factory.snapshot().runs.some((r) => r.jobId === id));
    await expect(f.client.notify(id, 'hello')).rejects.toMatchObject({
      code: 'conflict',
      message: 'engine shell cannot take messages: it has no session to resume',
    });
    await expect(f.client.resume(id, 'hello')).rejects.toMatchObject({
      code: 'conflict',
      message: 'engine shell cannot take messages: it has no session to resume',
    });
    expect((await f.client.snapshot()).runs.map((r) => r.jobId)).toEqual([id]);
  });

  it('resume stops the running agent and resumes its session with the message now', async () => {
    const f = await setup();
    const id = await f.submitAgent('ipc-r1');
    await until(() => f.hasSession(id));
    // The first turn is never released: only the resume ends it.
    expect(await f.client.resume(id, 'finish now')).toEqual({ resumed: true });
    await until(async () => (await f.job(id)).stage === 'succeeded');
    expect(await readFile(f.promptFile, 'utf8')).toBe('finish now');
    const exits = (await f.events(id))
      .filter((e) => e.type === 'agent_exit')
      .map((e) => e.data.reason);
    expect(exits).toEqual(['aborted', 'exited']);
  });
});
