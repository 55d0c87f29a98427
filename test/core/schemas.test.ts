import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import {
  ArtifactSpec,
  EventInput,
  FactoryPatch,
  FactorySpec,
  Insights,
  InvalidInputError,
  JobPatch,
  JobSpec,
  ProfileSpec,
  ScheduleRule,
  ScheduleSpec,
  SchedulePatch,
  SignalSpec,
  Tenant,
  parseInput,
  type InputIssue,
} from '../../src/core/index.js';

/** Runs parseInput and returns the InvalidInputError it must throw. */
function invalid(schema: z.ZodType, input: unknown, what = 'input'): InvalidInputError {
  try {
    parseInput(schema, input, what);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInputError);
    return e as InvalidInputError;
  }
  throw new Error(`expected ${what} to be rejected: ${JSON.stringify(input)}`);
}

const paths = (e: InvalidInputError) => e.issues.map((i) => i.path);
/** Distinct paths: one field may fail several checks (e.g. min length and pattern). */
const fields = (e: InvalidInputError) => [...new Set(paths(e))];
const issueAt = (e: InvalidInputError, path: string): InputIssue => {
  const found = e.issues.find((i) => i.path === path);
  if (found === undefined) throw new Error(`no issue at ${path}: ${JSON.stringify(e.issues)}`);
  return found;
};

const minimalJob = { tenant: 'acme', bodyMd: 'Implement it' };

describe('parseInput', () => {
  it('returns the parsed output (with defaults) on success', () => {
    const out = parseInput(JobSpec, minimalJob, 'job');
    expect(out.tenant).toBe('acme');
    expect(out.priority).toBe(0);
  });

  it('wraps failures in InvalidInputError with code, name and a readable message', () => {
    const e = invalid(JobSpec, { ...minimalJob, timeoutMs: 'soon' }, 'job');
    expect(e.code).toBe('invalid_input');
    expect(e.name).toBe('InvalidInputError');
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]!.path).toBe('timeoutMs');
    expect(e.issues[0]!.message).toMatch(/expected number, received string/);
    expect(e.message).toBe(`invalid job: timeoutMs: ${e.issues[0]!.message}`);
  });

  it('reports a whole-input failure with an empty path and no path prefix in the message', () => {
    const e = invalid(JobSpec, null, 'job');
    expect(paths(e)).toEqual(['']);
    expect(e.issues[0]!.message).toMatch(/expected object, received null/);
    expect(e.message).toBe(`invalid job: ${e.issues[0]!.message}`);
  });

  it('reports every offending field at once, joined by "; "', () => {
    const e = invalid(
      JobSpec,
      { tenant: 'Acme', bodyMd: 7, priority: 5000, timeoutMs: -1, deps: ['ok', ''] },
      'job',
    );
    expect(paths(e).sort()).toEqual(['bodyMd', 'deps.1', 'priority', 'tenant', 'timeoutMs']);
    expect(e.message.split('; ')).toHaveLength(5);
    expect(issueAt(e, 'priority').message).toMatch(/<=\s*1000/);
    expect(issueAt(e, 'timeoutMs').message).toMatch(/>\s*0/);
    expect(issueAt(e, 'bodyMd').message).toMatch(/expected string, received number/);
  });

  it('uses dotted paths with array indices for batches', () => {
    const batch = z.array(JobSpec);
    const e = invalid(batch, [minimalJob, minimalJob, { ...minimalJob, priority: -1001 }], 'batch');
    expect(paths(e)).toEqual(['2.priority']);
    expect(issueAt(e, '2.priority').message).toMatch(/>=\s*-1000/);
    expect(e.message).toMatch(/^invalid batch: 2\.priority: /);

    const first = invalid(batch, [{ ...minimalJob, priority: 1.5 }]);
    expect(paths(first)).toEqual(['0.priority']);
    expect(first.issues[0]!.message).toMatch(/expected int/);
  });

  it('names each unknown key of a strict object by its own path', () => {
    const e = invalid(JobPatch, { priority: 1, colour: 'red', size: 3 }, 'job patch');
    expect(paths(e).sort()).toEqual(['colour', 'size']);
    for (const issue of e.issues) expect(issue.message).toMatch(/unknown/i);
    expect(e.message).toContain('colour: unknown field');

    const nested = invalid(z.array(JobPatch), [{}, { stage: 'queued' }]);
    expect(paths(nested)).toEqual(['1.stage']);
  });
});

describe('Tenant', () => {
  it.each(['a', 'acme', 'acme-corp', 'team_1', 'x.y', '0day', 'a'.repeat(64)])(
    'accepts %s',
    (t) => {
      expect(Tenant.parse(t)).toBe(t);
    },
  );

  it.each(['', 'Acme', '-lead', '_lead', '.lead', 'has space', 'ünicode', 'a/b', 'a'.repeat(65)])(
    'rejects %j',
    (t) => {
      const e = invalid(JobSpec, { ...minimalJob, tenant: t }, 'job');
      expect(fields(e)).toEqual(['tenant']);
      expect(e.issues[0]!.message.length).toBeGreaterThan(5);
    },
  );

  it('explains the allowed characters', () => {
    const e = invalid(JobSpec, { ...minimalJob, tenant: 'Bad Tenant' });
    expect(issueAt(e, 'tenant').message).toContain('lowercase letters');
  });
});

describe('JobSpec', () => {
  it('applies every default to a minimal spec', () => {
    expect(JobSpec.parse(minimalJob)).toEqual({
      tenant: 'acme',
      bodyMd: 'Implement it',
      key: null,
      idempotencyKey: null,
      parentId: null,
      kind: 'leaf',
      manifest: {},
      priority: 0,
      capabilities: [],
      engine: 'shell',
      profile: null,
      deps: [],
      lock: null,
      timeoutMs: null,
      maxAttempts: 3,
      runAt: null,
      verify: [],
      requiresApproval: false,
    });
  });

  it('keeps given values', () => {
    const full = {
      tenant: 'acme',
      bodyMd: '# Task',
      key: 'phase-a/risk:1.0',
      idempotencyKey: 'idem-1',
      parentId: 'p1',
      kind: 'composite' as const,
      manifest: { service: 'risk' },
      priority: -1000,
      capabilities: ['linux', 'node'],
      engine: 'claude-code',
      profile: 'backend-dev@3',
      deps: ['phase-a'],
      lock: 'app-repo',
      timeoutMs: 4 * 3_600_000,
      maxAttempts: 100,
      runAt: 0,
      verify: ['npm test'],
      requiresApproval: true,
    };
    expect(JobSpec.parse(full)).toEqual(full);
  });

  it('requires tenant and bodyMd', () => {
    const e = invalid(JobSpec, {}, 'job');
    expect(paths(e).sort()).toEqual(['bodyMd', 'tenant']);
    for (const i of e.issues) expect(i.message).toMatch(/expected string, received undefined/);
  });

  it.each<[string, unknown, string]>([
    ['priority', 1001, 'priority'],
    ['priority', -1001, 'priority'],
    ['priority', 2.5, 'priority'],
    ['priority', '5', 'priority'],
    ['maxAttempts', 0, 'maxAttempts'],
    ['maxAttempts', 101, 'maxAttempts'],
    ['timeoutMs', 0, 'timeoutMs'],
    ['timeoutMs', 'soon', 'timeoutMs'],
    ['runAt', -1, 'runAt'],
    ['key', '-leading-dash', 'key'],
    ['key', 'has space', 'key'],
    ['key', '', 'key'],
    ['kind', 'batch', 'kind'],
    ['capabilities', 'linux', 'capabilities'],
    ['capabilities', ['linux', ''], 'capabilities.1'],
    ['verify', [''], 'verify.0'],
    ['engine', '', 'engine'],
    ['requiresApproval', 'yes', 'requiresApproval'],
    ['manifest', [], 'manifest'],
    ['lock', 'x'.repeat(201), 'lock'],
  ])('%s = %j is rejected at path %s', (field, value, path) => {
    const e = invalid(JobSpec, { ...minimalJob, [field]: value }, 'job');
    expect(fields(e)).toEqual([path]);
    expect(e.message).toContain(`${path}: `);
  });

  it('accepts the priority bounds and explicit nulls', () => {
    for (const priority of [-1000, 1000]) {
      expect(JobSpec.parse({ ...minimalJob, priority }).priority).toBe(priority);
    }
    const nulls = JobSpec.parse({ ...minimalJob, key: null, timeoutMs: null, runAt: null });
    expect(nulls).toMatchObject({ key: null, timeoutMs: null, runAt: null });
  });

  it('rejects an unknown (e.g. misspelt) field, naming it', () => {
    const e = invalid(JobSpec, { ...minimalJob, timout: 5 }, 'job');
    expect(paths(e)).toEqual(['timout']);
    expect(e.message).toBe('invalid job: timout: unknown field');
    const batch = invalid(z.array(JobSpec), [minimalJob, { ...minimalJob, prio: 1 }], 'batch');
    expect(paths(batch)).toEqual(['1.prio']);
  });
});

describe('JobPatch', () => {
  it('accepts an empty patch and any subset of fields', () => {
    expect(JobPatch.parse({})).toEqual({});
    expect(JobPatch.parse({ priority: 5, timeoutMs: null })).toEqual({
      priority: 5,
      timeoutMs: null,
    });
    expect(
      JobPatch.parse({ checkpoint: { wipBranch: 'wip/x', wipBase: 'main', wipCommit: 'abc' } }),
    ).toEqual({ checkpoint: { wipBranch: 'wip/x', wipBase: 'main', wipCommit: 'abc' } });
  });

  it('rejects fields a caller may not patch, naming them', () => {
    for (const field of ['stage', 'tenant', 'id', 'attempts', 'leaseEpoch', 'deps']) {
      const e = invalid(JobPatch, { [field]: 'x' }, 'job patch');
      expect(paths(e)).toEqual([field]);
      expect(e.message).toBe(`invalid job patch: ${field}: unknown field`);
    }
  });

  it('validates the values of known fields', () => {
    expect(paths(invalid(JobPatch, { priority: 1001 }))).toEqual(['priority']);
    expect(paths(invalid(JobPatch, { maxAttempts: 0 }))).toEqual(['maxAttempts']);
    expect(paths(invalid(JobPatch, { runAt: null }))).toEqual(['runAt']);
    expect(
      paths(invalid(JobPatch, { checkpoint: { wipBranch: 'b', wipBase: '' } })).sort(),
    ).toEqual(['checkpoint.wipBase', 'checkpoint.wipCommit']);
  });
});

describe('ScheduleRule (discriminated on kind)', () => {
  it.each([
    { kind: 'cron', expr: '0 * * * *' },
    { kind: 'cron', expr: '0 9 * * 1', tz: 'Europe/Paris' },
    { kind: 'every', everyMs: 60_000 },
    { kind: 'at', at: 1_700_000_000_000 },
  ])('accepts $kind rule %#', (rule) => {
    expect(ScheduleRule.parse(rule)).toEqual(rule);
  });

  it('rejects an unknown kind at path kind, listing the options', () => {
    const e = invalid(ScheduleRule, { kind: 'weekly' }, 'schedule rule');
    expect(paths(e)).toEqual(['kind']);
    for (const k of ['cron', 'every', 'at']) expect(e.issues[0]!.message).toContain(k);
  });

  it('rejects a rule without kind at path kind', () => {
    expect(paths(invalid(ScheduleRule, { everyMs: 5 }))).toEqual(['kind']);
  });

  it('validates fields of the chosen variant only', () => {
    expect(paths(invalid(ScheduleRule, { kind: 'cron' }))).toEqual(['expr']);
    expect(paths(invalid(ScheduleRule, { kind: 'cron', expr: '' }))).toEqual(['expr']);
    expect(paths(invalid(ScheduleRule, { kind: 'every', everyMs: 0 }))).toEqual(['everyMs']);
    expect(paths(invalid(ScheduleRule, { kind: 'every', everyMs: 1.5 }))).toEqual(['everyMs']);
    expect(paths(invalid(ScheduleRule, { kind: 'at', at: -1 }))).toEqual(['at']);
    // A field of another variant does not satisfy this one.
    expect(paths(invalid(ScheduleRule, { kind: 'at', everyMs: 1000 }))).toEqual(['at']);
  });

  it('narrows the type by kind', () => {
    const rule = ScheduleRule.parse({ kind: 'every', everyMs: 1000 });
    const ms = rule.kind === 'every' ? rule.everyMs : -1;
    expect(ms).toBe(1000);
  });

  it('reports nested rule paths inside a schedule spec', () => {
    const e = invalid(
      ScheduleSpec,
      { tenant: 'acme', name: 'nightly', rule: { kind: 'every', everyMs: -5 }, template: {} },
      'schedule',
    );
    expect(paths(e)).toEqual(['rule.everyMs']);
  });

  it('applies ScheduleSpec defaults', () => {
    expect(
      ScheduleSpec.parse({ tenant: 'acme', name: 'n', rule: { kind: 'at', at: 5 }, template: {} }),
    ).toEqual({
      tenant: 'acme',
      name: 'n',
      rule: { kind: 'at', at: 5 },
      template: {},
      paused: false,
      allowOverlap: false,
      nextRunAt: null,
    });
  });

  it('SchedulePatch is strict', () => {
    expect(SchedulePatch.parse({ paused: true })).toEqual({ paused: true });
    expect(paths(invalid(SchedulePatch, { name: 'renamed' }))).toEqual(['name']);
    expect(paths(invalid(SchedulePatch, { rule: { kind: 'nope' } }))).toEqual(['rule.kind']);
  });
});

describe('Insights (strict, all optional)', () => {
  it('accepts an empty object and a full one', () => {
    expect(Insights.parse({})).toEqual({});
    const full = {
      model: 'claude',
      tokensIn: 10,
      tokensOut: 20,
      tokensCached: 0,
      costUsd: 0.0123,
      estimated: true,
      turns: 3,
      toolCalls: 4,
      filesChanged: 2,
      linesAdded: 40,
      linesDeleted: 1,
    };
    expect(Insights.parse(full)).toEqual(full);
  });

  it('rejects unknown keys by name', () => {
    const e = invalid(Insights, { tokensIn: 1, tokens: 5 }, 'insights');
    expect(paths(e)).toEqual(['tokens']);
    expect(e.message).toBe('invalid insights: tokens: unknown field');
  });

  it('rejects negative or fractional counters and a negative cost', () => {
    expect(paths(invalid(Insights, { tokensIn: -1 }))).toEqual(['tokensIn']);
    expect(paths(invalid(Insights, { turns: 1.5 }))).toEqual(['turns']);
    expect(paths(invalid(Insights, { costUsd: -0.01 }))).toEqual(['costUsd']);
    expect(paths(invalid(Insights, { estimated: 'no' }))).toEqual(['estimated']);
    // Cost may be fractional.
    expect(Insights.parse({ costUsd: 0.5 })).toEqual({ costUsd: 0.5 });
  });
});

describe('other specs', () => {
  it('ArtifactSpec defaults runId and mediaType', () => {
    expect(ArtifactSpec.parse({ kind: 'diff', name: 'patch.diff' })).toEqual({
      runId: null,
      kind: 'diff',
      name: 'patch.diff',
      mediaType: 'application/octet-stream',
    });
    expect(paths(invalid(ArtifactSpec, { kind: '', name: 'x' }))).toEqual(['kind']);
  });

  it('EventInput defaults data and leaves at optional', () => {
    expect(EventInput.parse({ type: 'log' })).toEqual({ type: 'log', data: {} });
    expect(paths(invalid(z.array(EventInput), [{ type: 'log' }, { type: '' }]))).toEqual([
      '1.type',
    ]);
  });

  it('FactorySpec defaults and FactoryPatch strictness', () => {
    expect(FactorySpec.parse({ tenant: 'acme', name: 'host-1' })).toEqual({
      tenant: 'acme',
      name: 'host-1',
      kind: 'factory',
      capabilities: [],
      seats: 1,
      version: 'unknown',
      status: 'online',
    });
    expect(paths(invalid(FactorySpec, { tenant: 'acme', name: 'h', seats: 10_001 }))).toEqual([
      'seats',
    ]);
    expect(paths(invalid(FactoryPatch, { name: 'x' }))).toEqual(['name']);
    expect(paths(invalid(FactoryPatch, { status: 'gone' }))).toEqual(['status']);
  });

  it('ProfileSpec defaults; profile defaults object is strict', () => {
    expect(ProfileSpec.parse({ tenant: 'acme', name: 'backend-dev' })).toEqual({
      tenant: 'acme',
      name: 'backend-dev',
      persona: '',
      defaults: {},
      promptParts: [],
    });
    expect(paths(invalid(ProfileSpec, { tenant: 'acme', name: 'Backend' }))).toEqual(['name']);
    expect(
      paths(invalid(ProfileSpec, { tenant: 'acme', name: 'p', defaults: { temperature: 1 } })),
    ).toEqual(['defaults.temperature']);
    expect(
      paths(invalid(ProfileSpec, { tenant: 'acme', name: 'p', defaults: { costMode: 'cheap' } })),
    ).toEqual(['defaults.costMode']);
  });

  it('SignalSpec defaults expiresAt and requires a key', () => {
    expect(SignalSpec.parse({ tenant: 'acme', jobId: 'j', key: 'k', body: 'stop' })).toEqual({
      tenant: 'acme',
      jobId: 'j',
      key: 'k',
      body: 'stop',
      expiresAt: null,
    });
    expect(paths(invalid(SignalSpec, { tenant: 'acme', jobId: 'j', body: '' }))).toEqual(['key']);
  });
});
