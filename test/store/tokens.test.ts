import { expect, it } from 'vitest';
import { NotFoundError } from '../../src/core/index.js';
import { describeStores } from '../helpers/stores.js';

const secret = (n: number) => ({ hash: n.toString(16).padStart(64, '0'), prefix: `fleet_${n}` });

describeStores('tokens', (kind) => {
  it('stores only the hash and finds live tokens by it', async () => {
    const { store, clock } = await kind.open();
    const t = await store.createToken(
      'acme',
      { name: 'ci', role: 'operator', tenants: ['acme'], expiresAt: clock.now() + 1_000 },
      secret(1),
    );
    expect(t).toMatchObject({
      tenant: 'acme',
      role: 'operator',
      tenants: ['acme'],
      jobId: null,
      prefix: 'fleet_1',
      revokedAt: null,
    });
    expect(t).not.toHaveProperty('hash');
    expect(await store.findTokenByHash(secret(1).hash)).toEqual(t);
    expect(await store.findTokenByHash(secret(2).hash)).toBeNull();
    clock.advance(1_000);
    expect(await store.findTokenByHash(secret(1).hash)).toBeNull();
  });

  it('revokes once and lists per tenant or all', async () => {
    const { store } = await kind.open();
    const a = await store.createToken(
      'acme',
      { name: 'a', role: 'factory', tenants: ['acme', 'beta'] },
      secret(3),
    );
    const admin = await store.createToken('system', { name: 'root', role: 'admin' }, secret(4));
    await store.createToken(
      'acme',
      { name: 'agent', role: 'agent', tenants: ['acme'], jobId: 'job-1' },
      secret(5),
    );
    expect((await store.listTokens('acme')).map((t) => t.name)).toEqual(['a', 'agent']);
    expect((await store.listTokens()).map((t) => t.id)).toContain(admin.id);
    await expect(store.revokeToken(a.id, 'beta')).rejects.toBeInstanceOf(NotFoundError);
    const revoked = await store.revokeToken(a.id, 'acme');
    expect(revoked.revokedAt).not.toBeNull();
    expect(await store.revokeToken(a.id)).toEqual(revoked);
    expect(await store.findTokenByHash(secret(3).hash)).toBeNull();
  });

  it('checks the role against tenants and job scope', async () => {
    const { store } = await kind.open();
    const bad = [
      [{ name: 'x', role: 'admin', tenants: ['acme'] }, 'tenants'],
      [{ name: 'x', role: 'operator', tenants: [] }, 'tenants'],
      [{ name: 'x', role: 'agent', tenants: ['acme'] }, 'jobId'],
      [{ name: 'x', role: 'factory', tenants: ['acme'], jobId: 'j' }, 'jobId'],
      [{ name: 'x', role: 'root', tenants: [] }, 'role'],
    ] as const;
    for (const [spec, path] of bad) {
      await expect(store.createToken('acme', spec as never, secret(9))).rejects.toMatchObject({
        code: 'invalid_input',
        issues: expect.arrayContaining([expect.objectContaining({ path })]),
      });
    }
    expect(await store.listTokens()).toEqual([]);
  });
});
