import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDataDir } from '../../src/cli/data-dir.js';
import { openSqliteStore } from '../../src/store/sqlite/open.js';
import { root, runFleet } from '../helpers/fleet-process.js';
import { pgUrl } from '../helpers/stores.js';

const fleet = runFleet;

describe('fleet CLI', () => {
  it('prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const r = await fleet(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it('migrates and reports the embedded store in the data directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-cli-'));
    const migrated = await fleet(['store', 'migrate'], { FLEET_DATA_DIR: dir });
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toContain(join(dir, 'fleet.db'));
    const store = await openSqliteStore({ path: join(dir, 'fleet.db'), blobDir: dir });
    await store.enqueue([
      { tenant: 'acme', bodyMd: 'a' },
      { tenant: 'acme', bodyMd: 'b' },
    ]);
    await store.enqueue([{ tenant: 'beta', bodyMd: 'c' }]);
    await store.close();
    const stats = await fleet(['store', 'stats', '--data-dir', dir, '--tenant', 'acme', '--json']);
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({
      dialect: 'sqlite',
      tenant: 'acme',
      counts: { queued: 2, succeeded: 0 },
      total: 2,
    });
  });

  it('says what to do when PostgreSQL cannot be reached, without a stack trace', async () => {
    const r = await fleet(['store', 'stats', '--db', 'postgres://postgres@127.0.0.1:1/none']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /cannot reach PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/none/,
    );
    expect(r.stderr).toMatch(/check --db/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('hides a password in the URL it prints', async () => {
    const r = await fleet(['store', 'stats', '--db', 'postgres://fleet:s3cret@127.0.0.1:1/none']);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('s3cret');
  });

  it('rejects an unknown option with a usage error', async () => {
    const r = await fleet(['store', 'stats', '--nope']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown option '--nope'/);
  });

  it.skipIf(pgUrl === null)('opens a PostgreSQL store named by --db', async () => {
    // The CLI uses Fleet's default schema ("fleet"); migrating it is idempotent, so concurrent
    // runs sharing the test database are harmless to each other.
    const migrated = await fleet(['store', 'migrate', '--db', pgUrl!]);
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toMatch(/postgres store at .* is migrated and ready/);
    const r = await fleet(['store', 'stats', '--db', pgUrl!, '--tenant', 'nobody', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dialect: 'postgres', tenant: 'nobody', total: 0 });
  });
});

describe('default data directory', () => {
  const home = '/home/ada';
  it('prefers FLEET_DATA_DIR, then the platform directory', () => {
    expect(
      defaultDataDir({ env: { FLEET_DATA_DIR: '/srv/fleet' }, platform: 'linux', homedir: home }),
    ).toBe('/srv/fleet');
    expect(defaultDataDir({ env: {}, platform: 'linux', homedir: home })).toBe(
      '/home/ada/.local/share/fleet',
    );
    expect(
      defaultDataDir({ env: { XDG_DATA_HOME: '/data' }, platform: 'linux', homedir: home }),
    ).toBe('/data/fleet');
    expect(
      defaultDataDir({ env: { XDG_DATA_HOME: 'rel' }, platform: 'linux', homedir: home }),
    ).toBe('/home/ada/.local/share/fleet');
    expect(defaultDataDir({ env: {}, platform: 'darwin', homedir: home })).toBe(
      '/home/ada/Library/Application Support/fleet',
    );
    expect(
      defaultDataDir({
        env: { LOCALAPPDATA: 'C:\\Users\\ada\\AppData\\Local' },
        platform: 'win32',
        homedir: 'C:\\Users\\ada',
      }),
    ).toBe('C:\\Users\\ada\\AppData\\Local\\fleet');
  });
});
