import { spawn } from 'node:child_process';

export interface PgbenchResult {
  tps: number | null;
  /** Why `tps` is null. */
  reason?: string;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

class MissingBinary extends Error {}

/** The pgbench connection flags and environment for a `postgres://` URL. */
export function pgbenchConnection(url: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const args: string[] = [];
  if (u.hostname !== '') args.push('-h', u.hostname.replace(/^\[(.*)\]$/, '$1'));
  if (u.port !== '') args.push('-p', u.port);
  if (u.username !== '') args.push('-U', decodeURIComponent(u.username));
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (u.password !== '') env.PGPASSWORD = decodeURIComponent(u.password);
  const sslmode = u.searchParams.get('sslmode');
  if (sslmode !== null) env.PGSSLMODE = sslmode;
  if (db !== '') args.push(db);
  return { args, env };
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('pgbench', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new MissingBinary('pgbench is not on PATH') : err),
    );
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function failed(step: string, r: Run): string {
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join(' | ');
  return `pgbench ${step} exited with ${r.code}: ${text}`;
}

/**
 * The physical baseline: pgbench's simple-update (-N) TPS against the same database, scale 1,
 * in its default (public) schema. Its tables are dropped afterwards. Never throws: a missing
 * binary or a failing run gives `tps: null` with the reason.
 */
export async function runPgbench(
  url: string,
  clients: number,
  seconds: number,
  progress: (line: string) => void,
): Promise<PgbenchResult> {
  let conn: ReturnType<typeof pgbenchConnection>;
  try {
    conn = pgbenchConnection(url);
  } catch (err) {
    return { tps: null, reason: `bad --pg-url: ${String(err)}` };
  }
  const { args, env } = conn;
  try {
    progress('pgbench: initialising scale 1 (pgbench -i -q -s 1)');
    const init = await run(['-i', '-q', '-s', '1', ...args], env);
    if (init.code !== 0) return { tps: null, reason: failed('-i', init) };
    try {
      const threads = Math.min(2, clients);
      progress(`pgbench: -n -N -c ${clients} -j ${threads} -T ${seconds}`);
      const bench = await run(
        ['-n', '-N', '-c', String(clients), '-j', String(threads), '-T', String(seconds), ...args],
        env,
      );
      if (bench.code !== 0) return { tps: null, reason: failed('run', bench) };
      const m = /^tps = ([0-9.]+)/m.exec(bench.stdout);
      if (m === null) return { tps: null, reason: `no "tps = " line in: ${bench.stdout.trim()}` };
      return { tps: Number(m[1]) };
    } finally {
      const drop = await run(['-i', '-I', 'd', ...args], env);
      if (drop.code !== 0) progress(`warning: ${failed('-i -I d (cleanup)', drop)}`);
    }
  } catch (err) {
    return { tps: null, reason: err instanceof MissingBinary ? err.message : String(err) };
  }
}
