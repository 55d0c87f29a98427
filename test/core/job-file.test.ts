import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  JobFileError,
  parseJobFile,
  parseJobFiles,
  type JobFileProblem,
} from '../../src/core/index.js';

const options = { baseDir: '/work/jobs', homeDir: '/home/ada' };

function problemsOf(run: () => unknown): JobFileProblem[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(JobFileError);
    return (error as JobFileError).problems;
  }
  throw new Error('expected a JobFileError');
}

const parse = (text: string, path = 'jobs/a.md') => parseJobFile({ path, text }, options);
const problems = (text: string, path = 'jobs/a.md') => problemsOf(() => parse(text, path));

describe('parseJobFile: front matter and body', () => {
  it('reads the header and keeps the body verbatim', () => {
    const [job] = parse('---\nkey: greet\nengine: claude-code\n---\n\n\nSay hi.\n---\nmore\n');
    expect(job).toEqual({
      bodyMd: '\n\nSay hi.\n---\nmore\n',
      key: 'greet',
      engine: 'claude-code',
      manifest: { source: { file: 'jobs/a.md' } },
    });
  });

  it('handles CRLF line endings and keeps them in the body', () => {
    const [job] = parse('---\r\nkey: a\r\ntimeout: 90s\r\n---\r\necho hi\r\n');
    expect(job?.bodyMd).toBe('echo hi\r\n');
    expect(job?.timeoutMs).toBe(90_000);
  });

  it('accepts empty front matter, and a body without a final newline', () => {
    const [job] = parse('---\n---\necho hi');
    expect(job).toMatchObject({ key: null, engine: 'shell', bodyMd: 'echo hi' });
  });

  it('reads every field into the draft and the manifest', () => {
    const [job] = parse(
      [
        '---',
        'key: build',
        'engine: codex',
        'cwd: ../repo',
        'lock: repo',
        'timeout: 4h',
        'priority: 5',
        'capabilities: [linux, node]',
        'deps: [setup]',
        'verify: npm test',
        'fixAttempts: 2',
        'maxAttempts: 4',
        'env: {NODE_ENV: test}',
        'profile: backend@3',
        'yolo: true',
        'setup: npm ci',
        'runAt: 2025-06-01T09:00:00Z',
        'model: gpt-5',
        'approval: required',
        'stall: {afterMs: 60000, policy: restart}',
        'idempotencyKey: build-1',
        '---',
        'Build it.',
      ].join('\n'),
    );
    expect(job).toEqual({
      bodyMd: 'Build it.',
      key: 'build',
      engine: 'codex',
      idempotencyKey: 'build-1',
      priority: 5,
      capabilities: ['linux', 'node'],
      profile: 'backend@3',
      deps: ['setup'],
      lock: 'repo',
      timeoutMs: 14_400_000,
      maxAttempts: 4,
      runAt: Date.parse('2025-06-01T09:00:00Z'),
      verify: ['npm test'],
      requiresApproval: true,
      manifest: {
        source: { file: 'jobs/a.md' },
        cwd: '/work/repo',
        env: { NODE_ENV: 'test' },
        setup: 'npm ci',
        fixAttempts: 2,
        yolo: true,
        model: 'gpt-5',
        stall: { afterMs: 60000, policy: 'restart' },
      },
    });
  });

  it.each([
    ['"~"', '/home/ada'],
    ['~/code/app/', '/home/ada/code/app'],
    ['/srv/app', '/srv/app'],
    ['sub/dir', '/work/jobs/sub/dir'],
  ])('resolves cwd %s to %s', (cwd, expected) => {
    expect(parse(`---\ncwd: ${cwd}\n---\nx\n`)[0]?.manifest).toMatchObject({ cwd: expected });
  });

  it('uses defaultCwd when the header has no cwd, and lets defaults yield to the header', () => {
    const [job] = parseJobFile(
      { path: 'a.md', text: '---\ntimeout: 1m\n---\nx\n' },
      { ...options, defaultCwd: '/d', defaults: { timeout: '5m', priority: 3 } },
    );
    expect(job).toMatchObject({ timeoutMs: 60_000, priority: 3, manifest: { cwd: '/d' } });
  });

  it('a null field leaves it unset, overriding a default', () => {
    const [job] = parseJobFile(
      { path: 'a.md', text: '---\nlock:\n---\nx\n' },
      { ...options, defaults: { lock: 'repo' } },
    );
    expect(job?.lock).toBeUndefined();
  });

  it('refuses a file without front matter, or with unclosed front matter', () => {
    expect(problems('echo hi\n')).toEqual([
      {
        file: 'jobs/a.md',
        line: 1,
        field: null,
        message:
          'a job file starts with a --- line, YAML front matter, a closing --- line, then the instructions',
      },
    ]);
    expect(problems('---\nkey: a\necho hi\n')[0]?.message).toMatch(/has no closing --- line/);
  });

  it('reports YAML syntax errors at their line', () => {
    expect(problems('---\nkey: a\nverify: [a, b\n---\nx\n')[0]).toMatchObject({
      line: 4,
      message: expect.stringMatching(/^invalid YAML: /),
    });
    expect(problems('---\nkey: a\nkey: b\n---\nx\n')[0]).toMatchObject({ line: 3 });
  });

  it('refuses a header that is not a mapping', () => {
    expect(problems('---\n- a\n- b\n---\nx\n')[0]).toMatchObject({
      line: 2,
      message: expect.stringMatching(/must be a mapping .* got a list/),
    });
  });

  it('refuses an empty body, saying the shell body is the script', () => {
    expect(problems('---\nkey: a\n---\n  \n\n')).toEqual([
      {
        file: 'jobs/a.md',
        line: 4,
        field: null,
        message:
          'the job has no instructions after the front matter; for engine shell the body is the script to run',
      },
    ]);
    expect(problems('---\nengine: codex\n---\n')[0]?.message).toBe(
      'the job has no instructions after the front matter',
    );
  });
});

describe('parseJobFile: field errors', () => {
  it.each([
    ['key: "bad key"', 'key', /expected a key of letters/],
    ['key: 12', 'key', /got 12/],
    ['engine: ""', 'engine', /expected an engine name/],
    ['timeout: soon', 'timeout', /^expected a duration like 90s or 4h, got 'soon'$/],
    ['timeout: 90', 'timeout', /got 90$/],
    ['timeout: 0s', 'timeout', /longer than 0s/],
    ['priority: high', 'priority', /from -1000 to 1000, got 'high'/],
    ['priority: 1001', 'priority', /got 1001/],
    ['capabilities: linux', 'capabilities', /expected a list like \[linux, node\]/],
    ['deps: {a: 1}', 'deps', /got a mapping/],
    ['fixAttempts: -1', 'fixAttempts', /from 0 to 100/],
    ['maxAttempts: 0', 'maxAttempts', /from 1 to 100/],
    ['maxAttempts: 1.5', 'maxAttempts', /got 1.5/],
    ['env: [a]', 'env', /mapping of variable names/],
    ['env: {PORT: 8080}', 'env.PORT', /expected a string, got 8080; quote it: PORT: "8080"/],
    ['env: {PORT: true}', 'env.PORT', /got true/],
    ['env: {1X: a}', 'env.1X', /not an environment variable name/],
    ['runAt: tomorrow', 'runAt', /ISO 8601 date-time/],
    ['runAt: 2025-06-01T09:00:00', 'runAt', /with a time zone/],
    ['approval: maybe', 'approval', /'required' or 'auto'/],
    ['stall: 5m', 'stall', /expected a mapping/],
    ['profile: [a]', 'profile', /got a list/],
    ['lock: 3', 'lock', /got 3/],
    ['setup: false', 'setup', /got false/],
    ['model: 4', 'model', /got 4/],
    ['cwd: 1', 'cwd', /expected a directory path/],
    ['idempotencyKey: ""', 'idempotencyKey', /got ''/],
  ])('%s → %s', (line, field, message) => {
    const found = problems(`---\nyolo: false\n${line}\n---\nx\n`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ file: 'jobs/a.md', line: 3, field });
    expect(found[0]?.message).toMatch(message);
  });

  it('reads yolo as a boolean only', () => {
    expect(problems('---\nyolo: yes\n---\nx\n')[0]).toMatchObject({
      line: 2,
      field: 'yolo',
      message: "expected true or false, got 'yes'",
    });
  });

  it('points at the offending list item on its own line', () => {
    expect(problems('---\nverify:\n  - npm test\n  - 3\n---\nx\n')[0]).toMatchObject({
      line: 4,
      field: 'verify[1]',
    });
  });

  it('names unknown fields and suggests a close known name', () => {
    const found = problems('---\ntimout: 4h\nfoo: 1\ndepz: [a]\n---\nx\n');
    expect(found.map((p) => [p.line, p.field, p.message])).toEqual([
      [2, 'timout', 'unknown field; did you mean "timeout"?'],
      [3, 'foo', expect.stringMatching(/^unknown field; known fields are key, engine/)],
      [4, 'depz', 'unknown field; did you mean "deps"?'],
    ]);
  });

  it('lists every problem of a file, one per line in the message', () => {
    try {
      parse('---\ntimeout: soon\nyolo: 1\n---\nx\n');
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toBe(
        "jobs/a.md:2: timeout: expected a duration like 90s or 4h, got 'soon'\n" +
          'jobs/a.md:3: yolo: expected true or false, got 1',
      );
    }
  });
});

describe('parseJobFile: matrix', () => {
  const matrixFile = [
    '---',
    'key: deploy',
    'matrix: {service: [risk, oms], env: [dev, prod]}',
    'lock: ${service}-${env}',
    'env: {TARGET: "${env}"}',
    'deps: ["build-${service}"]',
    '---',
    'Deploy ${service} to ${env}; keep $${HOME} and ${HOME:-x}.',
  ].join('\n');

  it('expands 2 variables into 4 jobs, first variable outermost', () => {
    const jobs = parse(matrixFile);
    expect(jobs.map((j) => j.key)).toEqual([
      'deploy-risk-dev',
      'deploy-risk-prod',
      'deploy-oms-dev',
      'deploy-oms-prod',
    ]);
    expect(jobs[1]).toMatchObject({
      bodyMd: 'Deploy risk to prod; keep ${HOME} and ${HOME:-x}.',
      lock: 'risk-prod',
      deps: ['build-risk'],
      manifest: { env: { TARGET: 'prod' }, matrix: { service: 'risk', env: 'prod' } },
    });
  });

  it('uses a key that mentions a variable as written, and the file stem when there is no key', () => {
    const named = parse('---\nkey: build-${s}\nmatrix: {s: [a, b]}\n---\nx\n');
    expect(named.map((j) => j.key)).toEqual(['build-a', 'build-b']);
    const stem = parse('---\nmatrix: {v: [1, "x y"]}\n---\nx\n', 'dir/run tests.md');
    expect(stem.map((j) => j.key)).toEqual(['run-tests-1', 'run-tests-x-y']);
  });

  it('refuses ${name} that is not a matrix variable, at its line', () => {
    const found = problems('---\nmatrix: {s: [a]}\nsetup: echo ${x}\n---\nline one\nuse ${HOME}\n');
    expect(found.map((p) => [p.line, p.field])).toEqual([
      [3, 'setup'],
      [6, null],
    ]);
    expect(found[1]?.message).toBe(
      '${HOME} is not a matrix variable (the matrix has s); write $${HOME} for a literal ${HOME}',
    );
  });

  it('leaves ${...} alone in a file without a matrix', () => {
    expect(parse('---\n---\necho ${HOME} $${x}\n')[0]?.bodyMd).toBe('echo ${HOME} $${x}\n');
  });

  it.each([
    ['matrix: [a, b]', 'matrix', /expected a mapping of variables/],
    ['matrix: {}', 'matrix', /got an empty mapping/],
    ['matrix: {s: []}', 'matrix.s', /got an empty list/],
    ['matrix: {s: a}', 'matrix.s', /non-empty list of values/],
    ['matrix: {s: [a, {b: 1}]}', 'matrix.s[1]', /string, number or boolean/],
    ['matrix: {s: [a, a]}', 'matrix.s', /listed twice/],
    ['matrix: {1s: [a]}', 'matrix.1s', /variable name/],
    ['matrix: {s: ["a b", "a-b"]}', 'matrix', /two combinations give the same key 'a-a-b'/],
  ])('%s → %s', (line, field, message) => {
    const found = problems(`---\nkey: a\n${line}\n---\nx\n`);
    expect(found[0]).toMatchObject({ line: 3, field });
    expect(found[0]?.message).toMatch(message);
  });

  it('hints to quote ${...} inside a flow list', () => {
    expect(problems('---\nmatrix: {s: [a]}\ndeps: [b-${s}]\n---\nx\n')[0]?.message).toMatch(
      /quote values holding \$\{\.\.\.\}/,
    );
  });

  it('property: a matrix expands into the product of its list lengths, with distinct keys', () => {
    const values = fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{1,6}$/), {
      minLength: 1,
      maxLength: 4,
    });
    fc.assert(
      fc.property(fc.array(values, { minLength: 1, maxLength: 3 }), (lists) => {
        const matrix = lists.map((l, i) => `v${i}: [${l.map((v) => `"${v}"`).join(', ')}]`);
        const jobs = parse(`---\nkey: k\nmatrix: {${matrix.join(', ')}}\n---\nx\n`);
        expect(jobs).toHaveLength(lists.reduce((n, l) => n * l.length, 1));
        expect(new Set(jobs.map((j) => j.key)).size).toBe(jobs.length);
      }),
      { numRuns: 60 },
    );
  });
});

describe('parseJobFiles', () => {
  const batch = {
    homeDir: '/home/ada',
    baseDirOf: (p: string) => `/w/${p.replace(/\/[^/]*$/, '')}`,
  };

  it('returns the jobs of every file, resolving cwd per file and keeping external deps', () => {
    const jobs = parseJobFiles(
      [
        { path: 'a/one.md', text: '---\nkey: one\ncwd: .\n---\nx\n' },
        { path: 'b/two.md', text: '---\nkey: two\ndeps: [one, stored-job]\n---\ny\n' },
      ],
      batch,
    );
    expect(jobs.map((j) => [j.key, j.deps, j.manifest])).toEqual([
      ['one', undefined, { source: { file: 'a/one.md' }, cwd: '/w/a' }],
      ['two', ['one', 'stored-job'], { source: { file: 'b/two.md' } }],
    ]);
  });

  it('lists the problems of every bad file and returns nothing', () => {
    const found = problemsOf(() =>
      parseJobFiles(
        [
          { path: 'good.md', text: '---\nkey: good\n---\nx\n' },
          { path: 'bad.md', text: '---\ntimeout: soon\n---\nx\n' },
          { path: 'worse.md', text: 'no front matter' },
        ],
        batch,
      ),
    );
    expect(found.map((p) => `${p.file}:${p.line}`)).toEqual(['bad.md:2', 'worse.md:1']);
  });

  it('refuses a key used twice across files, naming the first use', () => {
    const found = problemsOf(() =>
      parseJobFiles(
        [
          { path: 'a.md', text: '---\nkey: same\n---\nx\n' },
          { path: 'b.md', text: '---\npriority: 1\nkey: same\n---\nx\n' },
        ],
        batch,
      ),
    );
    expect(found).toEqual([
      {
        file: 'b.md',
        line: 3,
        field: 'key',
        message: "the key 'same' is also used at a.md:2; every job of a batch needs its own key",
      },
    ]);
  });

  it('refuses a job that depends on itself', () => {
    expect(problems('---\nkey: a\ndeps: [a]\n---\nx\n')[0]).toMatchObject({
      line: 3,
      field: 'deps',
      message: "the job 'a' depends on itself",
    });
  });
});
