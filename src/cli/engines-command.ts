import type { Command } from 'commander';
import { ENGINES, ENGINE_NAMES, probeEngine } from '../engines/index.js';
import type { CliIo } from './io.js';

/** `fleet engines check`: which agent CLIs this machine can run. */
export function registerEnginesCommands(program: Command, io: CliIo): void {
  const engines = program.command('engines').description('the agent CLIs Fleet can run');
  engines
    .command('check')
    .description('probe each engine: is its CLI on PATH, and which version')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const probes = await Promise.all(ENGINE_NAMES.map((n) => probeEngine(ENGINES[n], io.env)));
      if (o.json) return io.out(`${JSON.stringify(probes)}\n`);
      const width = Math.max(...probes.map((p) => p.engine.length));
      for (const p of probes)
        io.out(
          `${p.engine.padEnd(width)}  ${p.problem === null ? `ok  ${p.version} (${p.path})` : `--  ${p.problem}`}\n`,
        );
      io.out(
        'Headless JSON output is not probed here: it needs a model endpoint (the engine tests check it).\n',
      );
    });
}
