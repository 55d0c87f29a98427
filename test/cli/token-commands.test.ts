import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFleet, serveFleet, terminate } from '../helpers/fleet-process.js';

describe('fleet token', () => {
  it('mints, lists and revokes tokens through a running server, found by its credential file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-token-'));
    const served = await serveFleet(['--data-dir', dir, '--port', '0']);
    const env = { FLEET_DATA_DIR: dir };

    const created = await runFleet(
      ['token', 'create', '--role', 'operator', '--tenant', 'acme', '--name', 'ci'],
      env,
    );
    expect(created.code).toBe(0);
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^fleet_op_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(
      /created operator token \S+ \(tenant acme\); this is the only time/,
    );

    // The new token works on its own (and is refused what only admins may do).
    const asOperator = { FLEET_DATA_DIR: dir, FLEET_TOKEN: secret, FLEET_SERVER: served.url };
    const denied = await runFleet(['token', 'ls'], asOperator);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/error: an operator token cannot do this \(needs admin\)/);

    const listed = await runFleet(['token', 'ls', '--json'], env);
    expect(listed.code).toBe(0);
    const tokens = JSON.parse(listed.stdout) as { id: string; name: string; role: string }[];
    const ci = tokens.find((t) => t.name === 'ci')!;
    expect(ci.role).toBe('operator');
    expect(listed.stdout).not.toContain(secret);
    const human = await runFleet(['token', 'ls'], env);
    expect(human.stdout).toMatch(/^ID\s+ROLE\s+NAME\s+SCOPE\s+PREFIX\s+STATE$/m);
    expect(human.stdout).toMatch(
      new RegExp(`${ci.id}\\s+operator\\s+ci\\s+tenant acme\\s+fleet_op_\\S+…\\s+active`),
    );

    const revoked = await runFleet(['token', 'revoke', ci.id], env);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked operator token ${ci.id} (ci)\n` });
    const after = await runFleet(['token', 'ls'], asOperator);
    expect(after.stderr).toMatch(/token is unknown, revoked or expired/);

    expect((await terminate(served)).code).toBe(0);
  });

  it('says what to do when there is no token or no server', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'fleet-token-'));
    const none = await runFleet(['token', 'ls'], { FLEET_DATA_DIR: empty });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /no token: pass --token, set FLEET_TOKEN, or start Fleet with fleet up/,
    );
    const port = await closedPort();
    const down = await runFleet(
      ['token', 'ls', '--server', `http://127.0.0.1:${port}`, '--token', 'x'],
      { FLEET_DATA_DIR: empty },
    );
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(
      `no server at http://127.0.0.1:${port} — start one with fleet up (or fleet serve)`,
    );
    const badRole = await runFleet(['token', 'create', '--role', 'root', '--token', 'x'], {
      FLEET_DATA_DIR: empty,
    });
    expect(badRole.stderr).toMatch(/--role root: use one of admin, operator, factory, agent/);
    const badExpiry = await runFleet(
      ['token', 'create', '--role', 'admin', '--expires', '30', '--token', 'x'],
      { FLEET_DATA_DIR: empty },
    );
    expect(badExpiry.stderr).toMatch(/--expires .*"30" has no unit/);
  });
});

/** A loopback port nothing listens on (it was just free). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
