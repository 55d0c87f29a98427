import type { Command } from 'commander';
import { TokenRole, parseDuration, type Token } from '../core/index.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './io.js';
import { type ConnectionOptions, calling, connect, connectionFlags } from './server-connection.js';

interface CreateOptions extends ConnectionOptions {
  role: string;
  name?: string;
  tenant: string[];
  job?: string;
  expires?: string;
  json?: boolean;
}

interface ListOptions extends ConnectionOptions {
  json?: boolean;
  tenant?: string;
}

/** `fleet token create|ls|revoke`: bearer tokens for people, factories and agents (admin). */
export function registerTokenCommands(program: Command, io: CliIo): void {
  const token = program.command('token').description('manage API tokens (needs an admin token)');

  connectionFlags(token.command('create'))
    .description('mint a token; its secret is printed once and never again')
    .requiredOption('--role <role>', `one of ${TokenRole.options.join(', ')}`)
    .option('--name <name>', 'what the token is for (default: the role)')
    .option('--tenant <tenant>', 'a tenant it may act in (repeat for a factory token)', collect, [])
    .option('--job <id>', 'the job an agent token is scoped to')
    .option('--expires <duration>', 'lifetime, e.g. 30d or 12h (default: never)')
    .option('--json', 'print JSON')
    .action(async (o: CreateOptions) => {
      const role = TokenRole.safeParse(o.role);
      if (!role.success)
        throw new CliError(`--role ${o.role}: use one of ${TokenRole.options.join(', ')}`);
      const expiresAt = o.expires === undefined ? null : Date.now() + duration(o.expires);
      const created = await calling(() =>
        connect(o, io).createToken({
          name: o.name ?? role.data,
          role: role.data,
          tenants: o.tenant,
          jobId: o.job ?? null,
          expiresAt,
        }),
      );
      if (o.json) return io.out(`${JSON.stringify(created)}\n`);
      io.out(`${created.secret}\n`);
      io.err(
        `created ${created.token.role} token ${created.token.id} (${describe(created.token)}); ` +
          'this is the only time the secret is shown\n',
      );
    });

  connectionFlags(token.command('ls'))
    .description('list tokens (never their secrets)')
    .option('--tenant <tenant>', 'tokens made in this tenant only')
    .option('--json', 'print JSON')
    .action(async (o: ListOptions) => {
      const tokens = await calling(() =>
        connect(o, io).listTokens(o.tenant === undefined ? {} : { tenant: o.tenant }),
      );
      if (o.json) return io.out(`${JSON.stringify(tokens)}\n`);
      if (tokens.length === 0) return io.out('no tokens\n');
      const rows = tokens.map((t) => [
        t.id,
        t.role,
        t.name,
        describe(t),
        t.prefix + '…',
        t.revokedAt === null ? 'active' : `revoked ${new Date(t.revokedAt).toISOString()}`,
      ]);
      io.out(table(['ID', 'ROLE', 'NAME', 'SCOPE', 'PREFIX', 'STATE'], rows));
    });

  connectionFlags(token.command('revoke'))
    .description('revoke a token; requests with it are refused from now on')
    .argument('<id>', 'the token id (see fleet token ls)')
    .action(async (id: string, o: ConnectionOptions) => {
      const revoked = await calling(() => connect(o, io).revokeToken(id));
      io.out(`revoked ${revoked.role} token ${revoked.id} (${revoked.name})\n`);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function duration(text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new CliError(`--expires ${(err as Error).message.replace(/^invalid duration: /, '')}`);
  }
}

function describe(t: Token): string {
  const where = t.tenants.length === 0 ? 'all tenants' : `tenant ${t.tenants.join(', ')}`;
  return t.jobId === null ? where : `${where}, job ${t.jobId}`;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
