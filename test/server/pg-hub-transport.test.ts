import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { EventHub, type HubMessage } from '../../src/server/event-hub.js';
import { hubChannel, PgHubTransport } from '../../src/server/pg-hub-transport.js';
import { pgUrl, testSchemaName } from '../helpers/stores.js';

interface LogLine {
  level: number;
  msg: string;
}

/** A hub on its own transport; closed when the test finishes. */
async function openHub(schema: string, logs: LogLine[] = []) {
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => logs.push(JSON.parse(line) as LogLine) },
  );
  const transport = new PgHubTransport({
    connectionString: pgUrl!,
    schema,
    logger,
    reconnectMinMs: 50,
    reconnectMaxMs: 200,
  });
  const hub = new EventHub();
  await hub.attach(transport);
  onTestFinished(() => hub.close());
  return { hub, transport, logs };
}

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pgUrl! });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Resolves with the ms it took for `listen` to fire, or rejects after `timeoutMs`. */
function firesWithin(
  subscribe: (listener: () => void) => () => void,
  timeoutMs: number,
): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`not delivered within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = subscribe(() => {
      clearTimeout(timer);
      off();
      resolve(performance.now() - started);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('hubChannel', () => {
  it('names a channel per schema, hashing names PostgreSQL would truncate', () => {
    expect(hubChannel('fleet')).toBe('fleet_hub_fleet');
    const long = hubChannel('a'.repeat(60));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).not.toBe(hubChannel('a'.repeat(61)));
    expect(() => hubChannel('Fleet"; DROP')).toThrow(/invalid schema name/);
  });
});

describe.skipIf(pgUrl === null)('PgHubTransport', () => {
  it('carries every topic from one replica to another on the same schema, quickly', async () => {
    const schema = testSchemaName();
    const a = await openHub(schema);
    const b = await openHub(schema);

    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const jobId = `job-${i}`;
      const fired = firesWithin((l) => b.hub.subscribe(jobId, l), 200);
      a.hub.publish(jobId);
      latencies.push(await fired);
    }
    console.info(
      `publish on A → listener on B: ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`,
    );
    expect(Math.max(...latencies)).toBeLessThan(200);

    const work = firesWithin((l) => b.hub.subscribeWork('acme', l), 200);
    a.hub.publishWork('acme');
    await work;

    const cancels: HubMessage[] = [];
    b.hub.subscribeCancel('f1', (m) => cancels.push(m));
    a.hub.publishCancel({ factoryId: 'f1', jobId: 'j1', epoch: 3, reason: 'cancelled' });
    await expect.poll(() => cancels, { timeout: 200, interval: 5 }).toHaveLength(1);
    expect(cancels[0]).toEqual({
      topic: 'cancel',
      factoryId: 'f1',
      jobId: 'j1',
      epoch: 3,
      reason: 'cancelled',
    });
    // The other direction too.
    const back = firesWithin((l) => a.hub.subscribe('back', l), 200);
    b.hub.publish('back');
    await back;
  });

  it('delivers a replica’s own messages once, locally', async () => {
    const schema = testSchemaName();
    const a = await openHub(schema);
    const b = await openHub(schema);
    let onA = 0;
    let onB = 0;
    a.hub.subscribe('j', () => onA++);
    b.hub.subscribe('j', () => onB++);
    a.hub.publish('j');
    expect(onA).toBe(1); // synchronously, before any round trip
    await expect.poll(() => onB, { timeout: 200, interval: 5 }).toBe(1);
    // Its own NOTIFY came back to A's listener too, and was dropped.
    await sleep(100);
    expect([onA, onB]).toEqual([1, 1]);
  });

  it('keeps schemas apart', async () => {
    const schema = testSchemaName();
    const a = await openHub(schema);
    const same = await openHub(schema);
    const other = await openHub(testSchemaName());
    let heard = 0;
    other.hub.subscribe('j', () => heard++);
    const delivered = firesWithin((l) => same.hub.subscribe('j', l), 200);
    a.hub.publish('j');
    await delivered;
    await sleep(100);
    expect(heard).toBe(0);
  });

  it('ignores and logs malformed payloads', async () => {
    const schema = testSchemaName();
    const { hub, transport, logs } = await openHub(schema);
    let heard = 0;
    hub.subscribe('j', () => heard++);
    await withClient(async (c) => {
      for (const payload of [
        'not json',
        '{"replica":"x"}',
        '{"replica":"x","message":{"topic":"job"}}',
        '{"replica":"x","message":{"topic":"nope","jobId":"j"}}',
      ])
        await c.query('SELECT pg_notify($1, $2)', [transport.channel, payload]);
      // A well-formed one from "another replica" still gets through.
      await c.query('SELECT pg_notify($1, $2)', [
        transport.channel,
        JSON.stringify({ replica: 'other', message: { topic: 'job', jobId: 'j' } }),
      ]);
    });
    await expect.poll(() => heard, { timeout: 500, interval: 5 }).toBe(1);
    expect(logs.filter((l) => l.msg === 'ignoring a malformed hub message')).toHaveLength(4);
  });

  it('listens again after its connection is killed, and messages flow again', async () => {
    const schema = testSchemaName();
    const a = await openHub(schema);
    const b = await openHub(schema);
    const killed = await withClient(async (c) => {
      const { rows } = await c.query<{ ok: boolean }>(
        'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
        [`fleet hub ${b.transport.replicaId}`],
      );
      return rows;
    });
    expect(killed).toEqual([{ ok: true }]);
    await expect
      .poll(() => b.logs.some((l) => l.msg === 'listening for hub messages again'), {
        timeout: 5_000,
        interval: 10,
      })
      .toBe(true);
    expect(b.logs.some((l) => l.msg.startsWith('hub listening connection lost'))).toBe(true);
    const delivered = firesWithin((l) => b.hub.subscribe('after', l), 200);
    a.hub.publish('after');
    await delivered;
  });

  it('closes cleanly: its connections end and sends after close are dropped', async () => {
    const schema = testSchemaName();
    const { hub, transport } = await openHub(schema);
    hub.publish('j');
    await hub.close();
    transport.send({ topic: 'job', jobId: 'late' });
    const left = () =>
      withClient(async (c) => {
        const { rows } = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE $1`,
          [`fleet hub%${transport.replicaId}`],
        );
        return rows[0]!.n;
      });
    // Backends leave pg_stat_activity a moment after their client hangs up.
    await expect.poll(left, { timeout: 2_000, interval: 50 }).toBe(0);
  });
});
