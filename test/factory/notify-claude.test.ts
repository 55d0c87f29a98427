import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventInput } from '../../src/core/index.js';
import { claudeCode } from '../../src/engines/claude-code.js';
import { RunInbox } from '../../src/factory/ipc/index.js';
import { runJob } from '../../src/factory/run-job.js';
import { PATH, cliRunnable } from '../engines/real/cli-harness.js';
import {
  startAnthropicServer,
  type AnthropicServer,
  type Script,
} from '../helpers/model-servers/anthropic.js';
import { cleanup, makeRepo, show, tempDir } from './fixtures.js';

const probe = cliRunnable(claudeCode);
if (!probe.ok) console.warn(`Real Claude Code notify test skipped: ${probe.why}`);

const dirs: string[] = [];
let server: AnthropicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  await cleanup(...dirs.splice(0));
});

/** The last user message of a recorded /v1/messages body, as JSON text. */
function lastUserMessage(body: unknown): string {
  const messages = (body as { messages?: { role?: string }[] }).messages ?? [];
  return JSON.stringify(messages.filter((m) => m.role === 'user').at(-1) ?? null);
}

describe.skipIf(!probe.ok)('a message to a run of the real Claude Code binary', () => {
  it('is handed to the resumed session when the agent exits, before verify', async () => {
    const repo = await makeRepo();
    const workRoot = await tempDir('fleet-work-');
    const home = await tempDir('fleet-claude-home-');
    dirs.push(repo, workRoot, home);
    const go = path.join(home, 'go');
    const message = 'Please write ok to status.txt.';
    const script: Script = [
      // The first turn waits in a Bash call until the test has sent its message.
      [
        { type: 'text', text: 'Working.' },
        {
          type: 'tool_use',
          name: 'Bash',
          input: {
            command: `while [ ! -f ${go} ]; do sleep 0.05; done; echo bad > status.txt`,
            description: 'work',
          },
        },
      ],
      [{ type: 'text', text: 'First part done.' }],
      // The resumed session, prompted with the message.
      [
        {
          type: 'tool_use',
          name: 'Bash',
          input: { command: 'echo ok > status.txt', description: 'fix' },
        },
      ],
      [{ type: 'text', text: 'Done.' }],
    ];
    server = await startAnthropicServer(script);
    const events: EventInput[] = [];
    const inbox = new RunInbox('job j_claude', (e) => events.push(e));
    const running = runJob({
      job: {
        id: 'j_claude',
        key: 'claude-notify',
        bodyMd: 'Do the work.',
        verify: ['grep -qx ok status.txt'],
        timeoutMs: 60_000,
        checkpoint: null,
        cwd: repo,
        fixAttempts: 0,
        yolo: true,
        model: 'claude-sonnet-4-5',
        env: {
          PATH,
          HOME: home,
          TMPDIR: home,
          LANG: 'C.UTF-8',
          CLAUDE_CODE_MAX_RETRIES: '0',
          ANTHROPIC_BASE_URL: server.url,
          ANTHROPIC_API_KEY: 'test',
        },
      },
      engine: claudeCode,
      workRoot,
      env: { FLEET_JOB_ID: 'j_claude' },
      graceMs: 1000,
      inbox,
      onEvent: (e) => events.push(e),
    });
    const end = Date.now() + 30_000;
    while (!events.some((e) => e.type === 'tool_call')) {
      if (Date.now() > end) throw new Error(`no tool call: ${JSON.stringify(events)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(inbox.push(message)).toBe(1);
    await writeFile(go, '');
    const out = await running;

    expect(out.result, JSON.stringify(events.slice(-5))).toBe('success');
    expect(await show(repo, 'fleet/claude-notify:status.txt')).toBe('ok\n');
    expect(server.turnsPlayed).toBe(4);
    expect(server.overruns).toBe(0);
    const turns = server.turnRequests();
    // The resumed request carries the message as the new user turn, after the first session.
    expect(lastUserMessage(turns[2]?.body)).toContain(message);
    expect(JSON.stringify(turns[2]?.body)).toContain('First part done.');
    const sessions = events.filter((e) => e.type === 'session').map((e) => e.data?.sessionId);
    expect(sessions).toHaveLength(2);
    expect(sessions[1]).toBe(sessions[0]);
    const delivered = events.find((e) => e.type === 'signal' && e.data?.status === 'delivered');
    expect(delivered?.data).toEqual({ status: 'delivered', message, sessionId: sessions[0] });
    // The real CLI's answer to the resumed prompt drains it: after the second session line.
    const drained = events.findIndex((e) => e.type === 'signal' && e.data?.status === 'drained');
    expect(events[drained]?.data).toEqual({ status: 'drained', message, sessionId: sessions[0] });
    const secondSession = events.findLastIndex((e) => e.type === 'session');
    expect(drained).toBeGreaterThan(secondSession);
    const types = events.map((e) => e.type);
    expect(types.indexOf('signal')).toBeLessThan(types.indexOf('agent_exit'));
    expect(types.lastIndexOf('agent_exit')).toBeLessThan(types.indexOf('verify_started'));
  }, 60_000);
});
