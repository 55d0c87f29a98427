import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/run.js';
import { FleetClient } from '../../src/client/index.js';
import type { Schedule } from '../../src/core/index.js';
import { readCredentials, credentialsPath } from '../../src/server/credentials.js';
import { runFleet, serveFleet, terminate, until } from '../helpers/fleet-process.js';

function jobFile(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const HEARTBEAT = '---\nkey: heartbeat\nengine: shell\n---\necho hi\n';

/** A server in a temporary data dir (in Tokyo time), and `fleet` commands pointed at it. */
async function serve() {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-schedule-'));
  const served = await serveFleet(['--data-dir', dir, '--port', '0'], { TZ: 'Asia/Tokyo' });
  const env = { FLEET_DATA_DIR: dir };
  const fleet = (...args: string[]) => runFleet(args, env);
  const saved = readCredentials(credentialsPath(dir))!;
  const client = new FleetClient({ baseUrl: saved.server, token: saved.token });
  const schedules = async () =>
    JSON.parse((await fleet('schedule', 'ls', '--json')).stdout) as Schedule[];
  return { dir, served, fleet, client, schedules };
}

/** Runs a `fleet` command line in this process, with its output captured. */
async function fleetHere(args: string[], env: Record<string, string>, cwd: string) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    env,
    cwd,
    out: (text) => void (stdout += text),
    err: (text) => void (stderr += text),
  };
  const code = await runCli(['node', 'fleet', ...args], io);
  return { code, stdout, stderr };
}

describe('fleet schedule', () => {
  it('adds an every schedule that submits jobs, lists, pauses, resumes and removes it', async () => {
    const { dir, served, fleet, client, schedules } = await serve();
    const file = jobFile(dir, 'heartbeat.md', HEARTBEAT);

    const added = await fleet('schedule', 'add', '--every', '1s', '--allow-overlap', file);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^created schedule heartbeat \(\S+\): every 1s\nnext runs:\n/);
    expect(
      added.stdout.match(/^ {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d {2}\(/gm),
    ).toHaveLength(3);

    // The server's leader fires it within a second or two; each firing is a real job.
    await until(async () => (await schedules())[0]?.lastJobId != null, 10_000);
    const [s] = await schedules();
    const { job } = await client.getJob(s!.lastJobId!);
    expect(job).toMatchObject({
      tenant: 'default',
      key: 'heartbeat',
      engine: 'shell',
      bodyMd: 'echo hi\n',
      idempotencyKey: expect.stringMatching(new RegExp(`^schedule:${s!.id}:\\d+$`)),
    });
    await until(async () => (await client.listJobs()).items.length >= 2, 10_000);

    const human = await fleet('schedule', 'ls');
    expect(human.stdout).toMatch(/^ID\s+NAME\s+RULE\s+NEXT RUN\s+LAST RUN\s+LAST JOB\s+STATE$/m);
    expect(human.stdout).toMatch(new RegExp(`${s!.id}\\s+heartbeat\\s+every 1s\\s+.*active$`, 'm'));

    const paused = await fleet('schedule', 'pause', 'heartbeat');
    expect(paused.stdout).toMatch(new RegExp(`^paused schedule heartbeat \\(${s!.id}\\)`));
    const before = (await client.listJobs()).items.length;
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await client.listJobs()).items.length).toBe(before);
    expect((await fleet('schedule', 'ls')).stdout).toMatch(/heartbeat.*paused$/m);

    const resumed = await fleet('schedule', 'resume', s!.id);
    expect(resumed.stdout).toMatch(/^resumed schedule heartbeat \(\S+\); next run \d{4}-/);
    await until(async () => (await client.listJobs()).items.length > before, 10_000);

    const removed = await fleet('schedule', 'rm', 'heartbeat');
    expect(removed.stdout).toBe(
      `deleted schedule heartbeat (${s!.id}); the jobs it submitted stay\n`,
    );
    expect((await fleet('schedule', 'ls')).stdout).toMatch(/^no schedules/);
    expect((await client.listJobs()).items.length).toBeGreaterThan(before);
    const gone = await fleet('schedule', 'rm', 'heartbeat');
    expect(gone).toMatchObject({ code: 1 });
    expect(gone.stderr).toMatch(/no schedule with id or name "heartbeat" — see fleet schedule ls/);

    expect((await terminate(served)).code).toBe(0);
  });

  it('fires an --at schedule once, and reads --cron in the server time zone or --tz', async () => {
    const { dir, served, fleet, client, schedules } = await serve();
    const file = jobFile(dir, 'once.md', '---\nengine: shell\n---\necho once\n');
    const when = new Date(Date.now() + 2_000).toISOString();
    const once = await fleet('schedule', 'add', '--at', when, '--name', 'once', file);
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(/^created schedule once \(\S+\): at /);

    const cron = await fleet(
      'schedule',
      'add',
      '--cron',
      '0 9 * * *',
      '--name',
      'tokyo',
      '--json',
      file,
    );
    const tokyo = JSON.parse(cron.stdout) as Schedule;
    // The server runs in Asia/Tokyo (UTC+9): 09:00 there is midnight UTC.
    expect(new Date(tokyo.nextRunAt!).toISOString()).toMatch(/T00:00:00\.000Z$/);
    const paris = await fleet(
      'schedule',
      'add',
      '--cron',
      '30 6 * * 1',
      '--tz',
      'Europe/Paris',
      '--name',
      'paris',
      '--json',
      file,
    );
    const parisAt = new Date((JSON.parse(paris.stdout) as Schedule).nextRunAt!);
    expect(parisAt.getUTCDay()).toBe(1);
    expect(parisAt.toLocaleTimeString('en-GB', { timeZone: 'Europe/Paris' })).toBe('06:30:00');

    await until(
      async () => (await schedules()).find((s) => s.name === 'once')?.lastJobId != null,
      10_000,
    );
    await new Promise((r) => setTimeout(r, 1_500));
    const jobs = (await client.listJobs()).items;
    expect(jobs.map((j) => j.bodyMd)).toEqual(['echo once\n']);
    expect((await fleet('schedule', 'ls')).stdout).toMatch(/once\s+at .*finished$/m);

    const dup = await fleet('schedule', 'add', '--every', '1h', '--name', 'tokyo', file);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(
      /error: a schedule named "tokyo" already exists \(\S+\); pick another name/,
    );

    expect((await terminate(served)).code).toBe(0);
  });

  it('refuses bad flags and files with a precise error, before calling any server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-schedule-'));
    const env = { FLEET_DATA_DIR: dir, FLEET_SERVER: 'http://127.0.0.1:9', FLEET_TOKEN: 'x' };
    const file = jobFile(dir, 'heartbeat.md', HEARTBEAT);
    const matrix = jobFile(
      dir,
      'svc.md',
      '---\nengine: shell\nmatrix: { service: [risk, oms, exeq] }\n---\necho ${service}\n',
    );
    const broken = jobFile(dir, 'broken.md', '---\nengine: shell\ntimeout: soon\n---\necho\n');
    const cases: [string[], RegExp][] = [
      [[file], /say when it runs: pass one of --cron EXPR, --every DURATION or --at TIME/],
      [
        ['--every', '1m', '--cron', '* * * * *', file],
        /--cron and --every given; pass exactly one/,
      ],
      [['--every', '1m', '--tz', 'UTC', file], /--tz applies to --cron only/],
      [
        ['--cron', '61 * * * *', file],
        /--cron "61 \* \* \* \*" is not a cron expression .*write five fields/,
      ],
      [
        ['--cron', '0 3 * * *', '--tz', 'Mars/Olympus', file],
        /--tz "Mars\/Olympus" is not a time zone/,
      ],
      [['--every', '90', file], /--every .*"90" has no unit/],
      [
        ['--at', 'tomorrow', file],
        /--at "tomorrow" is not an ISO date-time; write e.g. 2026-12-01T09:00/,
      ],
      [['--at', '2001-01-01T00:00Z', file], /--at 2001-01-01 .* is in the past/],
      [['--every', '1m', join(dir, 'missing.md')], /cannot read .*missing\.md \(no such file\)/],
      [['--every', '1m', matrix], /a schedule takes one job; .*svc\.md expands to 3/],
      [['--every', '1m', broken], /broken\.md:3: timeout: /],
    ];
    // In this process (each one a real `fleet` command line, without a child's start-up time).
    for (const [args, message] of cases) {
      const res = await fleetHere(['schedule', 'add', ...args], env, dir);
      expect({ args, code: res.code }).toEqual({ args, code: 1 });
      expect(res.stderr).toMatch(message);
      expect(res.stderr).not.toMatch(/no server at/);
    }
    // And once through a real child process.
    const real = await runFleet(['schedule', 'add', '--every', '1m', matrix], env);
    expect(real).toMatchObject({ code: 1, stdout: '' });
    expect(real.stderr).toMatch(/^error: a schedule takes one job; .*svc\.md expands to 3/);
  });
});
