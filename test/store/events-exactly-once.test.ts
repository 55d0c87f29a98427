import { expect, it } from 'vitest';
import { InvalidInputError, StaleLeaseError } from '../../src/core/index.js';
import type { Claimed, Store } from '../../src/store/index.js';
import { describeStores } from '../helpers/stores.js';

async function claimOne(store: Store): Promise<Claimed> {
  await store.enqueue([{ tenant: 'acme', bodyMd: 'a', maxAttempts: 3 }]);
  const [c] = await store.claim({ factoryId: 'f', tenants: ['acme'], capabilities: [], limit: 1 });
  return c!;
}

const logs = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ type: 'log', data: { n: from + i } }));

/** The `n` of every log event stored for the job, in stream order. */
async function storedLogs(store: Store, jobId: string): Promise<number[]> {
  const events = await store.readEvents('acme', jobId, { limit: 1000 });
  return events.filter((e) => e.type === 'log').map((e) => e.data.n as number);
}

describeStores('events exactly once', (kind) => {
  it('stores a batch sent twice once, and skips the stored prefix of an overlapping batch', async () => {
    const { store } = await kind.open();
    const c = await claimOne(store);
    const ref = { jobId: c.job.id, epoch: c.lease.leaseEpoch };
    // seq 1: enqueued, seq 2: claimed.
    expect(await store.appendEvents(ref, logs(1, 3), { localSeq: 1 })).toEqual({
      firstSeq: 3,
      lastSeq: 5,
      duplicates: 0,
    });
    // The same batch again (its reply was lost): nothing new, an empty range after the last.
    expect(await store.appendEvents(ref, logs(1, 3), { localSeq: 1 })).toEqual({
      firstSeq: 6,
      lastSeq: 5,
      duplicates: 3,
    });
    // Overlapping: 2..3 are stored, 4..5 are new.
    expect(await store.appendEvents(ref, logs(2, 5), { localSeq: 2 })).toEqual({
      firstSeq: 6,
      lastSeq: 7,
      duplicates: 2,
    });
    expect(await store.appendEvents(ref, logs(6, 6), { localSeq: 6 })).toEqual({
      firstSeq: 8,
      lastSeq: 8,
      duplicates: 0,
    });
    expect(await storedLogs(store, c.job.id)).toEqual([1, 2, 3, 4, 5, 6]);
    const seqs = (await store.readEvents('acme', c.job.id)).map((e) => e.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('accepts a gap (events the writer dropped) and never stores an older number after it', async () => {
    const { store } = await kind.open();
    const c = await claimOne(store);
    const ref = { jobId: c.job.id, epoch: c.lease.leaseEpoch };
    await store.appendEvents(ref, logs(1, 2), { localSeq: 1 });
    await store.appendEvents(ref, logs(10, 11), { localSeq: 10 });
    const late = await store.appendEvents(ref, logs(5, 6), { localSeq: 5 });
    expect(late.duplicates).toBe(2);
    expect(await storedLogs(store, c.job.id)).toEqual([1, 2, 10, 11]);
  });

  it('numbers restart with a new epoch, and a stale epoch writes nothing, cursor included', async () => {
    const { store, clock } = await kind.open();
    const c = await claimOne(store);
    const first = { jobId: c.job.id, epoch: c.lease.leaseEpoch };
    await store.appendEvents(first, logs(1, 3), { localSeq: 1 });
    // The lease expires; the job is claimed again under a new epoch.
    clock.advance(10 * 60_000);
    await store.reapExpired();
    clock.advance(10 * 60_000);
    const [again] = await store.claim({
      factoryId: 'g',
      tenants: ['acme'],
      capabilities: [],
      limit: 1,
    });
    const second = { jobId: c.job.id, epoch: again!.lease.leaseEpoch };
    expect(second.epoch).toBeGreaterThan(first.epoch);
    await expect(store.appendEvents(first, logs(4, 4), { localSeq: 4 })).rejects.toBeInstanceOf(
      StaleLeaseError,
    );
    const r = await store.appendEvents(second, logs(101, 102), { localSeq: 1 });
    expect(r.duplicates).toBe(0);
    expect(await storedLogs(store, c.job.id)).toEqual([1, 2, 3, 101, 102]);
  });

  it('without a local number every append is stored (other writers keep working)', async () => {
    const { store } = await kind.open();
    const c = await claimOne(store);
    const ref = { jobId: c.job.id, epoch: c.lease.leaseEpoch };
    await store.appendEvents(ref, logs(1, 1), { localSeq: 1 });
    expect(await store.appendEvents(ref, logs(1, 1))).toEqual({ firstSeq: 4, lastSeq: 4 });
    expect(await storedLogs(store, c.job.id)).toEqual([1, 1]);
  });

  it('refuses a local number that is not a positive integer, naming it', async () => {
    const { store } = await kind.open();
    const c = await claimOne(store);
    const ref = { jobId: c.job.id, epoch: c.lease.leaseEpoch };
    const bad = store.appendEvents(ref, logs(1, 1), { localSeq: 0 });
    await expect(bad).rejects.toBeInstanceOf(InvalidInputError);
    await expect(bad).rejects.toThrow(/localSeq/);
    expect(await storedLogs(store, c.job.id)).toEqual([]);
  });

  it('keeps concurrent duplicate sends exactly once', async () => {
    const { store } = await kind.open();
    const c = await claimOne(store);
    const ref = { jobId: c.job.id, epoch: c.lease.leaseEpoch };
    await Promise.all(
      Array.from({ length: 6 }, () => store.appendEvents(ref, logs(1, 20), { localSeq: 1 })),
    );
    expect(await storedLogs(store, c.job.id)).toEqual(logs(1, 20).map((e) => e.data.n));
  });
});
