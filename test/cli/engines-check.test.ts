import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { EngineProbe } from '../../src/engines/index.js';
import { PATH as REAL_PATH } from '../engines/real/cli-harness.js';
import { root, runFleet } from '../helpers/fleet-process.js';

function fakeBin(dir: string, name: string, script: string): void {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${script}\n`);
  chmodSync(path, 0o755);
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Whether `pid` is a live process (a zombie nobody reaped yet counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const byEngine = (stdout: string): Record<string, EngineProbe> =>
  Object.fromEntries((JSON.parse(stdout) as EngineProbe[]).map((p) => [p.engine, p]));

it('fleet engines check reports found, version, JSON output and what is wrong', async () => {
  const bin = tempDir('fleet-bin-');
  // A CLI that answers its version but prints a banner instead of JSON lines when run.
  fakeBin(
    bin,
    'claude',
    'case "$1" in --version) echo "2.1.197 (Claude Code)";; *) echo "Welcome to Claude Code!"; echo "Please log in."; exit 2;; esac',
  );
  fakeBin(bin, 'codex', 'echo "codex: broken install" >&2; exit 3');
  fakeBin(bin, 'bash', 'echo "GNU bash, version 5.2.15"');
  // pi prints its version on stderr. Run, this one hangs and ignores SIGTERM (so does its child,
  // which inherits the ignored signal): only the process group's SIGKILL ends both.
  const pids = join(bin, 'pids');
  fakeBin(
    bin,
    'pi',
    `case "$1" in --version) echo "0.73.1" >&2;; *) trap '' TERM; sleep 300 & echo "$$ $!" > ${pids}; wait;; esac`,
  );
  // gemini is absent. The PATH holds only the fake binaries (and sh for their shebang).
  const env = { PATH: `${bin}:/bin` };
  const hungPids = (): number[] => readFileSync(pids, 'utf8').trim().split(' ').map(Number);

  const human = await runFleet(['engines', 'check', '--probe-timeout', '1500'], env);
  expect(human.code, human.stderr).toBe(0);
  const out = human.stdout;
  expect(out).toContain(`claude-code  ok  2.1.197 (Claude Code) (${join(bin, 'claude')})`);
  expect(out).toMatch(
    /\n {13}JSON not ok: non-JSON output: first line "Welcome to Claude Code!" \(exit 2\) \(\d+\.\d s\)\n/,
  );
  expect(out).toMatch(/codex\s+--\s+.*codex --version failed: codex: broken install\ngemini/);
  expect(out).toMatch(/gemini\s+--\s+gemini is not on PATH\npi/);
  expect(out).toContain(`pi           ok  0.73.1 (${join(bin, 'pi')})`);
  expect(out).toMatch(
    / {13}JSON not ok: timed out: no output on stdout within 1500 ms \(still running after 1500 ms, stopped\) \(\d+\.\d s\)\n/,
  );
  expect(out).toContain('shell        ok  GNU bash, version 5.2.15');
  expect(out).toContain('             no JSON output: the shell engine logs lines\n');
  expect(out).toMatch(/no model was called, no credential used\.\n$/);
  for (const pid of hungPids()) expect(alive(pid), `pid ${pid} outlived the probe`).toBe(false);

  const json = await runFleet(['engines', 'check', '--json', '--probe-timeout', '1500'], env);
  expect(json.code, json.stderr).toBe(0);
  const probes = JSON.parse(json.stdout) as EngineProbe[];
  expect(probes.map((p) => [p.engine, p.problem === null, p.json?.ok])).toEqual([
    ['claude-code', true, false],
    ['codex', false, undefined], // not probed: the version command failed
    ['gemini', false, undefined],
    ['pi', true, false],
    ['shell', true, null],
  ]);
  const { 'claude-code': claude, pi } = byEngine(json.stdout);
  expect(claude?.json).toMatchObject({
    firstLine: 'Welcome to Claude Code!',
    event: null,
    exitCode: 2,
    timedOut: false,
    // It never connected: nothing of it looked at the endpoint it was given.
    connections: 0,
    endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
  });
  expect(pi?.json).toMatchObject({ firstLine: null, timedOut: true, signal: 'SIGKILL' });
  expect(pi?.json?.ms).toBeGreaterThanOrEqual(1500);
  for (const pid of hungPids()) expect(alive(pid), `pid ${pid} outlived the probe`).toBe(false);

  // --no-probe: PATH and version only; no CLI is started in its JSON mode.
  rmSync(pids);
  const fast = await runFleet(['engines', 'check', '--json', '--no-probe'], env);
  expect(Object.values(byEngine(fast.stdout)).map((p) => p.json)).toEqual([
    null,
    null,
    null,
    null,
    null,
  ]);
  expect(existsSync(pids)).toBe(false);
  const fastHuman = await runFleet(['engines', 'check', '--no-probe'], env);
  expect(fastHuman.stdout).not.toMatch(/JSON (not )?ok|no JSON output/);
  expect(fastHuman.stdout).toMatch(/Headless JSON output was not probed \(--no-probe\)\.\n$/);

  const bad = await runFleet(['engines', 'check', '--probe-timeout', '2s'], env);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain(
    '--probe-timeout must be a whole number from 100 to 600000, not "2s"',
  );
}, 60_000);

const REAL = ['claude', 'codex', 'gemini', 'pi'] as const;
const BIN = join(root, 'node_modules', '.bin');
const missing = REAL.filter((b) => !existsSync(join(BIN, b)));
if (missing.length > 0)
  console.warn(`Real engines check skipped: ${missing.join(', ')} not installed; run npm install.`);

/**
 * Settings of the caller that would send a CLI elsewhere if they reached it. TEST-NET-1
 * (192.0.2.0/24) is never routed: a CLI that used any of them would show in the connection
 * counts, time out, or (under strace) connect there.
 */
const CALLER_ENDPOINTS = {
  ANTHROPIC_BASE_URL: 'http://192.0.2.1:9',
  CLAUDE_CODE_USE_BEDROCK: '1',
  GOOGLE_GEMINI_BASE_URL: 'http://192.0.2.1:9',
  OPENAI_BASE_URL: 'http://192.0.2.1:9',
  HTTPS_PROXY: 'http://192.0.2.1:9',
  HTTP_PROXY: 'http://192.0.2.1:9',
};

describe.skipIf(missing.length > 0)('fleet engines check with the real CLIs', () => {
  it('claude-code, codex, gemini and pi each print a session line the adapter parses, against the dead endpoint only', async () => {
    const r = await runFleet(['engines', 'check', '--json'], {
      ...CALLER_ENDPOINTS,
      PATH: REAL_PATH,
    });
    expect(r.code, r.stderr).toBe(0);
    const probes = byEngine(r.stdout);
    // The first line each CLI prints, before it calls the model.
    const firstLines = {
      'claude-code': '{"type":"system","subtype":"init",',
      codex: '{"type":"thread.started","thread_id":',
      gemini: '{"type":"init",',
      pi: '{"type":"session","version":3,',
    };
    for (const [engine, first] of Object.entries(firstLines)) {
      const json = probes[engine]?.json;
      const why = `${engine}: ${JSON.stringify(json)}`;
      expect(json?.ok, why).toBe(true);
      expect(json?.event, why).toBe('session');
      expect(json?.timedOut, why).toBe(false);
      expect(json?.detail, why).toMatch(/^JSON ok: session line, then API unreachable as expected/);
      // It called the model where the probe pointed it (and was dropped).
      expect(json?.connections, why).toBeGreaterThanOrEqual(1);
      expect(json?.firstLine?.startsWith(first), why).toBe(true);
    }
  }, 60_000);

  const straceWorks =
    spawnSync('strace', ['-f', '-qq', '-e', 'trace=connect', '-o', '/dev/null', 'true']).status ===
    0;
  if (!straceWorks) console.warn('The strace check of engines check is skipped: no usable strace.');

  it.skipIf(!straceWorks)(
    'under strace, every TCP connection each real CLI opens goes to the dead endpoint on 127.0.0.1',
    async () => {
      // Wrappers named like the CLIs: the version command runs as is, the probe under strace.
      const bin = tempDir('fleet-strace-bin-');
      const logs = join(bin, 'logs');
      mkdirSync(logs);
      for (const name of REAL)
        fakeBin(
          bin,
          name,
          [
            `if [ "$1" = --version ]; then exec ${join(BIN, name)} "$@"; fi`,
            `exec strace -f -qq -e trace=connect -o ${join(logs, name)} ${join(BIN, name)} "$@"`,
          ].join('\n'),
        );
      const r = await runFleet(['engines', 'check', '--json'], {
        ...CALLER_ENDPOINTS,
        PATH: `${bin}:${REAL_PATH}`,
      });
      expect(r.code, r.stderr).toBe(0);
      const probes = byEngine(r.stdout);
      for (const name of REAL) {
        const engine = name === 'claude' ? 'claude-code' : name;
        const json = probes[engine]?.json;
        expect(json?.ok, `${engine}: ${JSON.stringify(json)}`).toBe(true);
        const port = new URL(json?.endpoint ?? 'http://x').port;
        const connects = readFileSync(join(logs, name), 'utf8')
          .split('\n')
          .filter((l) => /connect\(\d+, \{sa_family=AF_INET6?,/.test(l));
        expect(connects.length, `${engine} made no TCP connection`).toBeGreaterThanOrEqual(1);
        for (const line of connects)
          expect(line, engine).toMatch(
            new RegExp(`sin_port=htons\\(${port}\\), sin_addr=inet_addr\\("127\\.0\\.0\\.1"\\)`),
          );
      }
    },
    60_000,
  );
});
