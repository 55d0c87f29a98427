import type { Command } from 'commander';
import { ENGINES, ENGINE_NAMES, probeEngine, type EngineProbe } from '../engines/index.js';
import { wholeNumber } from './cli-error.js';
import type { CliIo } from './io.js';

interface CheckOptions {
  json?: boolean;
  /** False with `--no-probe`. */
  probe: boolean;
  probeTimeout: string;
}

/**
 * `fleet engines check`: which agent CLIs this machine can run. For each engine: is its CLI on
 * PATH, which version, and (unless `--no-probe`) does its headless JSON output work, checked
 * against a loopback endpoint that drops every connection, so no model is called. The exit code
 * is 0 whatever it finds: the report is the answer.
 */
export function registerEnginesCommands(program: Command, io: CliIo): void {
  const engines = program.command('engines').description('the agent CLIs Fleet can run');
  engines
    .command('check')
    .description(
      'probe each engine: is its CLI on PATH, which version, does its headless JSON output work ' +
        '(run against a dead loopback endpoint: no model is called)',
    )
    .option('--json', 'print JSON')
    .option('--no-probe', 'skip the JSON output probe (PATH and version only)')
    .option('--probe-timeout <ms>', 'stop a CLI the JSON probe runs after this long', '20000')
    .action(async (o: CheckOptions) => {
      const jsonTimeoutMs = wholeNumber('--probe-timeout', o.probeTimeout, 100, 600_000);
      const probes = await Promise.all(
        ENGINE_NAMES.map((n) => probeEngine(ENGINES[n], io.env, { json: o.probe, jsonTimeoutMs })),
      );
      if (o.json) return io.out(`${JSON.stringify(probes)}\n`);
      const width = Math.max(...probes.map((p) => p.engine.length));
      for (const p of probes) {
        io.out(
          `${p.engine.padEnd(width)}  ${p.problem === null ? `ok  ${p.version} (${p.path})` : `--  ${p.problem}`}\n`,
        );
        const json = jsonLine(p);
        if (json !== null) io.out(`${' '.repeat(width + 2)}${json}\n`);
      }
      io.out(
        o.probe
          ? 'JSON output was probed with each CLI pointed at a loopback port that drops every connection: no model was called, no credential used.\n'
          : 'Headless JSON output was not probed (--no-probe).\n',
      );
    });
}

/** The second line of an engine's entry: its JSON probe's verdict, or null when not probed. */
function jsonLine(p: EngineProbe): string | null {
  if (p.json === null) return null;
  if (p.json.ok === null) return p.json.detail;
  const took = `(${(p.json.ms / 1000).toFixed(1)} s)`;
  return p.json.ok ? `${p.json.detail} ${took}` : `JSON not ok: ${p.json.detail} ${took}`;
}
