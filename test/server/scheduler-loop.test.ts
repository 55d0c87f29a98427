import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { nextRunAt, type ScheduleRule, type ScheduleSpecInput } from '../../src/core/index.js';
import { EventHub } from '../../src/server/event-hub.js';
import { fireDueSchedules, runSchedulerLoop } from '../../src/server/scheduler-loop.js';
import type { Store } from '../../src/store/index.js';
import type { TestClock } from '../helpers/clock.js';
import { until } from '../helpers/fleet-process.js';
import { describeStores } from '../helpers/stores.js';

const MINUTE = 60_000;
const at = (iso: string) => Date.parse(iso);

/** A logger whose lines the test can read. */
function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

/** A schedule in `acme` whose first run is computed as the route computes it. */
async function schedule(
  store: Store,
  clock: TestClock,
  rule: ScheduleRule,
  more: Partial<ScheduleSpecInput> = {},
  timeZone?: string,
) {
  return store.createSchedule({
    tenant: 'acme',
    name: `s-${Math.random().toString(36).slice(2)}`,
    rule,
    template: { bodyMd: 'nightly audit', engine: 'shell', priority: 3 },
    nextRunAt: nextRunAt(rule, clock.now(), timeZone),
    ...more,
  });
}

describeStores('scheduler', (kind) => {
  const setup = async () => {
    const opened = await kind.open();
    const { logger, lines } = recordingLogger();
    const hub = new EventHub();
    const options = { store: opened.store, hub, logger, clock: opened.clock.now };
    const pass = (timeZone?: string) =>
      fireDueSchedules(timeZone === undefined ? options : { ...options, timeZone });
    return { ...opened, hub, lines, options, pass };
  };

  it('fires a cron schedule at its minute, once, with an idempotency key per firing', async () => {
    const { store, clock, hub, pass } = await setup();
    // The test clock starts at 2026-11-21T12:00:00Z.
    const s = await schedule(store, clock, { kind: 'cron', expr: '30 12 * * *', tz: 'UTC' });
    expect(s.nextRunAt).toBe(at('2026-11-21T12:30:00Z'));
    const woken: string[] = [];
    hub.subscribeWork('acme', () => woken.push('work'));

    clock.advance(30 * MINUTE - 1);
    expect(await pass()).toEqual([]);
    clock.advance(1);
    const [fired] = await pass();
    expect(fired).toMatchObject({ scheduleId: s.id, action: 'fired' });
    const jobId = (fired as { jobId: string }).jobId;
    expect(await store.getJob('acme', jobId)).toMatchObject({
      tenant: 'acme',
      stage: 'queued',
      bodyMd: 'nightly audit',
      priority: 3,
      idempotencyKey: `schedule:${s.id}:${at('2026-11-21T12:30:00Z')}`,
    });
    expect(woken).toEqual(['work']);
    expect(await store.getSchedule('acme', s.id)).toMatchObject({
      lastRunAt: at('2026-11-21T12:30:00Z'),
      lastJobId: jobId,
      nextRunAt: at('2026-11-22T12:30:00Z'),
    });
    expect(await pass()).toEqual([]);
  });

  it("reads cron in the rule's time zone, else in the server's", async () => {
    const { store, clock, pass } = await setup();
    const tokyo = await schedule(store, clock, {
      kind: 'cron',
      expr: '0 9 * * *',
      tz: 'Asia/Tokyo',
    });
    // 09:00 in Tokyo (UTC+9) is midnight UTC.
    expect(tokyo.nextRunAt).toBe(at('2026-11-22T00:00:00Z'));
    const local = await schedule(
      store,
      clock,
      { kind: 'cron', expr: '0 9 * * *' },
      {},
      'America/New_York',
    );
    // 09:00 in New York in November (UTC-5) is 14:00 UTC: today, still ahead at 12:00 UTC.
    expect(local.nextRunAt).toBe(at('2026-11-21T14:00:00Z'));

    clock.advance(2 * 60 * MINUTE); // 2026-11-21T14:00Z
    expect((await pass('America/New_York')).map((f) => f.scheduleId)).toEqual([local.id]);
    expect((await store.getSchedule('acme', local.id))!.nextRunAt).toBe(at('2026-11-22T14:00:00Z'));
    clock.advance(10 * 60 * MINUTE); // 2026-11-22T00:00Z
    const fired = await pass('America/New_York');
    expect(fired.map((f) => [f.scheduleId, f.action])).toEqual([[tokyo.id, 'fired']]);
    expect((await store.getSchedule('acme', tokyo.id))!.nextRunAt).toBe(at('2026-11-23T00:00:00Z'));
  });

  it('fires an every schedule again and again, each firing counted from the last', async () => {
    const { store, clock, pass } = await setup();
    const s = await schedule(store, clock, { kind: 'every', everyMs: MINUTE });
    const jobs: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(MINUTE);
      const [fired] = await pass();
      expect(fired).toMatchObject({ action: 'fired' });
      const jobId = (fired as { jobId: string }).jobId;
      jobs.push(jobId);
      // Finished, so the next firing does not overlap it.
      await store.cancel('acme', jobId);
      expect((await store.getSchedule('acme', s.id))!.nextRunAt).toBe(clock.now() + MINUTE);
    }
    expect(new Set(jobs).size).toBe(3);
    expect((await store.listJobs('acme')).items).toHaveLength(3);
  });

  it('fires an at schedule once, then keeps it, finished', async () => {
    const { store, clock, pass } = await setup();
    const s = await schedule(store, clock, { kind: 'at', at: clock.now() + 5_000 });
    clock.advance(4_999);
    expect(await pass()).toEqual([]);
    clock.advance(10_000);
    expect(await pass()).toMatchObject([{ scheduleId: s.id, action: 'fired' }]);
    clock.advance(24 * 60 * MINUTE);
    expect(await pass()).toEqual([]);
    expect(await store.getSchedule('acme', s.id)).toMatchObject({
      nextRunAt: null,
      lastRunAt: clock.now() - 24 * 60 * MINUTE,
    });
    expect((await store.listJobs('acme')).items).toHaveLength(1);
  });

  it('fires a schedule missed while the server was down once, then carries on from now', async () => {
    const { store, clock, pass } = await setup();
    const every = await schedule(store, clock, { kind: 'every', everyMs: MINUTE });
    const cron = await schedule(store, clock, { kind: 'cron', expr: '*/5 * * * *', tz: 'UTC' });
    // Down for a day: 1,440 minutes and 288 five-minute marks missed.
    clock.advance(24 * 60 * MINUTE + 30_000);
    const fired = await pass();
    expect(fired.map((f) => f.action)).toEqual(['fired', 'fired']);
    expect((await store.listJobs('acme')).items).toHaveLength(2);
    expect((await store.getSchedule('acme', every.id))!.nextRunAt).toBe(clock.now() + MINUTE);
    expect((await store.getSchedule('acme', cron.id))!.nextRunAt).toBe(at('2026-11-22T12:05:00Z'));
    expect(await pass()).toEqual([]);
  });

  it('skips a firing while the previous job is queued or running, and says so', async () => {
    const { store, clock, pass, lines } = await setup();
    const s = await schedule(store, clock, { kind: 'every', everyMs: MINUTE });
    clock.advance(MINUTE);
    const [first] = await pass();
    const firstJob = (first as { jobId: string }).jobId;

    clock.advance(MINUTE);
    expect(await pass()).toEqual([
      { scheduleId: s.id, action: 'skipped_overlap', jobId: firstJob },
    ]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        scheduleId: s.id,
        jobId: firstJob,
        msg: 'previous job still unfinished and overlap not allowed; firing skipped',
      }),
    );
    expect((await store.getSchedule('acme', s.id))!.nextRunAt).toBe(clock.now() + MINUTE);

    const [claimed] = await store.claim({
      factoryId: 'f1',
      tenants: ['acme'],
      capabilities: [],
      limit: 1,
    });
    await store.markRunning({ jobId: firstJob, epoch: claimed!.lease.leaseEpoch });
    clock.advance(MINUTE);
    expect(await pass()).toMatchObject([{ action: 'skipped_overlap', jobId: firstJob }]);
    expect((await store.listJobs('acme')).items).toHaveLength(1);

    await store.complete({ jobId: firstJob, epoch: claimed!.lease.leaseEpoch });
    clock.advance(MINUTE);
    const [next] = await pass();
    expect(next).toMatchObject({ action: 'fired' });
    expect((next as { jobId: string }).jobId).not.toBe(firstJob);
  });

  it('fires over an unfinished job when the schedule allows overlap', async () => {
    const { store, clock, pass } = await setup();
    await schedule(store, clock, { kind: 'every', everyMs: MINUTE }, { allowOverlap: true });
    for (let i = 0; i < 3; i++) {
      clock.advance(MINUTE);
      expect(await pass()).toMatchObject([{ action: 'fired' }]);
    }
    const jobs = (await store.listJobs('acme')).items;
    expect(jobs.map((j) => j.stage)).toEqual(['queued', 'queued', 'queued']);
  });

  it('does not fire a paused schedule', async () => {
    const { store, clock, pass } = await setup();
    const s = await schedule(store, clock, { kind: 'every', everyMs: MINUTE }, { paused: true });
    clock.advance(10 * MINUTE);
    expect(await pass()).toEqual([]);
    expect((await store.listJobs('acme')).items).toEqual([]);
    expect((await store.getSchedule('acme', s.id))!.lastRunAt).toBeNull();
  });

  it('fires once when two leaders pass at the same moment', async () => {
    const { store, clock, options, reopen } = await setup();
    const other = await reopen();
    await schedule(store, clock, { kind: 'every', everyMs: MINUTE }, { allowOverlap: true });
    clock.advance(MINUTE);
    const outcomes = (
      await Promise.all([fireDueSchedules(options), fireDueSchedules({ ...options, store: other })])
    ).flat();
    expect((await store.listJobs('acme')).items).toHaveLength(1);
    expect(outcomes.filter((o) => o.action === 'fired').length).toBeGreaterThanOrEqual(1);
    expect(outcomes.every((o) => o.action === 'fired' || o.action === 'skipped_conflict')).toBe(
      true,
    );
  });

  it('moves past a template the store refuses instead of failing every tick', async () => {
    const { store, clock, pass, lines } = await setup();
    const s = await schedule(
      store,
      clock,
      { kind: 'every', everyMs: MINUTE },
      { template: { bodyMd: 'x', timeoutMs: -1 } },
    );
    clock.advance(MINUTE);
    expect(await pass()).toMatchObject([{ scheduleId: s.id, action: 'failed' }]);
    expect((await store.getSchedule('acme', s.id))!.nextRunAt).toBe(clock.now() + MINUTE);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 50, scheduleId: s.id, issues: [expect.anything()] }),
    );
    expect(await pass()).toEqual([]);
  });

  it('runs the loop only while leading, passing right at start, until aborted', async () => {
    const { store, clock, options } = await setup();
    await schedule(store, clock, { kind: 'every', everyMs: MINUTE }, { allowOverlap: true });
    clock.advance(MINUTE);
    let leading = false;
    const abort = new AbortController();
    const loop = runSchedulerLoop({
      ...options,
      intervalMs: 10,
      signal: abort.signal,
      isLeader: () => leading,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await store.listJobs('acme')).items).toEqual([]);
    leading = true;
    await until(
      async () => (await store.listJobs('acme')).items.length === 1,
      5_000,
      () => 'the leader did not fire the due schedule',
    );
    abort.abort();
    await loop;
    clock.advance(MINUTE);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await store.listJobs('acme')).items).toHaveLength(1);
  });
});

describe('nextRunAt', () => {
  it('counts from the time it is given and stops for a past at', () => {
    expect(nextRunAt({ kind: 'every', everyMs: 1_000 }, 5_000)).toBe(6_000);
    expect(nextRunAt({ kind: 'at', at: 5_000 }, 4_999)).toBe(5_000);
    expect(nextRunAt({ kind: 'at', at: 5_000 }, 5_000)).toBeNull();
    expect(
      nextRunAt({ kind: 'cron', expr: '0 3 * * *', tz: 'Europe/Paris' }, at('2026-07-01T00:00Z')),
    ).toBe(at('2026-07-01T01:00:00Z'));
  });
});
