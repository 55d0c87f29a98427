#!/usr/bin/env node
// The outer edge of the `fleet` command: the one place that reads process.argv and exits.
import { runCli } from './run.js';

const code = await runCli(process.argv, {
  env: process.env,
  cwd: process.cwd(),
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
});
process.exitCode = code;
// Commands close what they open; should a handle linger anyway, exit rather than hang.
setTimeout(() => process.exit(code), 1_000).unref();
