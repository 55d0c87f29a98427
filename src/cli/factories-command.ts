import type { Command } from 'commander';
import { ACTIVE_STAGES, type Factory, type Job } from '../core/index.js';
import type { CliIo } from './io.js';
import { type Palette, paletteFor } from './output/colour.js';
import { relativeTime, table } from './output/format.js';
import { type ConnectionOptions, calling, connect, connectionFlags } from './server-connection.js';

interface FactoriesOptions extends ConnectionOptions {
  json?: boolean;
}

/** Active jobs read to count busy seats; a fleet with more running jobs shows a lower bound. */
const ACTIVE_LIMIT = 1000;

/** `fleet factories`: the factories that run jobs, their seats and when they were last heard. */
export function registerFactoriesCommand(program: Command, io: CliIo): void {
  connectionFlags(program.command('factories'))
    .description('list factories: status, seats in use, capabilities, last heartbeat')
    .option('--json', 'print the factories as JSON')
    .action(async (o: FactoriesOptions) => {
      const client = connect(o, io);
      const factories = await calling(() => client.listFactories());
      if (o.json) return io.out(`${JSON.stringify(factories)}\n`);
      if (factories.length === 0)
        return io.out('no factories — start one with fleet factory (or fleet up)\n');
      const active = await calling(() =>
        client.listJobs({ stage: ACTIVE_STAGES, limit: ACTIVE_LIMIT }),
      );
      io.out(renderFactories(factories, active.items, paletteFor(io)));
    });
}

/** The factories table; `active` are the jobs holding a lease (they fill the seats). */
export function renderFactories(
  factories: readonly Factory[],
  active: readonly Job[],
  p: Palette,
  now: number = Date.now(),
): string {
  const busy = new Map<string, number>();
  for (const job of active) {
    const holder = job.lease?.holderFactoryId;
    if (holder !== undefined) busy.set(holder, (busy.get(holder) ?? 0) + 1);
  }
  const status = (s: Factory['status']) =>
    s === 'online' ? p.green(s) : s === 'draining' ? p.yellow(s) : p.dim(s);
  const rows = factories.map((f) => [
    f.name,
    status(f.status),
    `${busy.get(f.id) ?? 0}/${f.seats}`,
    f.capabilities.length === 0 ? p.dim('-') : f.capabilities.join(','),
    f.lastSeenAt === null ? p.dim('never') : relativeTime(f.lastSeenAt, now),
    f.version,
    p.dim(f.id),
  ]);
  return table(['NAME', 'STATUS', 'SEATS', 'CAPABILITIES', 'LAST SEEN', 'VERSION', 'ID'], rows);
}
