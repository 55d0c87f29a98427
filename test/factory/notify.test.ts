import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventInput } from '../../src/core/index.js';
import {
  INBOX_MAX_MESSAGE_BYTES,
  INBOX_MAX_MESSAGES,
  IpcError,
  RunInbox,
} from '../../src/factory/ipc/index.js';
import { runJob, type RunJobInput } from '../../src/factory/run-job.js';
import { cleanup, fakeSessionEngine, makeRepo, show, tempDir } from './fixtures.js';

const dirs: string[] = [];
afterEach(async () => {
  await cleanup(...dirs.splice(0));
});

const VERIFY = [
  'grep -qx ok status.txt || { echo "status is $(cat status.txt), want ok"; exit 3; }',
];

/**
 * A run of the fake session engine whose first turn writes `bad` to status.txt and then waits
 * until `go` exists (so a test can act while the agent runs); a resumed turn records its prompt
 * in `promptFile` and writes `ok`. `onEvent` sees each event as it comes.
 */
async function sessionRun(
  key: string,
  job: Partial<RunJobInput['job']> = {},
  onEvent: (event: EventInput) => void = () => undefined,
) {
  const repo = await makeRepo();
  const workRoot = await tempDir('fleet-work-');
  dirs.push(repo, workRoot);
  const promptFile = path.join(workRoot, 'prompt.txt');
  const go = path.join(workRoot, 'go');
  const events: EventInput[] = [];
  const inbox = new RunInbox(`job j_${key}`, (e) => events.push(e));
  const firstRun = `echo bad > status.txt; while [ ! -f ${go} ]; do sleep 0.02; done`;
  const input: RunJobInput = {
    job: {
      id: `j_${key}`,
      key,
      bodyMd: 'do the work',
      verify: VERIFY,
      timeoutMs: 20_000,
      checkpoint: null,
      cwd: repo,
      fixAttempts: 0,
      ...job,
    },
    engine: fakeSessionEngine(promptFile, firstRun),
    workRoot,
    env: { FLEET_JOB_ID: `j_${key}` },
    graceMs: 1000,
    inbox,
    onEvent: (e) => {
      events.push(e);
      onEvent(e);
    },
  };
  const until = async (check: () => boolean) => {
    const end = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > end) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    repo,
    inbox,
    events,
    promptFile,
    input,
    /** The file whose existence ends the first turn. */
    go,
    /** Lets the first turn end. */
    release: () => writeFile(go, ''),
    /** Waits until the agent reported its session. */
    sessionStarted: () => until(() => events.some((e) => e.type === 'session')),
    prompt: () => readFile(promptFile, 'utf8'),
  };
}

/** The events as `type` or `type:status` (signals), in order, without raw lines. */
const timeline = (events: EventInput[]) =>
  events
    .filter((e) => !['raw', 'session', 'workspace', 'commit', 'log'].includes(e.type))
    .map((e) => (e.type === 'signal' ? `signal:${String(e.data?.status)}` : e.type));

describe('messages to a run (notify)', () => {
  it('hands a message sent during the run to the resumed agent when it exits, then verifies', async () => {
    const r = await sessionRun('n1');
    const running = runJob(r.input);
    await r.sessionStarted();
    expect(r.inbox.push('also update the changelog')).toBe(1);
    await r.release();
    const out = await running;

    expect(out.result).toBe('success');
    // The resumed agent got the message as its prompt, in its session, and then verify ran once.
    expect(await r.prompt()).toBe('also update the changelog');
    // Drained once the resumed agent answered (its first output after the hand-over).
    expect(timeline(r.events)).toEqual([
      'signal:pending',
      'agent_exit',
      'signal:delivered',
      'message',
      'signal:drained',
      'agent_exit',
      'verify_started',
      'verify',
    ]);
    expect(r.events.find((e) => e.data?.status === 'delivered')?.data).toEqual({
      status: 'delivered',
      message: 'also update the changelog',
      sessionId: 'fake-1',
    });
    expect(r.events.find((e) => e.data?.status === 'drained')?.data).toEqual({
      status: 'drained',
      message: 'also update the changelog',
      sessionId: 'fake-1',
    });
    expect(await show(r.repo, 'fleet/n1:status.txt')).toBe('ok\n');
  });

  it('joins several waiting messages into one prompt, oldest first', async () => {
    const r = await sessionRun('n2');
    const running = runJob(r.input);
    await r.sessionStarted();
    r.inbox.push('first');
    expect(r.inbox.push('second')).toBe(2);
    await r.release();
    expect((await running).result).toBe('success');
    const prompt = await r.prompt();
    expect(prompt).toMatch(/^2 messages arrived for you, oldest first:/);
    expect(prompt.indexOf('first')).toBeLessThan(prompt.indexOf('second'));
    expect(r.events.filter((e) => e.data?.status === 'delivered')).toHaveLength(2);
  });

  it('hands a message sent during verify over after it, with the failing output', async () => {
    let inbox: RunInbox | undefined;
    const r = await sessionRun('n3', { verify: ['sleep 0.3', ...VERIFY] }, (e) => {
      // Once, during the first verify.
      if (e.type === 'verify_started' && inbox !== undefined) {
        inbox.push('use "ok", not "bad"');
        inbox = undefined;
      }
    });
    inbox = r.inbox;
    await r.release();
    const out = await runJob(r.input);

    expect(out.result).toBe('success');
    const prompt = await r.prompt();
    expect(prompt).toContain('status is bad, want ok');
    expect(prompt).toMatch(/```\n\nuse "ok", not "bad"$/);
    expect(timeline(r.events)).toEqual([
      'agent_exit',
      'verify_started',
      'signal:pending',
      'verify',
      'signal:delivered',
      'message',
      'signal:drained',
      'agent_exit',
      'verify_started',
      'verify',
    ]);
  });

  it('expires the messages still waiting when the run ends, and takes no more', async () => {
    const r = await sessionRun('n4', { verify: [] });
    r.input.engine = fakeSessionEngine(r.promptFile, 'sleep 0.5; exit 1');
    const running = runJob(r.input);
    await r.sessionStarted();
    r.inbox.push('too late');
    const out = await running;
    expect(out.result).toBe('agent_failed');
    expect(existsSync(r.promptFile)).toBe(false);
    expect(r.events.filter((e) => e.type === 'signal').map((e) => e.data)).toEqual([
      { status: 'pending', message: 'too late', position: 1 },
      { status: 'expired', message: 'too late', reason: 'the run ended (agent_failed)' },
    ]);
    expect(() => r.inbox.push('again')).toThrow(
      'job j_n4 takes no more messages: the run ended (agent_failed)',
    );
  });

  it('a message handed to an agent that never answers it expires when the run ends', async () => {
    const r = await sessionRun('n5', { verify: [] });
    // The resumed turn reads the prompt and dies before the model says anything.
    r.input.engine = fakeSessionEngine(
      r.promptFile,
      `echo bad > status.txt; while [ ! -f ${r.go} ]; do sleep 0.02; done`,
      {},
      'exit 1',
    );
    const running = runJob(r.input);
    await r.sessionStarted();
    r.inbox.push('are you there?');
    await r.release();
    const out = await running;
    expect(out.result).toBe('agent_failed');
    expect(await r.prompt()).toBe('are you there?');
    expect(r.events.filter((e) => e.type === 'signal').map((e) => e.data)).toEqual([
      { status: 'pending', message: 'are you there?', position: 1 },
      { status: 'delivered', message: 'are you there?', sessionId: 'fake-1' },
      {
        status: 'expired',
        message: 'are you there?',
        reason: 'the agent did not answer it before the run ended (agent_failed)',
      },
    ]);
  });
});

describe('resume now', () => {
  it('stops the running agent and resumes its session with the message at once', async () => {
    const r = await sessionRun('r1');
    const running = runJob(r.input);
    await r.sessionStarted();
    r.inbox.push('stop waiting and finish');
    expect(r.inbox.interruptAgent()).toBe('resumed');
    // The first turn was never released: only the interrupt ends it.
    const out = await running;
    expect(out.result).toBe('success');
    expect(await r.prompt()).toBe('stop waiting and finish');
    const exits = r.events.filter((e) => e.type === 'agent_exit').map((e) => e.data?.reason);
    expect(exits).toEqual(['aborted', 'exited']);
    expect(timeline(r.events).slice(-3)).toEqual(['agent_exit', 'verify_started', 'verify']);
  });

  it('says no agent is running before the agent starts or after it exits', async () => {
    const r = await sessionRun('r2');
    expect(r.inbox.interruptAgent()).toBe('no_agent');
    await r.release();
    await runJob(r.input);
    expect(r.inbox.interruptAgent()).toBe('no_agent');
  });
});

describe('RunInbox limits', () => {
  it(`holds at most ${INBOX_MAX_MESSAGES} messages`, () => {
    const inbox = new RunInbox('job j_1');
    for (let i = 1; i <= INBOX_MAX_MESSAGES; i++) expect(inbox.push(`m${i}`)).toBe(i);
    let error: unknown;
    try {
      inbox.push('one more');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IpcError);
    expect(error).toMatchObject({
      code: 'conflict',
      message: `job j_1 already has ${INBOX_MAX_MESSAGES} messages waiting (the most a run holds); send again once some are handed over (its \`signal\` events with status delivered)`,
    });
    // Handing them over makes room again.
    expect(inbox.deliver('s_1')).toHaveLength(INBOX_MAX_MESSAGES);
    expect(inbox.push('one more')).toBe(1);
  });

  it(`takes messages of at most ${INBOX_MAX_MESSAGE_BYTES} bytes`, () => {
    const inbox = new RunInbox('job j_1');
    expect(inbox.push('x'.repeat(INBOX_MAX_MESSAGE_BYTES))).toBe(1);
    // Bytes, not characters: 'é' is two bytes in UTF-8.
    const long = 'é'.repeat(INBOX_MAX_MESSAGE_BYTES / 2 + 1);
    expect(() => inbox.push(long)).toThrow(
      expect.objectContaining({
        code: 'bad_request',
        issues: [
          {
            path: 'message',
            message: `message is ${INBOX_MAX_MESSAGE_BYTES + 2} bytes; a run takes messages of at most ${INBOX_MAX_MESSAGE_BYTES} bytes (put long text in a file and send its path)`,
          },
        ],
      }),
    );
    expect(inbox.size).toBe(1);
  });
});
