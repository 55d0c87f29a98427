import { describe, expect, it } from 'vitest';
import {
  JobFileError,
  parsePlan,
  type JobFileProblem,
  type SourceFile,
} from '../../src/core/index.js';

const files: Record<string, string> = {
  'jobs/greeting.md': '---\ncwd: out\n---\necho hi > greeting.txt\n',
  'jobs/check.md':
    '---\nkey: check\ndeps: [greeting, build/farewell]\ntimeout: 1m\n---\ntest -f x\n',
  'jobs/bad.md': '---\ntimeout: soon\n---\nx\n',
};
const options = {
  homeDir: '/home/ada',
  readFile: (path: string): SourceFile | null =>
    path in files ? { path: `/p/${path}`, text: files[path]! } : null,
  listFiles: (glob: string) =>
    Object.keys(files).filter((f) => glob === 'jobs/g*.md' && f.startsWith('jobs/g')),
};
const plan = (text: string) => parsePlan({ path: '/p/plan.yaml', text }, options);

function problems(text: string): JobFileProblem[] {
  try {
    plan(text);
  } catch (error) {
    expect(error).toBeInstanceOf(JobFileError);
    return (error as JobFileError).problems;
  }
  throw new Error('expected a JobFileError');
}

const quickstart = `name: quickstart
description: two phases
cwd: ./repo
defaults: { engine: shell, timeout: 5m }
phases:
  - name: build
    jobs:
      - jobs/greeting.md
      - key: farewell
        priority: 2
        body: |
          echo bye > farewell.txt
    gate:
      checks:
        - run: test -f greeting.txt
        - name: style
          run: ./lint.sh
          required: false
      timeout: 2m
  - name: verify
    approval: required
    jobs: [jobs/check.md]
`;

describe('parsePlan', () => {
  it('reads phases, file and inline jobs, defaults, cwd and gates', () => {
    const result = plan(quickstart);
    expect(result.name).toBe('quickstart');
    expect(result.description).toBe('two phases');
    expect(result.source).toBe('/p/plan.yaml');
    const [build, verify] = result.phases;
    expect(build?.gate).toEqual({
      checks: [
        { name: 'test -f greeting.txt', run: 'test -f greeting.txt', required: true },
        { name: 'style', run: './lint.sh', required: false },
      ],
      timeoutMs: 120_000,
    });
    expect(build?.approval).toBe('auto');
    expect(verify).toMatchObject({ name: 'verify', approval: 'required', gate: null });
    expect(build?.jobs).toEqual([
      {
        key: 'quickstart/build/greeting',
        bodyMd: 'echo hi > greeting.txt\n',
        engine: 'shell',
        timeoutMs: 300_000,
        deps: [],
        manifest: {
          source: { file: '/p/jobs/greeting.md' },
          cwd: '/p/jobs/out',
          plan: { name: 'quickstart', phase: 'build', index: 0 },
        },
      },
      {
        key: 'quickstart/build/farewell',
        bodyMd: 'echo bye > farewell.txt\n',
        engine: 'shell',
        priority: 2,
        timeoutMs: 300_000,
        deps: [],
        manifest: {
          source: { file: '/p/plan.yaml', line: 9 },
          cwd: '/p/repo',
          plan: { name: 'quickstart', phase: 'build', index: 0 },
        },
      },
    ]);
    expect(verify?.jobs[0]).toMatchObject({
      key: 'quickstart/verify/check',
      timeoutMs: 60_000,
      deps: ['quickstart/build/greeting', 'quickstart/build/farewell'],
      manifest: { cwd: '/p/repo', plan: { phase: 'verify', index: 1 } },
    });
  });

  it('expands globs with listFiles', () => {
    const result = plan('name: g\nphases:\n  - name: a\n    jobs: [jobs/g*.md]\n');
    expect(result.phases[0]?.jobs.map((j) => j.key)).toEqual(['g/a/greeting']);
  });

  it('leaves deps outside the plan for the server and rewrites matrix deps', () => {
    const result = plan(`name: m
phases:
  - name: build
    jobs:
      - key: build-\${s}
        matrix: { s: [a, b] }
        body: make \${s}
  - name: test
    jobs:
      - key: t
        matrix: { s: [a, b] }
        deps: ["build-\${s}", stored-job]
        body: test \${s}
`);
    expect(result.phases[1]?.jobs.map((j) => [j.key, j.deps])).toEqual([
      ['m/test/t-a', ['m/build/build-a', 'stored-job']],
      ['m/test/t-b', ['m/build/build-b', 'stored-job']],
    ]);
  });

  it.each([
    ['name: x\nphases: []\n', 2, 'phases', /non-empty list of phases/],
    ['phases:\n  - name: a\n    jobs: [jobs/greeting.md]\n', 1, 'name', /expected a plan name/],
    ['name: x\nphses: []\n', 2, 'phses', /did you mean "phases"/],
    [
      'name: x\nphases:\n  - name: a/b\n    jobs: [jobs/greeting.md]\n',
      3,
      'phases[0].name',
      /phase name/,
    ],
    ['name: x\nphases:\n  - name: a\n    jobs: []\n', 4, 'phases[0].jobs', /got an empty list/],
    ['name: x\nphases:\n  - name: a\n', 3, 'phases[0].jobs', /got nothing/],
    [
      'name: x\nphases:\n  - name: a\n    jobs:\n      - jobs/nope.md\n',
      5,
      'phases[0].jobs[0]',
      /no job file at 'jobs\/nope.md'/,
    ],
    [
      'name: x\nphases:\n  - name: a\n    jobs:\n      - body: hi\n',
      5,
      'phases[0].jobs[0]',
      /inline job needs a key/,
    ],
    [
      'name: x\nphases:\n  - name: a\n    jobs:\n      - key: k\n',
      5,
      'phases[0].jobs[0].body',
      /no instructions/,
    ],
    [
      'name: x\nphases:\n  - name: a\n    jobs:\n      - key: k\n        timout: 1m\n        body: x\n',
      6,
      'phases[0].jobs[0].timout',
      /did you mean "timeout"/,
    ],
    [
      'name: x\nphases:\n  - name: a\n    jobs:\n      - key: k\n        body: |\n          one\n          ${x}\n        matrix: {s: [a]}\n',
      8,
      'phases[0].jobs[0].body',
      /\$\{x\} is not a matrix variable/,
    ],
    [
      'name: x\nphases:\n  - name: a\n    jobs: [jobs/greeting.md]\n    gate:\n      checks:\n        - name: n\n',
      7,
      'phases[0].gate.checks[0].run',
      /shell command/,
    ],
    [
      'name: x\nphases:\n  - name: a\n    jobs: [jobs/greeting.md]\n    gate:\n      checks: []\n',
      6,
      'phases[0].gate.checks',
      /empty list/,
    ],
    [
      'name: x\nphases:\n  - name: a\n    jobs: [jobs/greeting.md]\n    gate:\n      checks: [ls]\n      timeout: soon\n',
      7,
      'phases[0].gate.timeout',
      /duration/,
    ],
    [
      'name: x\nphases:\n  - name: a\n    jobs: [jobs/greeting.md]\n    gate:\n      checks: [{run: ls, required: no}]\n',
      6,
      'phases[0].gate.checks[0].required',
      /true or false/,
    ],
    [
      'name: x\nphases:\n  - name: a\n    jobs: [jobs/greeting.md]\n    approval: yes\n',
      5,
      'phases[0].approval',
      /'required' or 'auto'/,
    ],
    [
      'name: x\ndefaults: {timeout: soon}\nphases:\n  - name: a\n    jobs: [jobs/greeting.md]\n',
      2,
      'defaults.timeout',
      /duration/,
    ],
    [
      'name: x\ndefaults: {key: k}\nphases:\n  - name: a\n    jobs: [jobs/greeting.md]\n',
      2,
      'defaults.key',
      /not allowed in defaults/,
    ],
  ])('%j → line %i, %s', (text, line, field, message) => {
    const found = problems(text).find((p) => p.field === field);
    expect(found).toMatchObject({ file: '/p/plan.yaml', line });
    expect(found?.message).toMatch(message);
  });

  it('refuses duplicate phase names', () => {
    const found = problems(
      'name: x\nphases:\n  - name: a\n    jobs: [jobs/greeting.md]\n  - name: a\n    jobs: [jobs/check.md]\n',
    );
    expect(found[0]).toMatchObject({
      line: 5,
      field: 'phases[1].name',
      message: expect.stringMatching(/already defined by phases\[0\]/),
    });
  });

  it('reports problems inside job files with their own file and line', () => {
    expect(problems('name: x\nphases:\n  - name: a\n    jobs: [jobs/bad.md]\n')).toEqual([
      {
        file: '/p/jobs/bad.md',
        line: 2,
        field: 'timeout',
        message: "expected a duration like 90s or 4h, got 'soon'",
      },
    ]);
  });

  it('refuses deps on a later phase and duplicate keys in a phase', () => {
    const later = problems(`name: x
phases:
  - name: a
    jobs:
      - key: early
        deps: [late]
        body: x
  - name: b
    jobs:
      - key: late
        body: y
`);
    expect(later[0]).toMatchObject({
      line: 6,
      field: 'phases[0].jobs[0].deps',
      message: expect.stringMatching(/'late' is in phase 'b', which runs after phase 'a'/),
    });
    const dup = problems(
      'name: x\nphases:\n  - name: a\n    jobs:\n      - {key: k, body: x}\n      - {key: k, body: y}\n',
    );
    expect(dup[0]).toMatchObject({
      line: 6,
      message: expect.stringMatching(/'x\/a\/k' is also used at \/p\/plan.yaml:5/),
    });
  });
});

describe('plan workspace', () => {
  const seeded = (workspace: string, extra = '') =>
    `name: demo\n${extra}workspace: ${workspace}\nphases:\n  - name: one\n    jobs: [jobs/greeting.md]\n`;

  it('resolves workspace.seed against the plan’s directory', () => {
    expect(plan(seeded('{ seed: seed }')).workspace).toEqual({ seed: '/p/seed' });
    expect(plan(seeded('{ seed: ~/seeds/demo }')).workspace).toEqual({
      seed: '/home/ada/seeds/demo',
    });
    expect(plan(seeded('null')).workspace).toBeNull();
  });

  it('names a bad workspace precisely, and refuses it beside cwd', () => {
    expect(problems(seeded('./seed'))).toEqual([
      expect.objectContaining({
        line: 2,
        field: 'workspace',
        message: expect.stringMatching(/expected \{seed: DIR\}/),
      }),
    ]);
    expect(problems(seeded('{ seed: s, copy: true }'))).toEqual([
      expect.objectContaining({ field: 'workspace.copy' }),
    ]);
    expect(problems(seeded('{ seed: seed }', 'cwd: ./repo\n'))).toEqual([
      expect.objectContaining({
        field: 'workspace',
        message: 'a plan runs either in cwd or in a workspace made from a seed, not both',
      }),
    ]);
  });
});
