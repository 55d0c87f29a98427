import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Store } from '../src/store/index.js';
import { BENCH_TENANT } from './burn-down.js';
import type { BenchServer } from './server.js';

/** The repository root (bench/..). */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Linux clock ticks per second for /proc/<pid>/stat utime and stime (getconf CLK_TCK). */
const CLK_TCK = 100;
const SAMPLE_MS = 500;
/** The footprint's steady window begins this long after the last agent started. */
export const SETTLE_MS = 2000;

export interface FootprintConfig {
  agents: number;
  /** How long each stand-in agent prints. */
  seconds: number;
  /** Lines per second per agent. */
  linesPerSec: number;
  /** Node flags for the factory child, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  nodeFlags: string[];
  /** The CLI the factory child runs: a .ts file runs under tsx, a .js file (dist) as is. */
  entry: string;
}

export interface FootprintResult {
  agents: number;
  /** Seconds all agents ran at once (the sampled window). */
  windowSeconds: number;
  samples: number;
  maxRssMb: number;
  /** From SETTLE_MS after all agents run until the first ends: the steady state. */
  avgCpuPct: number;
  /** The same from the moment all agents run, their last start-ups included. */
  wholeCpuPct: number;
  maxCpuPct: number;
  /** The agent guards (one small sh watcher per agent, beside it). */
  guardsMaxRssMb: number;
  guardsAvgCpuPct: number;
  eventsStored: number;
}

export interface BaselineResult {
  /** CPU (% of one core) of a bare Node process reading the same agents' pipes. */
  avgCpuPct: number;
  maxRssMb: number;
  windowSeconds: number;
  lines: number;
}

export interface FloodConfig {
  /** Lines per second the generator aims at. */
  linesPerSec: number;
  /**
   * The job's newest event seq, read cheaply (SQLite: max(seq) on a read-only connection).
   * Without it the poll reads every stored event back, which costs the server's process as
   * much as storing them and slows the ingest it measures.
   */
  lastSeq?: (jobId: string) => number;
  seconds: number;
  nodeFlags: string[];
  entry: string;
}

export interface FloodResult {
  linesSent: number;
  eventsStored: number;
  /**
   * Events stored per second, polled from the store every 100 ms: between the first poll that
   * saw some and the first that saw all. The generator paces to `linesPerSec`, so this cannot
   * exceed it by much; it falls short when the factory or server does not keep up.
   */
  eventsPerSec: number;
  ingestSeconds: number;
  seconds: number;
  leaseTtlMs: number;
  minLeaseHeadroomMs: number;
  renewals: number;
  maxRssMb: number;
  avgCpuPct: number;
  succeeded: boolean;
}

/** About 300 bytes: an assistant text line as Claude Code's stream-json prints it. */
const CLAUDE_LINE =
  '{"type":"assistant","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message",' +
  '"role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Reading ' +
  'src/server/factory/factory-session.ts to see how the events lane fences each batch; next: ' +
  'run the tests."}],"stop_reason":null,"usage":{"input_tokens":2048,"output_tokens":42}},' +
  '"session_id":"9b7e3c1a-4f2d-4e8b-a1c6-d2f0e5b7c9a3"}';

/**
 * A bash stand-in agent: `perTick` lines every `tickMs`, `ticks` times, paced against the
 * clock ($EPOCHREALTIME) so the rate holds however long printing takes. Bursts over 100 lines
 * come from `yes | head` (one write per pipe buffer), smaller ones from printf.
 */
export function standInScript(perTick: number, tickMs: number, ticks: number): string {
  const line = CLAUDE_LINE.replace(/'/g, "'\\''");
  const burst =
    perTick > 100
      ? `yes "$L" | head -n ${perTick}`
      : `for ((k=0; k<${perTick}; k++)); do printf '%s\\n' "$L"; done`;
  return [
    `L='${line}'`,
    's=${EPOCHREALTIME/./}',
    `for ((t=1; t<=${ticks}; t++)); do`,
    `  ${burst}`,
    `  d=$(( s + t*${tickMs * 1000} - \${EPOCHREALTIME/./} ))`,
    `  if (( d > 0 )); then sleep "$(printf '%d.%06d' $((d/1000000)) $((d%1000000)))"; fi`,
    'done',
  ].join('\n');
}

interface Sample {
  at: number;
  /** utime + stime in clock ticks. */
  ticks: number;
  rssKb: number;
}

async function readSample(pid: number): Promise<Sample | null> {
  try {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile(`/proc/${pid}/status`, 'utf8'),
    ]);
    // Fields after the command (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const rss = /VmRSS:\s+(\d+)/.exec(status);
    return {
      at: performance.now(),
      ticks: Number(f[11]) + Number(f[12]),
      rssKb: rss === null ? 0 : Number(rss[1]),
    };
  } catch {
    return null; // gone
  }
}

/** The direct children of `pid`. */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const kids: number[] = [];
  for (const t of tasks) {
    const text = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    for (const p of text.trim().split(/\s+/)) if (p !== '') kids.push(Number(p));
  }
  return kids;
}

/**
 * The daemon's agent guards: its children and grandchildren whose command line names
 * `fleet-agent-guard` (the sh watcher forked beside each agent; formerly a Node process
 * between the daemon and each agent).
 */
async function guardsOf(pid: number): Promise<number[]> {
  const children = await childrenOf(pid);
  const grandchildren = (await Promise.all(children.map(childrenOf))).flat();
  const guards: number[] = [];
  for (const p of [...children, ...grandchildren]) {
    const cmdline = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('fleet-agent-guard')) guards.push(p);
  }
  return guards;
}

/** The sum over `pids`: their RSS and their utime + stime. */
async function sumSamples(pids: number[]): Promise<{ ticks: number; rssKb: number }> {
  const all = await Promise.all(pids.map(readSample));
  let ticks = 0;
  let rssKb = 0;
  for (const s of all) {
    if (s === null) continue;
    ticks += s.ticks;
    rssKb += s.rssKb;
  }
  return { ticks, rssKb };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface FactoryChild {
  child: ChildProcess;
  pid: number;
  stderr: () => string;
  stop(): Promise<void>;
}

/**
 * The real `fleet factory` as a child process (`entry`: by default the built
 * dist/cli/main.js, as `fleet` runs it; a .ts entry runs under tsx), with its own work and data
 * directories; resolves once it printed its control socket line.
 */
async function launchFactory(
  server: BenchServer,
  seats: number,
  dir: string,
  nodeFlags: string[],
  entry: string,
): Promise<FactoryChild> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    FLEET_TOKEN: server.factoryToken,
    FLEET_LOG_LEVEL: 'info',
  };
  delete env.FLEET_SERVER;
  const child = spawn(
    process.execPath,
    [
      ...nodeFlags,
      ...(entry.endsWith('.ts') ? ['--import', 'tsx'] : []),
      resolve(ROOT, entry),
      'factory',
      '--server',
      server.baseUrl,
      '--name',
      'bench-footprint',
      '--seats',
      String(seats),
      '--work-dir',
      join(dir, 'work'),
      '--data-dir',
      dir,
      '--poll-ms',
      '200',
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  // Keep only the tail: the daemon logs a line per claim and report.
  child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 30_000;
  while (!/control socket/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`the factory did not start:\n${err}`);
    await sleep(50);
  }
  return {
    child,
    pid: child.pid!,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 40_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function countLogEvents(store: Store, jobId: string): Promise<number> {
  let count = 0;
  let afterSeq = 0;
  for (;;) {
    const page = await store.readEvents(BENCH_TENANT, jobId, { afterSeq, limit: 10_000 });
    if (page.length === 0) return count;
    for (const e of page) if (e.type === 'log') count++;
    afterSeq = page[page.length - 1]!.seq;
  }
}

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * The bare reader: a plain Node process (no tsx, no Fleet code) that spawns the same stand-in
 * agents through bash and reads their stdout and stderr, counting newlines and nothing else.
 * It is the floor any Node daemon pays to watch these pipes; the footprint is reported beside
 * it as a ratio, measured in the same run on the same machine.
 */
const BARE_READER = `
const { spawn } = require('node:child_process');
const [agents, script] = [Number(process.argv[1]), process.argv[2]];
let lines = 0, open = agents;
const count = (chunk) => { for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++; };
for (let i = 0; i < agents; i++) {
  const c = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  c.stdout.on('data', count);
  c.stderr.on('data', count);
  c.on('close', () => { if (--open === 0) { process.stdout.write('done ' + lines + '\\n'); } });
}
process.stdout.write('running\\n');
`;

/**
 * Runs the bare reader over `agents` stand-ins printing `linesPerSec` for `seconds`, and
 * samples its CPU from 1 s after all started until 1 s before they end.
 */
export async function bareReaderBaseline(
  config: Pick<FootprintConfig, 'agents' | 'seconds' | 'linesPerSec'>,
  progress: (line: string) => void,
): Promise<BaselineResult> {
  const tickMs = 200;
  const perTick = Math.max(1, Math.round((config.linesPerSec * tickMs) / 1000));
  const script = standInScript(perTick, tickMs, Math.round((config.seconds * 1000) / tickMs));
  const child = spawn(process.execPath, ['-e', BARE_READER, String(config.agents), script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await until('the bare reader to start', async () => out.includes('running'), 30_000);
    await sleep(1000);
    const first = await readSample(child.pid!);
    if (first === null) throw new Error('the bare reader exited early');
    let last = first;
    let maxRssKb = first.rssKb;
    const end = first.at + (config.seconds - 2) * 1000;
    while (performance.now() < end) {
      await sleep(SAMPLE_MS);
      const s = await readSample(child.pid!);
      if (s === null) break;
      last = s;
      maxRssKb = Math.max(maxRssKb, s.rssKb);
    }
    await until('the bare reader to finish', async () => out.includes('done'), 60_000);
    const windowSeconds = (last.at - first.at) / 1000;
    const avgCpuPct = ((last.ticks - first.ticks) / CLK_TCK / windowSeconds) * 100;
    const lines = Number(/done (\d+)/.exec(out)?.[1] ?? 0);
    progress(
      `  bare reader: CPU avg ${avgCpuPct.toFixed(1)} % over ${windowSeconds.toFixed(1)} s, ` +
        `${lines} lines read`,
    );
    return { avgCpuPct, maxRssMb: maxRssKb / 1024, windowSeconds, lines };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Footprint: `agents` shell jobs at once on one real factory (seats = agents), each a stand-in
 * agent printing Claude-like JSON lines at `linesPerSec` for `seconds`, in its own temp dir
 * outside git (so the runs work in place: no worktree cost). Samples the factory process's
 * RSS and CPU every 500 ms while all agents run, and, apart, its agent guards'.
 */
export async function factoryFootprint(
  store: Store,
  server: BenchServer,
  config: FootprintConfig,
  progress: (line: string) => void,
): Promise<FootprintResult> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-bench-footprint-'));
  try {
    const factory = await launchFactory(server, config.agents, dir, config.nodeFlags, config.entry);
    try {
      const tickMs = 200;
      const perTick = Math.max(1, Math.round((config.linesPerSec * tickMs) / 1000));
      const script = standInScript(perTick, tickMs, Math.round((config.seconds * 1000) / tickMs));
      const specs = [];
      for (let i = 0; i < config.agents; i++) {
        const cwd = await mkdtemp(join(dir, `agent-${i}-`));
        specs.push({ tenant: BENCH_TENANT, bodyMd: script, engine: 'shell', manifest: { cwd } });
      }
      const jobs = await store.enqueue(specs);
      const ids = jobs.map((j) => j.job.id);
      const running = async () => (await store.countJobs(BENCH_TENANT)).running;

      await until('all agents running', async () => (await running()) >= config.agents, 30_000);
      progress(`  all ${config.agents} agents running; sampling every ${SAMPLE_MS} ms`);
      const start = await readSample(factory.pid);
      // The last runs' start-up (workspace, spawn) still costs right after the 50th is
      // running: the steady window begins SETTLE_MS later; the whole one is reported too.
      await sleep(SETTLE_MS);
      const first = await readSample(factory.pid);
      let guards = await guardsOf(factory.pid);
      const guardsFirst = await sumSamples(guards);
      let last = first!;
      let guardsLast = guardsFirst;
      let maxRssKb = first!.rssKb;
      let guardsMaxRssKb = guardsFirst.rssKb;
      let maxCpuPct = 0;
      let samples = 1;
      for (;;) {
        await sleep(SAMPLE_MS);
        if ((await running()) < config.agents) break;
        const s = await readSample(factory.pid);
        if (s === null) throw new Error(`the factory exited:\n${factory.stderr()}`);
        guards = await guardsOf(factory.pid);
        const g = await sumSamples(guards);
        const cpuPct = ((s.ticks - last.ticks) / CLK_TCK / ((s.at - last.at) / 1000)) * 100;
        if (process.env.FLEET_BENCH_SAMPLES) progress(`    sample ${cpuPct.toFixed(1)} %`);
        maxCpuPct = Math.max(maxCpuPct, cpuPct);
        last = s;
        guardsLast = g;
        samples++;
        maxRssKb = Math.max(maxRssKb, s.rssKb);
        guardsMaxRssKb = Math.max(guardsMaxRssKb, g.rssKb);
      }
      const windowSeconds = (last.at - first!.at) / 1000;
      const avgCpuPct = ((last.ticks - first!.ticks) / CLK_TCK / windowSeconds) * 100;
      const wholeCpuPct =
        ((last.ticks - start!.ticks) / CLK_TCK / ((last.at - start!.at) / 1000)) * 100;
      // Guards that exited in the window take their ticks with them: a lower bound.
      const guardsAvgCpuPct =
        (Math.max(0, guardsLast.ticks - guardsFirst.ticks) / CLK_TCK / windowSeconds) * 100;
      progress(
        `  window ${windowSeconds.toFixed(1)} s: factory max RSS ${(maxRssKb / 1024).toFixed(1)} MB, ` +
          `CPU avg ${avgCpuPct.toFixed(1)} % (max ${maxCpuPct.toFixed(1)} %; ` +
          `${wholeCpuPct.toFixed(1)} % counting the first ${SETTLE_MS / 1000} s); ` +
          `${guards.length} guards: ${(guardsMaxRssKb / 1024).toFixed(0)} MB RSS, ` +
          `${guardsAvgCpuPct.toFixed(1)} % CPU`,
      );

      await until(
        'all agents done',
        async () => (await store.countJobs(BENCH_TENANT)).succeeded >= config.agents,
        config.seconds * 1000 + 60_000,
      );
      let eventsStored = 0;
      for (const id of ids) eventsStored += await countLogEvents(store, id);
      return {
        agents: config.agents,
        windowSeconds,
        samples,
        maxRssMb: maxRssKb / 1024,
        avgCpuPct,
        wholeCpuPct,
        maxCpuPct,
        guardsMaxRssMb: guardsMaxRssKb / 1024,
        guardsAvgCpuPct,
        eventsStored,
      };
    } finally {
      await factory.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Flood: one shell job printing `linesPerSec` Claude-like lines per second for `seconds`
 * (bursts of `yes | head` every 100 ms), in a temp dir outside git, on a server whose lease
 * TTL is `leaseTtlMs`. Polls the job's lease in the store every 100 ms: the least time left
 * before `expiresAt` seen (a lower bound of the headroom at each renewal) and the renewals.
 */
export async function factoryFlood(
  store: Store,
  server: BenchServer,
  leaseTtlMs: number,
  config: FloodConfig,
  progress: (line: string) => void,
): Promise<FloodResult> {
  const dir = await mkdtemp(join(tmpdir(), 'fleet-bench-flood-'));
  try {
    const factory = await launchFactory(server, 1, dir, config.nodeFlags, config.entry);
    try {
      const tickMs = 100;
      const perTick = Math.round((config.linesPerSec * tickMs) / 1000);
      const ticks = Math.round((config.seconds * 1000) / tickMs);
      const cwd = await mkdtemp(join(dir, 'agent-'));
      const [enqueued] = await store.enqueue([
        {
          tenant: BENCH_TENANT,
          bodyMd: standInScript(perTick, tickMs, ticks),
          engine: 'shell',
          manifest: { cwd },
        },
      ]);
      const id = enqueued!.job.id;

      let minHeadroomMs = Infinity;
      let renewals = 0;
      let runningAt: number | null = null;
      let doneAt: number | null = null;
      let stage = 'queued';
      let first: Sample | null = null;
      let last: Sample | null = null;
      let maxRssKb = 0;
      let nextSample = 0;
      // Stored log events, counted incrementally as they land: the ingest rate is taken
      // between the first poll that saw some and the poll that saw the last of them.
      let stored = 0;
      let afterSeq = 0;
      let firstSeen: { at: number; count: number } | null = null;
      let allSeenAt: number | null = null;
      const linesSent = perTick * ticks;
      const end = Date.now() + config.seconds * 1000 + 120_000;
      while (Date.now() < end) {
        const job = await store.getJob(BENCH_TENANT, id);
        const now = Date.now();
        if (allSeenAt === null) {
          if (config.lastSeq !== undefined) {
            // The newest seq: the events stored so far, counted without reading them back (the
            // few non-log events of the run make it a handful high, out of half a million).
            stored = config.lastSeq(id);
          } else {
            for (;;) {
              const page = await store.readEvents(BENCH_TENANT, id, { afterSeq, limit: 10_000 });
              for (const e of page) if (e.type === 'log') stored++;
              if (page.length > 0) afterSeq = page[page.length - 1]!.seq;
              if (page.length < 10_000) break;
            }
          }
          const at = performance.now();
          if (firstSeen === null && stored > 0) firstSeen = { at, count: stored };
          if (stored >= linesSent) allSeenAt = at;
        }
        stage = job!.stage;
        if (job!.lease !== null) {
          if (runningAt === null && stage === 'running') runningAt = performance.now();
          minHeadroomMs = Math.min(minHeadroomMs, job!.lease.expiresAt - now);
          renewals = Math.max(renewals, job!.lease.renewals);
        }
        if (stage === 'succeeded' || stage === 'failed' || stage === 'dead') {
          doneAt = performance.now();
          break;
        }
        if (runningAt !== null && performance.now() >= nextSample) {
          const s = await readSample(factory.pid);
          if (s !== null) {
            first ??= s;
            last = s;
            maxRssKb = Math.max(maxRssKb, s.rssKb);
          }
          nextSample = performance.now() + SAMPLE_MS;
        }
        await sleep(100);
      }
      if (doneAt === null || runningAt === null)
        throw new Error(`the flood job did not finish (stage ${stage}):\n${factory.stderr()}`);
      const runs = await store.listRuns(BENCH_TENANT, id);
      const eventsStored = await countLogEvents(store, id);
      const seconds = (doneAt - runningAt) / 1000;
      const ingestSeconds =
        firstSeen !== null && allSeenAt !== null ? (allSeenAt - firstSeen.at) / 1000 : seconds;
      const ingested = eventsStored - (firstSeen?.count ?? 0);
      const cpuSeconds =
        first !== null && last !== null && last.at > first.at ? (last.at - first.at) / 1000 : 0;
      const avgCpuPct =
        cpuSeconds > 0 ? ((last!.ticks - first!.ticks) / CLK_TCK / cpuSeconds) * 100 : 0;
      progress(
        `  ${eventsStored} events stored in ${seconds.toFixed(1)} s; lease headroom min ` +
          `${minHeadroomMs.toFixed(0)} ms of ${leaseTtlMs} ms, ${renewals} renewals, ` +
          `${runs.length} run(s), stage ${stage}`,
      );
      return {
        linesSent,
        eventsStored,
        eventsPerSec: ingested / ingestSeconds,
        ingestSeconds,
        seconds,
        leaseTtlMs,
        minLeaseHeadroomMs: minHeadroomMs,
        renewals,
        maxRssMb: maxRssKb / 1024,
        avgCpuPct,
        succeeded: stage === 'succeeded' && runs.length === 1,
      };
    } finally {
      await factory.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
