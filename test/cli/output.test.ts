import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderJob } from '../../src/cli/job-commands.js';
import {
  colourEnabled,
  paintStage,
  palette,
  stripAnsi,
  visibleWidth,
} from '../../src/cli/output/colour.js';
import {
  formatCost,
  formatTokens,
  humanDuration,
  relativeTime,
  table,
  truncate,
} from '../../src/cli/output/format.js';
import { type JobSummary, agentStateAfter, renderSummary } from '../../src/cli/output/progress.js';
import { renderEvent, toolSummary } from '../../src/cli/output/transcript.js';
import type { Artifact, EventInput, Job } from '../../src/core/index.js';
import { claudeCode, codex, gemini, type Engine } from '../../src/engines/index.js';

const FIXTURES = join(import.meta.dirname, '..', 'engines', 'fixtures');
const plain = palette(false);
const coloured = palette(true);

/** The events an engine's parser makes of a recorded transcript. */
function recorded(engine: Engine, file: string): EventInput[] {
  const parser = engine.parser();
  return readFileSync(join(FIXTURES, file), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .flatMap((l) => parser.parse(l).events);
}

function transcript(events: readonly EventInput[], p = plain): string {
  return events.map((e) => renderEvent({ type: e.type, data: e.data ?? {}, at: 0 }, p)).join('');
}

describe('formatting', () => {
  it('writes durations for people', () => {
    expect(
      [0, 850, 1_000, 4_250, 42_900, 185_000, 7_380_000, 273_600_000].map(humanDuration),
    ).toEqual(['0ms', '850ms', '1.0s', '4.2s', '42s', '3m05s', '2h03m', '3d4h']);
  });

  it('writes times relative to now', () => {
    const now = 1_000_000_000;
    expect(relativeTime(now - 500, now)).toBe('just now');
    expect(relativeTime(now - 12_000, now)).toBe('12s ago');
    expect(relativeTime(now - 3 * 60_000, now)).toBe('3m ago');
    expect(relativeTime(now - 5 * 3_600_000, now)).toBe('5h ago');
    expect(relativeTime(now - 4 * 86_400_000, now)).toBe('4d ago');
    expect(relativeTime(now + 90_000, now)).toBe('in 1m');
  });

  it('writes costs and token counts', () => {
    expect([null, undefined, 0, 0.0123, 0.98765, 4.5].map(formatCost)).toEqual([
      '-',
      '-',
      '$0',
      '$0.0123',
      '$0.9877',
      '$4.50',
    ]);
    expect([950, 1_000, 12_345, 123_456, 1_234_567].map(formatTokens)).toEqual([
      '950',
      '1k',
      '12.3k',
      '123k',
      '1.2M',
    ]);
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('abc', 4)).toBe('abc');
  });

  it('aligns table columns by what shows, not by colour codes', () => {
    const rows = [
      ['a', coloured.green('succeeded'), 'x'],
      ['longer', coloured.red('failed'), 'y'],
    ];
    const text = table(['ID', 'STAGE', 'NOTE'], rows);
    expect(stripAnsi(text)).toBe(
      'ID      STAGE      NOTE\na       succeeded  x\nlonger  failed     y\n',
    );
    expect(visibleWidth(coloured.bold('abc'))).toBe(3);
  });
});

describe('colour', () => {
  it('is on for a terminal, off through a pipe, NO_COLOR and FORCE_COLOR as no-color.org says', () => {
    expect(colourEnabled({}, true)).toBe(true);
    expect(colourEnabled({}, false)).toBe(false);
    expect(colourEnabled({ TERM: 'dumb' }, true)).toBe(false);
    expect(colourEnabled({ NO_COLOR: '1' }, true)).toBe(false);
    expect(colourEnabled({ NO_COLOR: '' }, true)).toBe(true);
    expect(colourEnabled({ FORCE_COLOR: '1' }, false)).toBe(true);
    expect(colourEnabled({ FORCE_COLOR: '1', NO_COLOR: '1' }, false)).toBe(true);
    expect(colourEnabled({ FORCE_COLOR: '0' }, true)).toBe(false);
  });

  it('paints each stage, and nothing when off', () => {
    expect(paintStage(coloured, 'succeeded')).toBe('\x1b[32msucceeded\x1b[39m');
    expect(paintStage(coloured, 'failed')).toBe('\x1b[31mfailed\x1b[39m');
    expect(paintStage(coloured, 'running')).toBe('\x1b[34mrunning\x1b[39m');
    expect(paintStage(plain, 'failed')).toBe('failed');
  });
});

describe('the transcript', () => {
  it('tells a gate: each merge, and the decision with every check', () => {
    const text = transcript([
      {
        type: 'merge',
        data: { key: 'p/b/a', branch: 'fleet/p/b/a', ok: true, commit: '9250665ef827e39f' },
      },
      {
        type: 'merge',
        data: { key: 'p/b/c', branch: 'fleet/p/b/c', ok: false, conflicts: ['README.md'] },
      },
      {
        type: 'gate',
        data: {
          phase: 'build',
          decision: 'CONDITIONAL',
          checks: [
            { name: 'tests', required: true, exit: 0, passed: true },
            { name: 'lint', required: false, exit: 1, passed: false },
          ],
        },
      },
    ]);
    expect(text).toBe(
      '✔ merged fleet/p/b/a (9250665ef8)\n' +
        '✘ merging fleet/p/b/c conflicts in README.md\n' +
        'gate build: CONDITIONAL — ✔ tests, ✘ lint (optional)\n',
    );
  });

  it('tells a recorded Claude Code run as text, thinking, tool calls and results', () => {
    const text = transcript(recorded(claudeCode, 'claude/01-main.jsonl'));
    expect(text.split('\n')).toEqual([
      expect.stringMatching(/^session 75c9a468-\S+ · claude-opus-4-8\[1m\]$/),
      '  Mock reasoning: I should write the file.',
      "I'll create hello.txt.",
      '▸ Write: /home/dev/project/claude/hello.txt',
      expect.stringMatching(
        /^ {2}│ File created successfully at: \/home\/dev\/project\/claude\/hello\.txt/,
      ),
      expect.stringMatching(/^Done\. \(tool said:/),
      '✔ the agent finished',
      '',
    ]);
    // Thinking is dim, tool names bold; usage says nothing in a transcript.
    const painted = transcript(recorded(claudeCode, 'claude/01-main.jsonl'), coloured);
    expect(painted).toContain('\x1b[2m  Mock reasoning: I should write the file.\x1b[22m');
    expect(painted).toContain('\x1b[36m▸\x1b[39m \x1b[1mWrite\x1b[22m: ');
    expect(painted).not.toContain('tokensIn');
  });

  it('shows a failed Claude Code run as a failure', () => {
    const text = transcript(recorded(claudeCode, 'claude/06-fail500.jsonl'));
    expect(text).toMatch(/^✘ the agent failed/m);
  });

  it('summarises Codex patches and Gemini shell commands', () => {
    const patch = transcript(recorded(codex, 'codex/02-apply-patch.jsonl'));
    expect(patch).toContain('▸ apply_patch: add /home/dev/project/codex/patch.txt\n');
    const bash = transcript(recorded(gemini, 'gemini/04-auto-model-bash.jsonl'));
    expect(bash).toContain(
      "▸ run_shell_command: printf 'hello from mock model\\n' > /home/dev/project/gemini/auto.txt\n",
    );
    expect(bash).toContain('› create auto.txt using bash\n');
  });

  it('cuts long tool results and shows failing verify output', () => {
    const output = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n');
    expect(transcript([{ type: 'tool_result', data: { id: 't', output, isError: false } }])).toBe(
      '  │ line 1\n  │ line 2\n  │ line 3\n  │ line 4\n  │ … 6 more lines\n',
    );
    const verify = transcript([
      {
        type: 'verify',
        data: {
          passed: false,
          commands: [
            { command: 'npm run lint', exit: 0, outputTail: 'ok', durationMs: 1_200 },
            { command: 'npm test', exit: 1, outputTail: 'FAIL a.test.ts\n', durationMs: 4_000 },
          ],
        },
      },
    ]);
    expect(verify).toBe(
      '✔ npm run lint (exit 0, 1.2s)\n✘ npm test (exit 1, 4.0s)\n  │ FAIL a.test.ts\nverify failed\n',
    );
  });

  it('renders the runner and store events, and unknown ones as their data', () => {
    const text = transcript([
      { type: 'stage', data: { from: 'queued', to: 'claimed', factoryId: 'f1' } },
      { type: 'stalled', data: { silentMs: 90_000, policy: 'fail', action: 'fail' } },
      { type: 'agent_exit', data: { code: 137, signal: null, reason: 'aborted' } },
      { type: 'error', data: { message: 'runner failed: boom' } },
      { type: 'retry', data: { attempt: 2, status: 529, message: 'overloaded' } },
      { type: 'signal', data: { status: 'pending', message: 'also\nthe docs', position: 1 } },
      { type: 'signal', data: { status: 'delivered', message: 'also', sessionId: 's1' } },
      { type: 'signal', data: { status: 'drained', message: 'also', sessionId: 's1' } },
      { type: 'signal', data: { status: 'expired', message: 'late', reason: 'the run ended' } },
      { type: 'something_new', data: { a: 1 } },
    ]);
    expect(text.split('\n')).toEqual([
      expect.stringMatching(/^── claimed \(factory f1\) \d\d:\d\d:\d\d$/),
      'stalled: no output for 1m30s — fail',
      'the agent process ended (exit 137, aborted)',
      'error: runner failed: boom',
      'retrying the model API (attempt 2, HTTP 529): overloaded',
      '✉ message queued (#1): also ⏎ the docs',
      '✉ message handed to the agent: also',
      '✉ the agent answered the message: also',
      '✉ message expired (the run ended): late',
      'something_new {"a":1}',
      '',
    ]);
  });

  it('names the gist of a tool input', () => {
    expect(toolSummary({ command: 'npm test' })).toBe('npm test');
    expect(toolSummary({ command: ['bash', '-lc', 'ls'] })).toBe('bash -lc ls');
    expect(toolSummary({ pattern: 'TODO', path: 'src' })).toBe('src');
    expect(toolSummary({ other: 1 })).toBe('{"other":1}');
    expect(toolSummary({})).toBe('');
  });
});

describe('progress helpers', () => {
  it('derives the agent state from events', () => {
    const states: (string | null)[] = [];
    let state: string | null = null;
    for (const type of [
      'stage:claimed',
      'session',
      'tool_call',
      'tool_result',
      'retry',
      'result',
      'verify_started',
      'stage:failed',
    ]) {
      const [t, to] = type.split(':');
      state = agentStateAfter({ type: t!, data: to === undefined ? {} : { to } }, state);
      states.push(state);
    }
    expect(states).toEqual([
      'starting',
      'thinking',
      'acting',
      'thinking',
      'waiting',
      'exited',
      'verifying',
      null,
    ]);
  });

  it('sums up jobs with totals', () => {
    const base: JobSummary = {
      id: 'j1',
      key: 'one',
      stage: 'succeeded',
      stageReason: null,
      result: 'success',
      lastError: null,
      attempts: 1,
      durationMs: 60_000,
      startedAt: 1_000,
      finishedAt: 61_000,
      tokensIn: 1_000,
      tokensOut: 200,
      tokensCached: 0,
      costUsd: 0.0123,
      costEstimated: false,
    };
    const failed: JobSummary = {
      ...base,
      id: 'j2',
      key: null,
      stage: 'failed',
      stageReason: 'gate_failed',
      result: 'gate_failed',
      lastError: 'verify failed:\nnpm test',
      startedAt: 31_000,
      finishedAt: 121_000,
      durationMs: 90_000,
      costUsd: 0.5,
    };
    expect(renderSummary([base, failed])).toBe(
      [
        'JOB  RESULT     DURATION  TOKENS  COST',
        'one  succeeded  1m00s     1.2k    $0.0123',
        'j2   failed     1m30s     1.2k    $0.5000  gate_failed: verify failed: npm test',
        '2 jobs: 1 succeeded, 1 failed · 2m00s · 2.4k tokens · $0.5123',
        '',
      ].join('\n'),
    );
    // A cost estimated from token counts (Codex, Gemini) says so.
    const estimated: JobSummary = { ...base, id: 'j3', key: 'three', costEstimated: true };
    expect(renderSummary([base, estimated])).toBe(
      [
        'JOB    RESULT     DURATION  TOKENS  COST',
        'one    succeeded  1m00s     1.2k    $0.0123',
        'three  succeeded  1m00s     1.2k    ~$0.0123',
        '2 jobs: 2 succeeded · 1m00s · 2.4k tokens · ~$0.0246',
        '~ cost estimated from token counts (the CLI reported none)',
        '',
      ].join('\n'),
    );
  });
});

describe('fleet show', () => {
  it('shows the lease, checkpoint, artifacts and last error of a job', () => {
    const now = 1_800_000_000_000;
    const job: Job = {
      id: 'j1',
      tenant: 'acme',
      key: 'fix-auth',
      idempotencyKey: null,
      parentId: null,
      kind: 'leaf',
      stage: 'running',
      stageReason: null,
      bodyMd: '\nFix the login bug\nmore text',
      manifest: {},
      priority: 5,
      capabilities: [],
      engine: 'claude-code',
      profile: null,
      deps: [],
      lock: 'repo:auth',
      timeoutMs: 5_400_000,
      maxAttempts: 3,
      attempts: 2,
      runAt: now - 60_000,
      verify: ['npm test'],
      checkpoint: {
        wipBranch: 'fleet/fix-auth',
        wipBase: 'a'.repeat(40),
        wipCommit: 'b'.repeat(40),
      },
      requiresApproval: false,
      approvedAt: null,
      leaseEpoch: 2,
      lease: {
        jobId: 'j1',
        tenant: 'acme',
        holderFactoryId: 'f1',
        expiresAt: now + 30_000,
        leaseEpoch: 2,
        renewals: 4,
      },
      lastError: 'verify failed: npm test exited 1',
      rev: 7,
      createdAt: now - 120_000,
      updatedAt: now,
      finishedAt: null,
    };
    const artifact: Artifact = {
      id: 'a1',
      tenant: 'acme',
      jobId: 'j1',
      runId: null,
      kind: 'transcript',
      name: 'run-1.jsonl',
      sha256: 'c'.repeat(64),
      size: 12_600,
      mediaType: 'application/x-ndjson',
      createdAt: now,
    };
    const insights = {
      tokensIn: 0,
      tokensOut: 0,
      tokensCached: 0,
      costUsd: 0,
      turns: 0,
      toolCalls: 0,
    };
    const text = renderJob(
      { job, runs: [], insights },
      { artifacts: [artifact], deps: [], ref: 'fix-auth', now },
      palette(false),
    );
    expect(text).toContain('job fix-auth (j1)\n  stage       running\n');
    expect(text).toContain('  attempts    2 of 3\n');
    expect(text).toContain('  lock        repo:auth\n  timeout     1h30m\n  priority    5\n');
    expect(text).toContain('  lease       factory f1, epoch 2, expires in 30s\n');
    expect(text).toContain('  checkpoint  fleet/fix-auth at bbbbbbbbbb (from aaaaaaaaaa)\n');
    expect(text).toContain('  body        Fix the login bug\n');
    expect(text).toContain('artifacts\n  transcript  run-1.jsonl  12.3 KB  a1\n');
    expect(text).toContain('last error: verify failed: npm test exited 1\n');
    expect(text).toMatch(
      /running: follow it with fleet logs -f fix-auth; stop it with fleet cancel fix-auth\n$/,
    );
  });
});
