import { expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { describeStores } from '../helpers/stores.js';

const HANDLES = 4;

describeStores('concurrent claimers on one database', (kind) => {
  it('claims every job once and never gives a lock to two holders', async () => {
    const opened = await kind.open();
    const handles: Store[] = [opened.store];
    for (let i = 1; i < HANDLES; i++) handles.push(await opened.reopen());
    const locks = ['a', 'b', 'c', 'd', 'e'];
    const specs = Array.from({ length: 240 }, (_, i) => ({
      tenant: 'acme',
      bodyMd: `job ${i}`,
      lock: i % 3 === 0 ? null : locks[i % locks.length]!,
      priority: i % 4,
    }));
    await opened.store.enqueue(specs);

    const claims = new Map<string, number>();
    const holding = new Map<string, string>();
    const violations: string[] = [];
    await Promise.all(
      handles.map(async (store, h) => {
        for (;;) {
          const batch = await store.claim({
            factoryId: `f${h}`,
            tenants: ['acme'],
            capabilities: [],
            limit: 3,
          });
          if (batch.length === 0) {
            const left = await store.countJobs('acme');
            if (left.queued === 0) return;
            await new Promise((r) => setTimeout(r, 1));
            continue;
          }
          for (const c of batch) {
            claims.set(c.job.id, (claims.get(c.job.id) ?? 0) + 1);
            if (c.job.lock !== null) {
              const other = holding.get(c.job.lock);
              if (other !== undefined) violations.push(`${c.job.lock}: ${other} and ${c.job.id}`);
              holding.set(c.job.lock, c.job.id);
            }
          }
          // Give other claimers a chance to interleave while these leases are held.
          await new Promise((r) => setTimeout(r, 0));
          for (const c of batch) if (c.job.lock !== null) holding.delete(c.job.lock);
          const outcomes = await store.completeMany(
            batch.map((c) => ({ jobId: c.job.id, epoch: c.lease.leaseEpoch })),
          );
          expect(outcomes.every((o) => o.ok)).toBe(true);
        }
      }),
    );
    expect(violations).toEqual([]);
    expect(claims.size).toBe(specs.length);
    expect([...claims.values()].every((n) => n === 1)).toBe(true);
    expect((await opened.store.countJobs('acme')).succeeded).toBe(specs.length);
  });

  it('lets exactly one of a late completion and the reaper win', async () => {
    const opened = await kind.open();
    const other = await opened.reopen();
    for (let round = 0; round < 15; round++) {
      await opened.store.enqueue([{ tenant: 'acme', bodyMd: `r${round}`, maxAttempts: 5 }]);
      const [c] = await opened.store.claim({
        factoryId: 'f',
        tenants: ['acme'],
        capabilities: [],
        limit: 1,
        leaseTtlMs: 1_000,
      });
      opened.clock.advance(1_001);
      const [completed, reaped] = await Promise.allSettled([
        opened.store.complete({ jobId: c!.job.id, epoch: c!.lease.leaseEpoch }),
        other.reapExpired(),
      ]);
      const job = (await opened.store.getJob('acme', c!.job.id))!;
      const [run] = await opened.store.listRuns('acme', c!.job.id);
      // Compare whole observations so a failure shows everything that happened.
      const observed = {
        completed:
          completed.status === 'fulfilled' ? 'ok' : (completed.reason as { code?: string }).code,
        reaped:
          reaped.status === 'fulfilled' ? reaped.value.map((r) => r.jobId) : String(reaped.reason),
        stage: job.stage,
        result: run!.result,
      };
      if (observed.completed === 'ok') {
        expect(observed).toEqual({
          completed: 'ok',
          reaped: [],
          stage: 'succeeded',
          result: 'success',
        });
      } else {
        expect(observed).toEqual({
          completed: 'stale_lease',
          reaped: [job.id],
          stage: 'queued',
          result: 'lease_lost',
        });
        await opened.store.cancel('acme', job.id);
      }
    }
  });

  it('promotes a dependent when its two deps finish at the same time', async () => {
    const opened = await kind.open();
    const other = await opened.reopen();
    for (let round = 0; round < 15; round++) {
      await opened.store.enqueue([
        { tenant: 'acme', bodyMd: 'a', key: `a${round}` },
        { tenant: 'acme', bodyMd: 'b', key: `b${round}` },
        { tenant: 'acme', bodyMd: 'c', key: `c${round}`, deps: [`a${round}`, `b${round}`] },
      ]);
      const [x, y] = await opened.store.claim({
        factoryId: 'f',
        tenants: ['acme'],
        capabilities: [],
        limit: 2,
      });
      await Promise.all([
        opened.store.complete({ jobId: x!.job.id, epoch: 1 }),
        other.complete({ jobId: y!.job.id, epoch: 1 }),
      ]);
      const c = (await opened.store.listJobs('acme', { key: `c${round}` })).items[0]!;
      expect(c.stage).toBe('queued');
      const [claimed] = await opened.store.claim({
        factoryId: 'f',
        tenants: ['acme'],
        capabilities: [],
        limit: 1,
      });
      await opened.store.complete({ jobId: claimed!.job.id, epoch: 1 });
    }
  });

  it('creates one job for one idempotency key submitted concurrently', async () => {
    const opened = await kind.open();
    const handles = [opened.store, await opened.reopen(), await opened.reopen()];
    const results = await Promise.all(
      handles.flatMap((s) =>
        [1, 2].map(() =>
          s.enqueue([{ tenant: 'acme', bodyMd: 'once', idempotencyKey: 'deploy-42' }]),
        ),
      ),
    );
    const ids = new Set(results.map((r) => r[0]!.job.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r[0]!.created)).toHaveLength(1);
    expect((await opened.store.countJobs('acme')).queued).toBe(1);
  });
});
