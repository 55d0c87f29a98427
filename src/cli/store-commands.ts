import type { Command } from 'commander';
import { JOB_STAGES, type JobStage } from '../core/index.js';
import type { CliIo } from './io.js';
import { openCliStore } from './open-cli-store.js';
import { storeTarget, type StoreOptionValues, type StoreTarget } from './store-target.js';

interface StatsOptions extends StoreOptionValues {
  tenant?: string;
  json?: boolean;
}

function withStoreOptions(command: Command): Command {
  return command
    .option('--db <path|url>', 'SQLite file or postgres:// URL (default: <data dir>/fleet.db)')
    .option(
      '--data-dir <dir>',
      'data directory (default: $FLEET_DATA_DIR or the platform data dir)',
    );
}

/** `fleet store …`: look after the store itself. */
export function registerStoreCommands(program: Command, io: CliIo): void {
  const store = program.command('store').description('manage the job store');

  withStoreOptions(store.command('migrate'))
    .description('create the store or bring its schema up to date')
    .action(async (options: StoreOptionValues) => {
      const target = storeTarget(options, io);
      const opened = await openCliStore(target);
      await opened.close();
      io.out(`${target.dialect} store at ${target.location} is migrated and ready\n`);
    });

  withStoreOptions(store.command('stats'))
    .description('count jobs by stage')
    .option('--tenant <tenant>', 'count one tenant only (default: all tenants)')
    .option('--json', 'print JSON')
    .action(async (options: StatsOptions) => {
      const target = storeTarget(options, io);
      const opened = await openCliStore(target);
      let counts: Record<JobStage, number>;
      try {
        counts = await opened.countJobs(options.tenant);
      } finally {
        await opened.close();
      }
      io.out(formatStats(target, options.tenant, counts, options.json === true));
    });
}

function formatStats(
  target: StoreTarget,
  tenant: string | undefined,
  counts: Record<JobStage, number>,
  json: boolean,
): string {
  const total = JOB_STAGES.reduce((sum, stage) => sum + counts[stage], 0);
  if (json) {
    const { dialect, location } = target;
    return `${JSON.stringify({ dialect, location, tenant: tenant ?? null, counts, total })}\n`;
  }
  const scope = tenant === undefined ? 'all tenants' : `tenant ${tenant}`;
  const rows = [...JOB_STAGES, 'total'].map((label) => {
    const n = label === 'total' ? total : counts[label as JobStage];
    return `  ${label.padEnd(10)} ${String(n).padStart(8)}`;
  });
  return `${target.dialect} store at ${target.location}, ${scope}\n${rows.join('\n')}\n`;
}
