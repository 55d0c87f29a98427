import { expect, it } from 'vitest';
import { TestClock } from '../helpers/clock.js';
import { describeStores, type StoreKind } from '../helpers/stores.js';
import { bearer, openServer } from './helpers.js';

const MINUTE = 60_000;

/** A server whose routes and store read the same test clock. */
async function open(kind: StoreKind) {
  const clock = new TestClock();
  const server = await openServer(kind, {
    store: { clock: clock.now },
    server: { clock: clock.now },
  });
  return { ...server, clock };
}

const nightly = {
  name: 'nightly',
  rule: { kind: 'cron', expr: '0 3 * * *', tz: 'UTC' },
  template: { bodyMd: 'run the audit', engine: 'shell', verify: ['npm test'] },
};

describeStores('schedules API', (kind) => {
  it('creates, lists, reads, pauses, resumes and deletes a schedule', async () => {
    const { app, token, clock } = await open(kind);
    const op = bearer(await token('operator', ['acme']));
    const created = await app.inject({
      method: 'POST',
      url: '/v1/schedules',
      headers: op,
      payload: nightly,
    });
    expect(created.statusCode).toBe(201);
    const s = created.json().schedule;
    expect(s).toMatchObject({
      tenant: 'acme',
      name: 'nightly',
      paused: false,
      allowOverlap: false,
      nextRunAt: Date.parse('2026-11-22T03:00:00Z'),
      lastRunAt: null,
      lastJobId: null,
      template: { bodyMd: 'run the audit', verify: ['npm test'], maxAttempts: 3 },
    });

    const every = await app.inject({
      method: 'POST',
      url: '/v1/schedules',
      headers: op,
      payload: {
        name: 'pulse',
        rule: { kind: 'every', everyMs: MINUTE },
        template: { bodyMd: 'x' },
        allowOverlap: true,
      },
    });
    expect(every.json().schedule).toMatchObject({
      allowOverlap: true,
      nextRunAt: clock.now() + MINUTE,
    });
    const pulse = every.json().schedule;

    const list = await app.inject({ url: '/v1/schedules', headers: op });
    expect(list.json().items.map((x: { name: string }) => x.name)).toEqual(['nightly', 'pulse']);
    const one = await app.inject({ url: `/v1/schedules/${s.id}`, headers: op });
    expect(one.json()).toEqual({ schedule: s });

    const patch = (id: string, paused: boolean) =>
      app.inject({ method: 'PATCH', url: `/v1/schedules/${id}`, headers: op, payload: { paused } });
    expect((await patch(pulse.id, true)).json().schedule).toMatchObject({ paused: true });
    clock.advance(10 * MINUTE);
    // Resuming counts from now: the paused minutes are not caught up.
    expect((await patch(pulse.id, false)).json().schedule).toMatchObject({
      paused: false,
      nextRunAt: clock.now() + MINUTE,
    });

    const deleted = await app.inject({
      method: 'DELETE',
      url: `/v1/schedules/${s.id}`,
      headers: op,
    });
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe('');
    expect((await app.inject({ url: `/v1/schedules/${s.id}`, headers: op })).statusCode).toBe(404);
  });

  it('refuses bad rules and templates with a 400 naming the field', async () => {
    const { app, admin, clock } = await open(kind);
    const create = (payload: Record<string, unknown>) =>
      app.inject({
        method: 'POST',
        url: '/v1/schedules',
        headers: bearer(admin),
        payload: { ...nightly, ...payload },
      });
    const issues = async (payload: Record<string, unknown>) => {
      const res = await create(payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('invalid_input');
      return res.json().error.issues as { path: string; message: string }[];
    };

    expect(await issues({ template: { bodyMd: 'x', timeoutMs: -5 } })).toEqual([
      { path: 'body.template.timeoutMs', message: expect.stringMatching(/>0|positive/) },
    ]);
    expect(await issues({ template: { engine: 'shell' } })).toEqual([
      { path: 'body.template.bodyMd', message: expect.any(String) },
    ]);
    expect(await issues({ template: { bodyMd: 'x', tenant: 'other', runAt: 5 } })).toEqual(
      expect.arrayContaining([
        { path: 'body.template.tenant', message: 'unknown field' },
        { path: 'body.template.runAt', message: 'unknown field' },
      ]),
    );
    expect(await issues({ rule: { kind: 'cron', expr: '61 * * * *' } })).toEqual([
      {
        path: 'body.rule.expr',
        message: expect.stringContaining('"61 * * * *" is not a cron expression'),
      },
    ]);
    expect(await issues({ rule: { kind: 'cron', expr: '0 3 * * *', tz: 'Mars/Olympus' } })).toEqual(
      [
        {
          path: 'body.rule.tz',
          message: expect.stringContaining('"Mars/Olympus" is not a time zone'),
        },
      ],
    );
    expect(await issues({ rule: { kind: 'every', everyMs: 0 } })).toMatchObject([
      { path: 'body.rule.everyMs' },
    ]);
    expect(await issues({ rule: { kind: 'at', at: clock.now() } })).toEqual([
      { path: 'body.rule.at', message: expect.stringContaining('is not after now') },
    ]);
    expect(await issues({ name: '' })).toMatchObject([{ path: 'body.name' }]);
    const list = await app.inject({ url: '/v1/schedules', headers: bearer(admin) });
    expect(list.json().items).toEqual([]);
  });

  it('refuses a second schedule with the same name in a tenant with a 409', async () => {
    const { app, admin } = await open(kind);
    const create = () =>
      app.inject({
        method: 'POST',
        url: '/v1/schedules',
        headers: bearer(admin),
        payload: nightly,
      });
    const first = await create();
    const again = await create();
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatchObject({
      code: 'conflict',
      message: expect.stringContaining(
        `a schedule named "nightly" already exists (${first.json().schedule.id})`,
      ),
    });
  });

  it('answers 404 for an unknown id on every verb', async () => {
    const { app, admin } = await open(kind);
    const h = bearer(admin);
    const calls = [
      app.inject({ url: '/v1/schedules/nope', headers: h }),
      app.inject({
        method: 'PATCH',
        url: '/v1/schedules/nope',
        headers: h,
        payload: { paused: true },
      }),
      app.inject({ method: 'DELETE', url: '/v1/schedules/nope', headers: h }),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.statusCode).toBe(404);
      expect(res.json().error).toMatchObject({
        code: 'not_found',
        message: 'schedule nope not found',
      });
    }
  });

  it("keeps tenants apart: another tenant's schedule is not there", async () => {
    const { app, token } = await open(kind);
    const acme = bearer(await token('operator', ['acme']));
    const globex = bearer(await token('operator', ['globex']));
    const created = await app.inject({
      method: 'POST',
      url: '/v1/schedules',
      headers: acme,
      payload: nightly,
    });
    const id = created.json().schedule.id;

    expect((await app.inject({ url: '/v1/schedules', headers: globex })).json().items).toEqual([]);
    expect((await app.inject({ url: `/v1/schedules/${id}`, headers: globex })).statusCode).toBe(
      404,
    );
    const pause = await app.inject({
      method: 'PATCH',
      url: `/v1/schedules/${id}`,
      headers: globex,
      payload: { paused: true },
    });
    expect(pause.statusCode).toBe(404);
    const del = await app.inject({ method: 'DELETE', url: `/v1/schedules/${id}`, headers: globex });
    expect(del.statusCode).toBe(404);
    // The same name is free in another tenant.
    const theirs = await app.inject({
      method: 'POST',
      url: '/v1/schedules',
      headers: globex,
      payload: nightly,
    });
    expect(theirs.statusCode).toBe(201);
    const named = await app.inject({
      url: '/v1/schedules?tenant=acme',
      headers: globex,
    });
    expect(named.statusCode).toBe(403);
    const mine = await app.inject({ url: `/v1/schedules/${id}`, headers: acme });
    expect(mine.json().schedule).toMatchObject({ paused: false, tenant: 'acme' });
  });

  it('lets only people manage schedules', async () => {
    const { app, token } = await open(kind);
    const tokens = [await token('factory', ['acme']), await token('agent', ['acme'], 'job-1')];
    for (const secret of tokens) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/schedules',
        headers: bearer(secret),
        payload: nightly,
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.message).toMatch(/needs admin or operator/);
    }
    const anonymous = await app.inject({ url: '/v1/schedules' });
    expect(anonymous.statusCode).toBe(401);
  });
});
