import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { JobWatcher, renderSummary, watchJobs } from '../../src/cli/output/progress.js';
import { runCli } from '../../src/cli/run.js';
import { isTerminal } from '../../src/core/index.js';
import { startFactory } from '../../src/factory/daemon.js';
import { closedPort, listen } from '../client/helpers.js';
import { cleanup, makeRepo, tempDir } from '../factory/fixtures.js';
import { root, runFleet, until } from '../helpers/fleet-process.js';
import { STORES } from '../helpers/stores.js';

const sqlite = STORES.find((k) => k.name === 'sqlite')!;
const ESC = '\x1b[';

interface Captured {
  io: CliIo;
  stdout: () => string;
  stderr: () => string;
}

function capture(env: Record<string, string> = {}, tty = false): Captured {
  let out = '';
  let err = '';
  const io: CliIo = {
    env,
    cwd: root,
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTTY: { out: tty, err: tty },
  };
  return { io, stdout: () => out, stderr: () => err };
}

/** A Fleet server (SQLite), an operator's client, and `fleet …` run in-process against it. */
async function setup(options: { factory?: boolean } = {}) {
  const server = await listen(sqlite, { store: { clock: () => Date.now() } });
  const secret = await server.token('operator', ['acme']);
  const client = server.client(secret);
  const repo = await makeRepo();
  const workDir = await tempDir('fleet-work-');
  onTestFinished(() => cleanup(workDir, repo));
  const env = { FLEET_SERVER: server.baseUrl, FLEET_TOKEN: secret, FLEET_DATA_DIR: workDir };
  if (options.factory === true) {
    const factory = await startFactory({
      server: server.baseUrl,
      token: await server.token('factory', ['acme']),
      name: 'test-factory',
      seats: 2,
      capabilities: ['linux'],
      workDir,
      logger: pino({ level: 'silent' }),
      pollMs: 200,
      graceMs: 500,
    });
    onTestFinished(() => factory.stop());
  }
  const fleet = async (
    args: string[],
    more: { env?: Record<string, string>; tty?: boolean } = {},
  ) => {
    const c = capture({ ...env, ...more.env }, more.tty);
    const code = await runCli(['node', 'fleet', ...args], c.io);
    return { code, stdout: c.stdout(), stderr: c.stderr() };
  };
  const submit = async (spec: Record<string, unknown>): Promise<string> => {
    const { jobs } = await client.submitJobs([
      { engine: 'shell', manifest: { cwd: repo }, ...spec } as never,
    ]);
    return jobs[0]!.job.id;
  };
  const settled = (id: string) =>
    until(async () => isTerminal((await client.getJob(id)).job.stage), 20_000);
  return { server, client, env, fleet, submit, settled };
}

describe('fleet ls, show, logs', () => {
  it('lists, shows and tells the story of jobs a real factory ran', async () => {
    const f = await setup({ factory: true });
    const ok = await f.submit({ key: 'build', bodyMd: 'echo building; echo careful >&2' });
    const bad = await f.submit({
      key: 'check',
      bodyMd: 'echo checking',
      verify: ['echo verify-says-no; exit 3'],
      maxAttempts: 1,
    });
    await f.settled(ok);
    await f.settled(bad);

    const ls = await f.fleet(['ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^ID\s+KEY\s+STAGE\s+ENGINE\s+ATTEMPTS\s+AGE\s+ELAPSED\s+COST$/m);
    expect(ls.stdout).toMatch(new RegExp(`^${ok}\\s+build\\s+succeeded\\s+shell\\s+1/3\\s+`, 'm'));
    expect(ls.stdout).toMatch(
      new RegExp(`^${bad}\\s+check\\s+failed \\(gate_failed\\)\\s+shell\\s+1/1\\s+`, 'm'),
    );
    expect(ls.stdout).not.toContain(ESC);
    const failedOnly = await f.fleet(['ls', '--stage', 'failed']);
    expect(failedOnly.stdout).toContain(bad);
    expect(failedOnly.stdout).not.toContain(ok);
    const json = await f.fleet(['ls', '--json', '--key', 'build']);
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ id: ok, key: 'build', stage: 'succeeded' }),
    ]);
    const badStage = await f.fleet(['ls', '--stage', 'done']);
    expect(badStage.code).toBe(2);
    expect(badStage.stderr).toMatch(/"done" is not a stage; use one of blocked, queued/);

    // show: by key and by id, with runs, verify results and the next step.
    const shown = await f.fleet(['show', 'build']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`job build (${ok})`);
    expect(shown.stdout).toMatch(/^ {2}stage\s+succeeded$/m);
    expect(shown.stdout).toMatch(/^ {2}#1 {2}success {2}exit 0 {2}\S+ {2}factory \S+$/m);
    expect(shown.stdout).toMatch(/commit [0-9a-f]{10} on fleet\/build/);
    expect(shown.stdout).toContain('succeeded on branch fleet/build');
    const failed = await f.fleet(['show', bad]);
    expect(failed.stdout).toMatch(/^ {2}stage\s+failed \(gate_failed\)$/m);
    expect(failed.stdout).toMatch(/#1 {2}gate_failed {2}exit 0/);
    expect(failed.stdout).toMatch(/✘ echo verify-says-no; exit 3 \(exit 3, \S+\)/);
    expect(failed.stdout).toContain(
      `failed: see what happened with fleet logs ${bad}; run it again with fleet retry ${bad}`,
    );
    const detail = JSON.parse((await f.fleet(['show', 'check', '--json'])).stdout) as {
      job: { id: string };
      runs: { result: string }[];
      artifacts: unknown[];
    };
    expect(detail.job.id).toBe(bad);
    expect(detail.runs.map((r) => r.result)).toEqual(['gate_failed']);
    expect(Array.isArray(detail.artifacts)).toBe(true);

    // logs: a transcript, not JSON, unless --raw.
    const logs = await f.fleet(['logs', 'build']);
    expect(logs.code).toBe(0);
    const lines = logs.stdout.split('\n');
    expect(lines).toContain('building');
    expect(lines).toContain('careful');
    expect(logs.stdout).toMatch(/^── queued \d\d:\d\d:\d\d$/m);
    expect(logs.stdout).toMatch(/^── succeeded \d\d:\d\d:\d\d$/m);
    expect(logs.stdout).toMatch(/^committed [0-9a-f]{10} on fleet\/build$/m);
    expect(logs.stdout).not.toContain('{"');
    const gate = await f.fleet(['logs', 'check']);
    expect(gate.stdout).toMatch(/^verify: 1 command$/m);
    expect(gate.stdout).toMatch(/^✘ echo verify-says-no; exit 3 \(exit 3, \S+\)$/m);
    expect(gate.stdout).toMatch(/^ {2}│ verify-says-no$/m);
    expect(gate.stdout).toMatch(/^verify failed$/m);
    expect(gate.stdout).toMatch(/^── failed \(gate_failed\) /m);
    const raw = await f.fleet(['logs', 'build', '--raw']);
    const events = raw.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; type: string });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.map((e) => e.type)).toContain('log');
    const since = await f.fleet(['logs', 'build', '--raw', '--since', String(events.length - 1)]);
    expect(since.stdout.trim().split('\n')).toHaveLength(1);

    const factories = await f.fleet(['factories']);
    expect(factories.stdout).toMatch(
      /^NAME\s+STATUS\s+SEATS\s+CAPABILITIES\s+LAST SEEN\s+VERSION\s+ID$/m,
    );
    expect(factories.stdout).toMatch(
      /^test-factory\s+online\s+0\/2\s+linux\s+(just now|\d+s ago)\s+/m,
    );
    const factoriesJson = JSON.parse((await f.fleet(['factories', '--json'])).stdout) as unknown[];
    expect(factoriesJson).toEqual([expect.objectContaining({ name: 'test-factory', seats: 2 })]);

    const unknown = await f.fleet(['show', 'no-such-job']);
    expect(unknown).toMatchObject({ code: 1, stdout: '' });
    expect(unknown.stderr).toBe(
      'error: no job no-such-job — fleet ls lists jobs with their ids and keys\n',
    );
  });

  it('logs -f follows a running job and exits with its outcome', async () => {
    const f = await setup({ factory: true });
    const slow = await f.submit({ key: 'slow', bodyMd: 'echo start; sleep 1; echo end' });
    await until(async () => (await f.client.getJob(slow)).job.stage === 'running');
    const followed = await f.fleet(['logs', '-f', 'slow']);
    expect(followed.code).toBe(0);
    expect(followed.stdout.split('\n')).toEqual(expect.arrayContaining(['start', 'end']));
    expect(followed.stdout).toMatch(/── succeeded/);

    const doomed = await f.submit({ key: 'doomed', bodyMd: 'sleep 0.5; exit 4', maxAttempts: 1 });
    const failed = await f.fleet(['logs', '--follow', doomed]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/the agent process ended \(exit 4\)/);
    expect(failed.stderr).toBe(
      `error: job ${doomed} ended failed (agent_failed) — fleet show ${doomed} says more\n`,
    );
  });

  it('cancels and retries, and says why when it cannot', async () => {
    // No factory has the capability, so the job waits in the queue.
    const f = await setup();
    const id = await f.submit({ key: 'wait', bodyMd: 'true', capabilities: ['gpu'] });
    const early = await f.fleet(['retry', 'wait']);
    expect(early).toMatchObject({
      code: 1,
      stderr: 'error: job wait is queued; only failed or cancelled jobs can be retried\n',
    });
    const shown = await f.fleet(['show', 'wait']);
    expect(shown.stdout).toContain('queued: waiting for a free factory seat with gpu');
    await f.submit({ key: 'after', bodyMd: 'true', deps: ['wait'] });
    const blocked = await f.fleet(['show', 'after']);
    expect(blocked.stdout).toMatch(/^ {2}deps\s+wait queued$/m);
    expect(blocked.stdout).toContain('blocked: waiting for wait to succeed');

    const cancelled = await f.fleet(['cancel', 'wait', '--reason', 'not_today']);
    expect(cancelled).toMatchObject({
      code: 0,
      stdout: 'job wait: queued → cancelled (not_today)\n',
    });
    const again = await f.fleet(['cancel', id]);
    expect(again.stderr).toBe(
      `error: job ${id} is cancelled; only unfinished jobs can be cancelled\n`,
    );
    const retried = await f.fleet(['retry', 'wait']);
    expect(retried).toMatchObject({ code: 0, stdout: 'job wait: cancelled → queued\n' });
    expect((await f.client.getJob(id)).job.stage).toBe('queued');
  });

  it('colours only a terminal, and honours NO_COLOR and FORCE_COLOR', async () => {
    const f = await setup();
    await f.submit({ key: 'paint', bodyMd: 'true', capabilities: ['gpu'] });
    const tty = await f.fleet(['ls'], { tty: true });
    expect(tty.stdout).toContain(`${ESC}2mqueued${ESC}22m`);
    const noColor = await f.fleet(['ls'], { tty: true, env: { NO_COLOR: '1' } });
    expect(noColor.stdout).not.toContain(ESC);
    const emptyNoColor = await f.fleet(['ls'], { tty: true, env: { NO_COLOR: '' } });
    expect(emptyNoColor.stdout).toContain(ESC);
    const forced = await f.fleet(['ls'], { env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
    expect(forced.stdout).toContain(`${ESC}2mqueued`);
    const piped = await f.fleet(['show', 'paint']);
    expect(piped.stdout).not.toContain(ESC);
  });

  it('explains a refused token, an unreachable server and a usage error', async () => {
    const f = await setup();
    const refused = await f.fleet(['ls'], { env: { FLEET_TOKEN: 'fleet_op_nope' } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'error: the server refused the token (token is unknown, revoked or expired) — pass --token or set FLEET_TOKEN\n',
    );
    const port = await closedPort();
    for (const args of [
      ['ls'],
      ['show', 'x'],
      ['logs', '-f', 'x'],
      ['cancel', 'x'],
      ['factories'],
    ]) {
      const down = await f.fleet([...args, '--server', `http://127.0.0.1:${port}`]);
      expect(down.code).toBe(1);
      expect(down.stderr).toBe(
        `error: no server at http://127.0.0.1:${port} — start one with fleet up (or fleet serve)\n`,
      );
    }
    // Through the real executable: exit codes 2 (usage) and 1 (no server).
    const usage = await runFleet(['show'], f.env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/missing required argument 'job'/);
    const down = await runFleet(['ls', '--server', `http://127.0.0.1:${port}`], f.env);
    expect(down).toMatchObject({ code: 1, stdout: '' });
    expect(down.stderr).toContain(`no server at http://127.0.0.1:${port}`);
  });
});

describe('the progress view', () => {
  it('follows jobs to the end, one line per stage change off a terminal, then sums up', async () => {
    const f = await setup({ factory: true });
    const a = await f.submit({ key: 'p-one', bodyMd: 'echo one' });
    const b = await f.submit({ key: 'p-two', bodyMd: 'sleep 0.3; exit 1', maxAttempts: 1 });
    const c = capture();
    const summaries = await watchJobs(f.client, [a, b], { io: c.io, intervalMs: 100 });
    expect(summaries.map((s) => [s.key, s.stage, s.result])).toEqual([
      ['p-one', 'succeeded', 'success'],
      ['p-two', 'failed', 'agent_failed'],
    ]);
    expect(summaries[0]!.durationMs).toBeGreaterThan(0);
    const lines = c.stdout().trimEnd().split('\n');
    // Each stage a job passes through is printed once, the last with its duration.
    expect(lines.filter((l) => /^p-one\s+succeeded\s+\S+$/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^p-two\s+failed \(agent_failed\)\s+\S+$/.test(l))).toHaveLength(1);
    expect(new Set(lines).size).toBe(lines.length);
    expect(c.stdout()).not.toContain(ESC);

    const text = renderSummary(summaries);
    expect(text).toMatch(/^JOB\s+RESULT\s+DURATION\s+TOKENS\s+COST$/m);
    expect(text).toMatch(/^p-one\s+succeeded\s+\S+\s+-\s+-$/m);
    expect(text).toMatch(/^p-two\s+failed\s+\S+\s+-\s+-\s+agent_failed: /m);
    expect(text).toMatch(/^2 jobs: 1 succeeded, 1 failed · \S+$/m);
  });

  it('redraws in place on a terminal, takes jobs added while watching, and stops on abort', async () => {
    const f = await setup({ factory: true });
    const a = await f.submit({ key: 'r-one', bodyMd: 'sleep 0.5' });
    const c = capture({}, true);
    const watcher = new JobWatcher(f.client, { io: c.io, intervalMs: 100 });
    watcher.add([a]);
    const done = watcher.run();
    const b = await f.submit({ key: 'r-two', bodyMd: 'true' });
    watcher.add([b, a]);
    const summaries = await done;
    expect(summaries.map((s) => s.stage)).toEqual(['succeeded', 'succeeded']);
    // Each frame after the first moves up over the previous one and clears its lines.
    const frames = c.stdout().split(`${ESC}2A`);
    expect(frames.length).toBeGreaterThan(2);
    expect(frames.at(-1)).toMatch(
      new RegExp(`^${esc(ESC)}2K.*r-one.*succeeded.*\\n${esc(ESC)}2K.*r-two.*succeeded.*\\n$`),
    );

    const stuck = await f.submit({ key: 'r-stuck', bodyMd: 'true', capabilities: ['gpu'] });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    const partial = await watchJobs(f.client, [stuck], {
      io: capture().io,
      intervalMs: 50,
      signal: abort.signal,
    });
    expect(partial).toEqual([expect.objectContaining({ id: stuck, stage: 'queued' })]);
  });
});

function esc(text: string): string {
  return text.replace(/[[\]\\^$.*+?(){}|]/g, '\\$&');
}
