import type { Command } from 'commander';
import { createWriteStream, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FleetClient } from '../client/index.js';
import { jobBranch } from '../core/index.js';
import { CliError } from './cli-error.js';
import type { CliIo } from './io.js';
import { paletteFor } from './output/colour.js';
import { type Submitted, overrideEngine, submitWork, waitFor } from './submit-command.js';
import { processStopRequest } from './serve-command.js';
import { packageVersion } from './version.js';
import { type Work, loadWork, prepareWorkspace } from './work-files.js';

interface RunOptions {
  dataDir?: string;
  seats: string;
  engine?: string;
  approve?: boolean;
}

/** How long the local factory may take to stop its runs when the work is over. */
const STOP_DEADLINE_MS = 10_000;

/**
 * `fleet run PLAN|FILE…`: the whole of Fleet for one piece of work. Starts a control plane on
 * embedded SQLite and a local factory in one process, submits the work, shows its progress,
 * prints a summary and stops. Exits 0 only if every job (and the plan) succeeded.
 */
export function registerRunCommand(program: Command, io: CliIo): void {
  program
    .command('run')
    .description('run a plan or job files to the end on a local, embedded Fleet, then stop')
    .argument('<paths...>', 'a plan (plan.yaml or its directory) or job files')
    .option(
      '--data-dir <dir>',
      'keep the database, logs and worktrees here (default: a new temporary directory)',
    )
    .option('--seats <n>', 'jobs run at once', '4')
    .option(
      '--engine <name>',
      'run every job with this engine (e.g. claude-code) instead of its own',
    )
    .option('--approve', 'approve every phase that waits for a person, instead of waiting')
    .action((paths: string[], o: RunOptions) => run(paths, o, io));
}

async function run(paths: string[], o: RunOptions, io: CliIo): Promise<void> {
  const seats = Number(o.seats);
  if (!Number.isInteger(seats) || seats < 1 || seats > 256)
    throw new CliError(`--seats must be a whole number from 1 to 256, not "${o.seats}"`);
  // Everything is read and checked before anything starts: a bad file starts nothing.
  const work = loadWork(paths, io);
  if (o.engine !== undefined) overrideEngine(work.drafts, o.engine);
  const dataDir =
    o.dataDir === undefined
      ? mkdtempSync(join(tmpdir(), 'fleet-run-'))
      : resolve(io.cwd, o.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const workspace = await prepareWorkspace(work, dataDir);

  // Loaded here: the other commands do not need the server and the daemon.
  const { createServerLogger } = await import('../server/logger.js');
  const { startServer } = await import('../server/run-server.js');
  const { startFactory } = await import('../factory/daemon.js');
  const logPath = join(dataDir, 'fleet.log');
  const logFile = createWriteStream(logPath, { flags: 'a' });
  const logger = createServerLogger({
    write: (line) => void logFile.write(line),
    level: io.env.FLEET_LOG_LEVEL === undefined ? 'info' : (io.env.FLEET_LOG_LEVEL as 'info'),
  });
  const p = paletteFor(io);
  const server = await startServer({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    leaseTtlMs: 30_000,
    logger: logger.child({ process: 'server' }),
    version: packageVersion(),
    planIntervalMs: 100,
  });
  const { token } = server.credentials.credentials;
  let factory: Awaited<ReturnType<typeof startFactory>> | null = null;
  try {
    factory = await startFactory({
      server: server.url,
      token,
      name: 'local',
      seats,
      capabilities: [],
      workDir: join(dataDir, 'factory'),
      logger: logger.child({ process: 'factory' }),
      pollMs: 500,
      version: packageVersion(),
    });
    const client = new FleetClient({ baseUrl: server.url, token });
    const submitted = await submitWork(client, work);
    io.out(header(work, submitted, { dataDir, server: server.url, workspace, p }));
    // Ctrl-C cancels the work (running agents stop, their work is checkpointed); the summary
    // still prints. A second Ctrl-C quits at once.
    const stop = processStopRequest();
    void stop.requested.then(async (signal) => {
      io.err(`\n${signal}: cancelling the work (press Ctrl-C again to quit at once)\n`);
      const targets = submitted.plan === null ? submitted.jobs : [submitted.plan];
      for (const job of targets)
        await client.cancelJob(job.id, 'cancelled_by_user').catch(() => undefined);
    });
    await waitFor(client, submitted, io, {
      autoApprove: o.approve === true,
      approveHint: (id) => `fleet approve ${id} --data-dir ${dataDir}  (or fleet reject)`,
      // The server stops with this command: looking closer means serving the data dir again.
      inspectHint: (ref) =>
        `for the whole transcript: fleet serve --data-dir ${dataDir} --port 0, then fleet logs ${ref} --data-dir ${dataDir}`,
    }).finally(async () => {
      stop.dispose();
      if (submitted.plan !== null)
        await saveReports(client, submitted.plan.id, dataDir, workspace, io);
      io.out(
        `${p.dim('data')}    ${dataDir} ${p.dim(`(database, fleet.log, worktrees of failed runs)`)}\n`,
      );
    });
  } finally {
    await factory?.shutdown(STOP_DEADLINE_MS);
    await server.stop();
    await new Promise<void>((done) => logFile.end(done));
  }
}

function header(
  work: Work,
  submitted: Submitted,
  where: {
    dataDir: string;
    server: string;
    workspace: string | null;
    p: ReturnType<typeof paletteFor>;
  },
): string {
  const { p } = where;
  const what =
    work.kind === 'plan'
      ? `plan ${p.bold(work.plan.name)}: ${work.plan.phases.length} phases, ${submitted.jobs.length} jobs (gates included)`
      : `${submitted.jobs.length} job${submitted.jobs.length === 1 ? '' : 's'}`;
  const lines = [
    `Running ${what} on a local Fleet (${where.server}, SQLite in ${where.dataDir})`,
    ...(where.workspace === null
      ? []
      : [`${p.dim('workspace')} ${where.workspace} (a scratch git repository)`]),
  ];
  return `${lines.join('\n')}\n\n`;
}

/** Writes the plan's phase reports to `<data dir>/reports/`, and says where they are. */
async function saveReports(
  client: FleetClient,
  planId: string,
  dataDir: string,
  workspace: string | null,
  io: CliIo,
): Promise<void> {
  const detail = await client.getPlan(planId).catch(() => null);
  if (detail === null || detail.reports.length === 0) return;
  const dir = join(dataDir, 'reports');
  mkdirSync(dir, { recursive: true });
  for (const report of detail.reports) {
    const bytes = await client.readArtifact(report.id);
    writeFileSync(join(dir, report.name), bytes);
  }
  io.out(`reports ${detail.reports.map((r) => join(dir, r.name)).join(', ')}\n`);
  const last = detail.state.phases.at(-1);
  if (last !== undefined && detail.plan.stage === 'succeeded') {
    const where = workspace === null ? '' : ` in ${workspace}`;
    io.out(
      `result  branch ${jobBranch(last.gate)}${where} (every phase, merged by the last gate)\n`,
    );
    if (workspace !== null)
      io.out(`look    git -C ${workspace} log --oneline --graph ${jobBranch(last.gate)}\n`);
  }
}
