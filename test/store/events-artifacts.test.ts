import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { InvalidInputError, NotFoundError, StaleLeaseError } from '../../src/core/index.js';
import type { Claimed, Store } from '../../src/store/index.js';
import { BlobStore } from '../../src/store/shared/blob-store.js';
import { describeStores } from '../helpers/stores.js';

async function claimOne(store: Store): Promise<Claimed> {
  await store.enqueue([{ tenant: 'acme', bodyMd: 'a' }]);
  const [c] = await store.claim({ factoryId: 'f', tenants: ['acme'], capabilities: [], limit: 1 });
  return c!;
}

describeStores('events', (kind) => {
  it('assigns gap-free seqs across batches and stage events', async () => {
    const { store, clock } = await kind.open();
    const c = await claimOne(store);
    const ref = { jobId: c.job.id, epoch: 1 };
    // seq 1: enqueued, seq 2: claimed.
    expect(await store.appendEvents(ref, [{ type: 'a' }, { type: 'b', data: { n: 1 } }])).toEqual({
      firstSeq: 3,
      lastSeq: 4,
    });
    await store.markRunning(ref);
    expect(await store.appendEvents(ref, [{ type: 'c', at: 42 }])).toEqual({
      firstSeq: 6,
      lastSeq: 6,
    });
    expect(await store.appendEvents(ref, [])).toEqual({ firstSeq: 7, lastSeq: 6 });
    await store.complete(ref);
    const events = await store.readEvents('acme', c.job.id);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(events.map((e) => e.type)).toEqual(['stage', 'stage', 'a', 'b', 'stage', 'c', 'stage']);
    expect(events[3]).toMatchObject({ data: { n: 1 }, epoch: 1, at: clock.now(), tenant: 'acme' });
    expect(events[5]!.at).toBe(42);
    expect(events[0]!.epoch).toBeNull();
  });

  it('reads after a seq, with a limit, for the owning tenant only', async () => {
    const { store } = await kind.open();
    const c = await claimOne(store);
    await store.appendEvents(
      { jobId: c.job.id, epoch: 1 },
      Array.from({ length: 50 }, (_, i) => ({ type: 'log', data: { i } })),
    );
    const page = await store.readEvents('acme', c.job.id, { afterSeq: 10, limit: 5 });
    expect(page.map((e) => e.seq)).toEqual([11, 12, 13, 14, 15]);
    expect(await store.readEvents('beta', c.job.id)).toEqual([]);
  });

  it('rejects malformed events without writing any', async () => {
    const { store } = await kind.open();
    const c = await claimOne(store);
    const ref = { jobId: c.job.id, epoch: 1 };
    const bad = store.appendEvents(ref, [
      { type: 'ok' },
      { type: '' },
      { type: 'x', data: 'nope' as never },
    ]);
    await expect(bad).rejects.toBeInstanceOf(InvalidInputError);
    await expect(bad).rejects.toMatchObject({ issues: [{ path: '1.type' }, { path: '2.data' }] });
    expect((await store.readEvents('acme', c.job.id)).map((e) => e.seq)).toEqual([1, 2]);
    expect(await store.appendEvents(ref, [{ type: 'after' }])).toEqual({ firstSeq: 3, lastSeq: 3 });
  });
});

describeStores('artifacts', (kind) => {
  it('stores content-addressed blobs with pointer rows', async () => {
    const { store } = await kind.open();
    const c = await claimOne(store);
    const ref = { jobId: c.job.id, epoch: 1 };
    const body = Buffer.from('transcript line\n');
    const a = await store.putArtifact(
      ref,
      { kind: 'transcript', name: 't.jsonl', runId: c.run.id },
      body,
    );
    expect(a).toMatchObject({
      tenant: 'acme',
      jobId: c.job.id,
      runId: c.run.id,
      kind: 'transcript',
      name: 't.jsonl',
      size: body.length,
      mediaType: 'application/octet-stream',
      sha256: createHash('sha256').update(body).digest('hex'),
    });
    const b = await store.putArtifact(
      ref,
      { kind: 'log', name: 'copy.txt', mediaType: 'text/plain' },
      body,
    );
    expect(b.sha256).toBe(a.sha256);
    expect(b.id).not.toBe(a.id);
    expect(await store.readArtifact('acme', a.id)).toEqual(body);
    expect(await store.getArtifact('beta', a.id)).toBeNull();
    await expect(store.readArtifact('beta', a.id)).rejects.toBeInstanceOf(NotFoundError);
    expect((await store.listArtifacts('acme', c.job.id)).map((x) => x.name)).toEqual([
      't.jsonl',
      'copy.txt',
    ]);
  });

  it('rejects a stale writer and a malformed spec without adding a row', async () => {
    const { store } = await kind.open();
    const c = await claimOne(store);
    const a = await store.putArtifact(
      { jobId: c.job.id, epoch: 1 },
      { kind: 'diff', name: 'd' },
      Buffer.from('x'),
    );
    await store.complete({ jobId: c.job.id, epoch: 1 });
    await expect(
      store.putArtifact(
        { jobId: c.job.id, epoch: 1 },
        { kind: 'diff', name: 'late' },
        Buffer.from('y'),
      ),
    ).rejects.toBeInstanceOf(StaleLeaseError);
    expect((await store.listArtifacts('acme', c.job.id)).map((x) => x.id)).toEqual([a.id]);
    await expect(
      store.putArtifact({ jobId: c.job.id, epoch: 1 }, { kind: '', name: 'n' }, Buffer.from('z')),
    ).rejects.toMatchObject({ code: 'invalid_input', issues: [{ path: 'kind' }] });
  });
});

// Blob layout is a filesystem detail both stores share; check it once.
it('lays blobs out as <dir>/<aa>/<sha256> with no temporary files left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-blobs-'));
  const blobs = new BlobStore(dir);
  const { sha256, size } = await blobs.put(Buffer.from('hello'));
  expect(sha256).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  expect(size).toBe(5);
  await blobs.put(Buffer.from('hello'));
  expect(existsSync(join(dir, '2c', sha256))).toBe(true);
  expect(readdirSync(join(dir, '2c'))).toEqual([sha256]);
  expect((await blobs.get(sha256)).toString()).toBe('hello');
});
