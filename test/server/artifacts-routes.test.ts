import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { describeStores } from '../helpers/stores.js';
import { bearer, openServer } from './helpers.js';

/** A job of `tenant` under a live lease. */
async function leasedJob(store: Store, tenant = 'acme') {
  await store.enqueue([{ tenant, bodyMd: 'work' }]);
  const [c] = await store.claim({ factoryId: 'f1', tenants: [tenant], capabilities: [], limit: 1 });
  return { job: c!.job, epoch: c!.lease.leaseEpoch, run: c!.run };
}

const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const paths = (body: { error: { issues: { path: string }[] } }) =>
  body.error.issues.map((i) => i.path).sort();

describeStores('artifacts API', (kind) => {
  it('round-trips binary bytes with their media type', async () => {
    const { app, store, token } = await openServer(kind);
    const { job, epoch, run } = await leasedJob(store);
    const factory = await token('factory', ['acme']);
    const op = await token('operator', ['acme']);

    const put = await app.inject({
      method: 'PUT',
      url: `/v1/jobs/${job.id}/artifacts?epoch=${epoch}&kind=screenshot&name=shots/final.png&runId=${run.id}&mediaType=image/png`,
      headers: { ...bearer(factory), 'content-type': 'application/octet-stream' },
      payload: everyByte,
    });
    expect(put.statusCode).toBe(201);
    const artifact = put.json().artifact;
    expect(artifact).toMatchObject({
      tenant: 'acme',
      jobId: job.id,
      runId: run.id,
      kind: 'screenshot',
      name: 'shots/final.png',
      mediaType: 'image/png',
      size: 256,
      sha256: createHash('sha256').update(everyByte).digest('hex'),
    });

    const list = await app.inject({ url: `/v1/jobs/${job.id}/artifacts`, headers: bearer(op) });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual({ items: [artifact] });
    const meta = await app.inject({ url: `/v1/artifacts/${artifact.id}`, headers: bearer(op) });
    expect(meta.json()).toEqual({ artifact });

    const content = await app.inject({
      url: `/v1/artifacts/${artifact.id}/content`,
      headers: bearer(op),
    });
    expect(content.statusCode).toBe(200);
    expect(content.headers['content-type']).toBe('image/png');
    expect(content.headers['content-length']).toBe('256');
    expect(content.headers['x-content-type-options']).toBe('nosniff');
    expect(content.headers['content-disposition']).toBe(
      `attachment; filename="final.png"; filename*=UTF-8''final.png`,
    );
    expect(Buffer.compare(content.rawPayload, everyByte)).toBe(0);
  });

  it('takes any content type as raw bytes, and defaults the media type', async () => {
    const { app, store, admin } = await openServer(kind);
    const { job, epoch } = await leasedJob(store, 'default');
    const upload = (query: string, headers: Record<string, string>, payload?: string | Buffer) =>
      app.inject({
        method: 'PUT',
        url: `/v1/jobs/${job.id}/artifacts?epoch=${epoch}&kind=log&${query}`,
        headers: { ...bearer(admin), ...headers },
        ...(payload === undefined ? {} : { payload }),
      });

    // Not parsed as JSON: the bytes are kept as sent, even when they are not valid JSON.
    const json = await upload('name=half.json', { 'content-type': 'application/json' }, '{"a":');
    expect(json.statusCode).toBe(201);
    expect(json.json().artifact).toMatchObject({
      mediaType: 'application/octet-stream',
      size: 5,
    });
    const text = await upload(
      `name=${encodeURIComponent('résumé "v2".txt')}&mediaType=${encodeURIComponent('text/plain; charset=utf-8')}`,
      { 'content-type': 'text/plain' },
      'héllo\n',
    );
    expect(text.statusCode).toBe(201);
    const empty = await upload('name=empty', {});
    expect(empty.statusCode).toBe(201);
    expect(empty.json().artifact.size).toBe(0);

    const half = await app.inject({
      url: `/v1/artifacts/${json.json().artifact.id}/content`,
      headers: bearer(admin),
    });
    expect([half.headers['content-type'], half.body]).toEqual([
      'application/octet-stream',
      '{"a":',
    ]);
    const hello = await app.inject({
      url: `/v1/artifacts/${text.json().artifact.id}/content`,
      headers: bearer(admin),
    });
    expect(hello.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(hello.body).toBe('héllo\n');
    expect(hello.headers['content-disposition']).toBe(
      `attachment; filename="r_sum_ _v2_.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.txt`,
    );
    expect(
      (await app.inject({ url: `/v1/jobs/${job.id}/artifacts`, headers: bearer(admin) })).json()
        .items,
    ).toHaveLength(3);
  });

  it('fences uploads: a stale epoch is a 409 and stores no row', async () => {
    const { app, store, token } = await openServer(kind);
    const { job, epoch } = await leasedJob(store);
    const factory = await token('factory', ['acme']);
    const put = (e: number) =>
      app.inject({
        method: 'PUT',
        url: `/v1/jobs/${job.id}/artifacts?epoch=${e}&kind=log&name=out.txt`,
        headers: { ...bearer(factory), 'content-type': 'application/octet-stream' },
        payload: everyByte,
      });

    const stale = await put(epoch + 1);
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error.code).toBe('stale_lease');
    expect(await store.listArtifacts('acme', job.id)).toEqual([]);

    await store.complete({ jobId: job.id, epoch });
    const late = await put(epoch);
    expect(late.statusCode).toBe(409);
    expect(late.json().error.code).toBe('stale_lease');
    expect(await store.listArtifacts('acme', job.id)).toEqual([]);
  });

  it('checks roles, tenants and the agent token scope', async () => {
    const { app, store, token } = await openServer(kind);
    const mine = await leasedJob(store, 'acme');
    const [sibling] = await store.enqueue([{ tenant: 'acme', bodyMd: 'other' }]);
    const theirs = await leasedJob(store, 'beta');
    const stored = await store.putArtifact(
      { jobId: mine.job.id, epoch: mine.epoch },
      { kind: 'log', name: 'a.txt', mediaType: 'text/plain' },
      Buffer.from('a'),
    );
    const theirArtifact = await store.putArtifact(
      { jobId: theirs.job.id, epoch: theirs.epoch },
      { kind: 'log', name: 'b.txt' },
      Buffer.from('b'),
    );
    const acmeFactory = await token('factory', ['acme']);
    const op = await token('operator', ['acme']);
    const agent = await token('agent', ['acme'], mine.job.id);
    const siblingAgent = await token('agent', ['acme'], sibling!.job.id);

    // Uploads: factory or admin only, and only to the caller's tenant's jobs.
    const upload = (secret: string, jobId: string, epoch: number) =>
      app.inject({
        method: 'PUT',
        url: `/v1/jobs/${jobId}/artifacts?epoch=${epoch}&kind=log&name=x`,
        headers: bearer(secret),
        payload: Buffer.from('x'),
      });
    expect((await upload(op, mine.job.id, mine.epoch)).statusCode).toBe(403);
    expect((await upload(agent, mine.job.id, mine.epoch)).statusCode).toBe(403);
    const cross = await upload(acmeFactory, theirs.job.id, theirs.epoch);
    expect(cross.statusCode).toBe(404);
    expect(cross.json().error.code).toBe('not_found');
    expect(await store.listArtifacts('beta', theirs.job.id)).toHaveLength(1);

    // Reads: another tenant's artifact, or for an agent another job's, is a 404.
    const read = async (secret: string, url: string) =>
      (await app.inject({ url, headers: bearer(secret) })).statusCode;
    for (const url of [
      `/v1/artifacts/${theirArtifact.id}`,
      `/v1/artifacts/${theirArtifact.id}/content`,
      `/v1/jobs/${theirs.job.id}/artifacts`,
    ])
      expect(await read(op, url), url).toBe(404);
    for (const url of [
      `/v1/artifacts/${stored.id}`,
      `/v1/artifacts/${stored.id}/content`,
      `/v1/jobs/${mine.job.id}/artifacts`,
    ]) {
      expect(await read(agent, url), url).toBe(200);
      expect(await read(siblingAgent, url), url).toBe(404);
    }
    expect(await read(op, '/v1/artifacts/nope')).toBe(404);
    expect((await app.inject({ url: `/v1/artifacts/${stored.id}` })).statusCode).toBe(401);
  });

  it('rejects invalid upload queries with precise paths', async () => {
    const { app, store, admin } = await openServer(kind);
    const { job, epoch } = await leasedJob(store);
    const [other] = await store.enqueue([{ tenant: 'default', bodyMd: 'x' }]);
    const put = (query: string) =>
      app.inject({
        method: 'PUT',
        url: `/v1/jobs/${job.id}/artifacts?tenant=acme&${query}`,
        headers: bearer(admin),
        payload: Buffer.from('x'),
      });

    const missing = await put('epoch=abc');
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.code).toBe('invalid_input');
    expect(paths(missing.json())).toEqual([
      'querystring.epoch',
      'querystring.kind',
      'querystring.name',
    ]);
    expect(
      paths((await put(`epoch=${epoch}&kind=log&name=x&mediaType=not%20a%20type`)).json()),
    ).toEqual(['querystring.mediaType']);
    expect(
      paths(
        (await put(`epoch=${epoch}&kind=log&name=x&mediaType=text/plain%0d%0aX-Evil:1`)).json(),
      ),
    ).toEqual(['querystring.mediaType']);
    expect((await put(`epoch=${epoch}&kind=log&name=x&size=3`)).json().error.issues).toEqual([
      { path: 'querystring.size', message: 'unknown field' },
    ]);
    const wrongRun = await put(`epoch=${epoch}&kind=log&name=x&runId=${other!.job.id}`);
    expect(wrongRun.statusCode).toBe(400);
    expect(paths(wrongRun.json())).toEqual(['querystring.runId']);
    expect(await store.listArtifacts('acme', job.id)).toEqual([]);
  });
});
