#!/usr/bin/env node
// The outer edge of the `fleet` command: the one place that reads process.argv and exits.
import { runCli } from './run.js';

// Under `fleet up` (FLEET_SUPERVISED=1 and an IPC channel to the supervisor): stop gracefully,
// as on SIGTERM, when the supervisor goes away, even if it was killed with SIGKILL. Its pipes
// are gone then too: a failed write must not crash the graceful stop.
if (process.env.FLEET_SUPERVISED === '1' && process.channel !== undefined) {
  process.channel.unref();
  process.once('disconnect', () => {
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
    process.kill(process.pid, 'SIGTERM');
  });
}

const code = await runCli(process.argv, {
  env: process.env,
  cwd: process.cwd(),
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  isTTY: { out: process.stdout.isTTY === true, err: process.stderr.isTTY === true },
});
process.exitCode = code;
// Commands close what they open; should a handle linger anyway, exit rather than hang.
setTimeout(() => process.exit(code), 1_000).unref();
