import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PipePoller, type PolledPipe } from '../../src/factory/pipe-poller.js';
import { cleanup, tempDir } from './fixtures.js';

const pollers: PipePoller[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const p of pollers.splice(0)) p.close();
  await cleanup(...dirs.splice(0));
});

/** A poller closed after the test. */
function poller(options: ConstructorParameters<typeof PipePoller>[0] = {}): PipePoller {
  const p = new PipePoller(options);
  pollers.push(p);
  return p;
}

async function dir(): Promise<string> {
  const d = await tempDir('fleet-poller-test-');
  dirs.push(d);
  return d;
}

/** Runs `script` in bash with `pipe` as its stdout, then closes our copy of the write end. */
function runInto(pipe: PolledPipe, script: string): Promise<number | null> {
  const child = spawn('bash', ['-c', script], { stdio: ['ignore', pipe.writeFd!, 'ignore'] });
  pipe.closeWriteEnd();
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

interface Reading {
  chunks: Buffer[];
  /** 'data' and 'end' in the order they were called. */
  events: string[];
  ended: Promise<void>;
  text(): string;
  ends(): number;
}

function read(pipe: PolledPipe, onChunk: (chunk: Buffer) => void = () => {}): Reading {
  const chunks: Buffer[] = [];
  const events: string[] = [];
  let ends = 0;
  let resolveEnd!: () => void;
  const ended = new Promise<void>((r) => (resolveEnd = r));
  pipe.start(
    (chunk) => {
      chunks.push(chunk);
      events.push('data');
      onChunk(chunk);
    },
    () => {
      ends += 1;
      events.push('end');
      resolveEnd();
    },
  );
  return {
    chunks,
    events,
    ended,
    text: () => Buffer.concat(chunks).toString(),
    ends: () => ends,
  };
}

/** Polls `condition` every 10 ms for up to `ms` (generous: a loaded machine is slow). */
async function waitFor(condition: () => boolean, ms = 15_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) return false;
    await delay(10);
  }
  return true;
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Waits until this process has `baseline` descriptors open again; returns the last count. */
async function fdsSettle(baseline: number): Promise<number> {
  await waitFor(() => openFds() === baseline, 5000);
  return openFds();
}

describe('PipePoller', () => {
  beforeAll(async () => {
    // The first spawn and the first mkfifo open descriptors that stay for the process's life
    // (libuv's signal pipe and the like): spend them before any test counts descriptors.
    const p = new PipePoller({ intervalMs: 10 });
    const [pipe] = await p.open(1);
    const exited = runInto(pipe!, 'echo warm');
    await read(pipe!).ended;
    await exited;
    p.close();
  });

  it('delivers bytes complete and in order across many polls, then ends once', async () => {
    const acks = await dir();
    const p = poller({ intervalMs: 20 });
    const [pipe] = await p.open(1);
    // Each line waits until the test has seen the one before, so each one is its own poll.
    const exited = runInto(
      pipe!,
      `for i in $(seq 1 20); do echo "line $i"; ` +
        `while [ ! -e ${acks}/ack$i ]; do sleep 0.01; done; done`,
    );
    const got = read(pipe!, (chunk) => {
      for (const m of chunk.toString().matchAll(/line (\d+)\n/g))
        writeFileSync(path.join(acks, `ack${m[1]}`), '');
    });
    await got.ended;
    const expected = Array.from({ length: 20 }, (_, i) => `line ${i + 1}\n`);
    expect(got.chunks.map(String)).toEqual(expected);
    expect(got.events).toEqual([...expected.map(() => 'data'), 'end']);
    expect(await exited).toBe(0);
    // Nothing after the end, however long we wait (and pokes find nothing either).
    p.poke();
    await delay(200);
    expect(got.events.at(-1)).toBe('end');
    expect(got.ends()).toBe(1);
    expect(p.size).toBe(0);
  });

  it('poke() reads at once, to the end: with an hour-long interval, a finished child is read', async () => {
    const p = poller({ intervalMs: 3_600_000 });
    const [pipe] = await p.open(1);
    const exited = runInto(pipe!, 'echo one; echo two');
    const got = read(pipe!);
    await exited;
    // One poke after the exit reads the output and the end of file (the child closed its end).
    p.poke();
    await got.ended;
    expect(got.ends()).toBe(1);
    expect(got.text()).toBe('one\ntwo\n');
  });

  it('delivers a flood byte-exact, switching the pipe to a stream', async () => {
    const p = poller({ streamAfterBytes: 4096 });
    const [pipe] = await p.open(1);
    const exited = runInto(pipe!, 'seq 1 300000');
    let sizeWhileStreaming = -1;
    let afterSwitch = 0;
    const got = read(pipe!, () => {
      // A streamed pipe is no longer among the polled ones.
      if (p.size === 0) afterSwitch += 1;
      else sizeWhileStreaming = p.size;
    });
    await got.ended;
    const expected = Array.from({ length: 300000 }, (_, i) => `${i + 1}\n`).join('');
    const all = Buffer.concat(got.chunks);
    expect(all.length).toBe(Buffer.byteLength(expected));
    expect(createHash('sha256').update(all).digest('hex')).toBe(
      createHash('sha256').update(expected).digest('hex'),
    );
    expect(all.subarray(-7).toString()).toBe('300000\n');
    expect(sizeWhileStreaming).toBe(1); // the first chunk was polled
    expect(afterSwitch).toBeGreaterThan(0);
    expect(got.ends()).toBe(1);
    expect(got.events.at(-1)).toBe('end');
    expect(await exited).toBe(0);
  });

  it('a flood goes on as a stream when polls stop (an hour-long interval)', async () => {
    const p = poller({ intervalMs: 3_600_000, streamAfterBytes: 1024 });
    const [pipe] = await p.open(1);
    const exited = runInto(pipe!, "head -c 5000000 /dev/zero | tr '\\0' x");
    const got = read(pipe!);
    // Poke until a poll finds enough to switch; after that, nothing polls this pipe again.
    const poking = setInterval(() => p.poke(), 10);
    const switched = await waitFor(() => p.size === 0);
    clearInterval(poking);
    expect(switched).toBe(true);
    await got.ended;
    const all = Buffer.concat(got.chunks);
    expect(all.length).toBe(5_000_000);
    expect(all.every((b) => b === 0x78)).toBe(true);
    expect(got.ends()).toBe(1);
    expect(await exited).toBe(0);
  });

  it('end of file waits for every writer, not just the child', async () => {
    const gate = await dir();
    const p = poller({ intervalMs: 20 });
    const [pipe] = await p.open(1);
    // The grandchild keeps stdout open after the child exits, until the test lets it finish.
    const exited = runInto(
      pipe!,
      `(while [ ! -e ${gate}/go ]; do sleep 0.01; done; echo late) & echo early`,
    );
    const got = read(pipe!);
    expect(await exited).toBe(0);
    p.poke();
    expect(await waitFor(() => got.text() === 'early\n')).toBe(true);
    await delay(300); // many polls
    expect(got.ends()).toBe(0);
    writeFileSync(path.join(gate, 'go'), '');
    await got.ended;
    expect(got.text()).toBe('early\nlate\n');
    expect(got.events.at(-1)).toBe('end');
    expect(got.ends()).toBe(1);
  });

  it('destroy() closes both ends, before and after start, and onEnd is not called', async () => {
    const baseline = openFds();
    const p = poller({ intervalMs: 20 });
    const pipes = await p.open(6);
    expect(openFds()).toBe(baseline + 12);
    pipes[0]!.destroy(); // never started, write end still open
    pipes[1]!.closeWriteEnd();
    pipes[1]!.destroy();
    const readings = pipes.slice(2, 4).map((pipe) => read(pipe));
    pipes[2]!.destroy(); // started, write end still ours
    pipes[3]!.closeWriteEnd();
    pipes[3]!.destroy();
    // Destroyed while a child still writes into it.
    const writer = runInto(pipes[4]!, 'while echo tick; do sleep 0.01; done');
    const live = read(pipes[4]!);
    expect(await waitFor(() => live.text().length > 0)).toBe(true);
    pipes[4]!.destroy();
    // Destroyed after a flood made it a stream.
    const flood = new PipePoller({ intervalMs: 20, streamAfterBytes: 1024 });
    pollers.push(flood);
    const [streamed] = await flood.open(1);
    const flooder = runInto(streamed!, 'yes');
    const floodReading = read(streamed!);
    expect(await waitFor(() => flood.size === 0)).toBe(true);
    streamed!.destroy();
    // close() destroys the pipes being read.
    const closedByPoller = read(pipes[5]!);
    p.close();
    expect(await writer).not.toBe(0); // SIGPIPE or EPIPE once the reader is gone
    expect(await flooder).not.toBe(0);
    expect(await fdsSettle(baseline)).toBe(baseline);
    await delay(200);
    for (const r of [...readings, live, floodReading, closedByPoller]) expect(r.ends()).toBe(0);
    expect(p.size).toBe(0);
    expect(flood.size).toBe(0);
  });

  it('close() also closes pipes opened but never started, and streamed ones', async () => {
    const baseline = openFds();
    const p = poller({ intervalMs: 20, streamAfterBytes: 1024 });
    const [idle, flooded] = await p.open(2);
    expect(openFds()).toBe(baseline + 4);
    expect(idle).toBeDefined();
    const flooder = runInto(flooded!, 'yes');
    const reading = read(flooded!);
    expect(await waitFor(() => reading.text().length > 4096 && p.size === 0)).toBe(true);
    p.close();
    expect(await flooder).not.toBe(0);
    expect(await fdsSettle(baseline)).toBe(baseline);
    expect(reading.ends()).toBe(0);
  });

  it('pipes that end on their own leave no descriptor open, polled or streamed', async () => {
    const baseline = openFds();
    const p = poller({ intervalMs: 20, streamAfterBytes: 64 * 1024 });
    const pipes = await p.open(5);
    const runs = pipes.map((pipe, i) =>
      runInto(pipe, i === 0 ? 'yes | head -n 200000' : `echo pipe ${i}`),
    );
    const readings = pipes.map((pipe) => read(pipe));
    await Promise.all(readings.map((r) => r.ended));
    expect(await Promise.all(runs)).toEqual([0, 0, 0, 0, 0]);
    expect(readings[0]!.text()).toBe('y\n'.repeat(200000));
    expect(readings.slice(1).map((r) => r.text())).toEqual([1, 2, 3, 4].map((i) => `pipe ${i}\n`));
    expect(await fdsSettle(baseline)).toBe(baseline);
    expect(p.size).toBe(0);
  });

  describe('the FIFO directory', () => {
    let savedTmp: string | undefined;
    afterEach(() => {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
    });
    /** A private TMPDIR, so other test files' pollers do not show up in it. */
    async function privateTmp(): Promise<string> {
      const tmp = await dir();
      savedTmp = process.env.TMPDIR;
      process.env.TMPDIR = tmp;
      return tmp;
    }

    it('unlinks each FIFO once opened, makes them 16 at a time, and close() removes the dir', async () => {
      const tmp = await privateTmp();
      const p = poller();
      const pipes = await p.open(3);
      const made = readdirSync(tmp);
      expect(made).toHaveLength(1);
      expect(made[0]).toMatch(/^fleet-fifo-/);
      const fifoDir = path.join(tmp, made[0]!);
      // One mkfifo made 16: the 3 opened are unlinked, 13 spares wait for the next runs.
      const spares = readdirSync(fifoDir);
      expect(spares).toHaveLength(13);
      for (const name of spares) expect(lstatSync(path.join(fifoDir, name)).isFIFO()).toBe(true);
      // The descriptors are FIFOs that were made there, now unlinked.
      for (const pipe of pipes) {
        const target = readlinkSync(`/proc/self/fd/${pipe.writeFd!}`);
        expect(target.startsWith(`${fifoDir}/`)).toBe(true);
        expect(target.endsWith(' (deleted)')).toBe(true);
        expect(spares).not.toContain(path.basename(target.replace(/ \(deleted\)$/, '')));
      }
      // A second open uses the same directory and its spares.
      await p.open(2);
      expect(readdirSync(tmp)).toEqual(made);
      expect(readdirSync(fifoDir)).toHaveLength(11);
      // Spares run out: the next open makes another batch.
      await p.open(12);
      expect(readdirSync(fifoDir)).toHaveLength(15);
      p.close();
      expect(existsSync(fifoDir)).toBe(false);
      expect(readdirSync(tmp)).toEqual([]);
      // After close() the poller still works, in a new directory removed by the next close().
      const [again] = await p.open(1);
      expect(readdirSync(tmp)).toHaveLength(1);
      const exited = runInto(again!, 'echo again');
      const got = read(again!);
      await got.ended;
      expect(got.text()).toBe('again\n');
      expect(await exited).toBe(0);
      p.close();
      expect(readdirSync(tmp)).toEqual([]);
    });

    it('open() with a missing mkfifo rejects naming it, and leaves no descriptor open', async () => {
      const tmp = await privateTmp();
      const baseline = openFds();
      const p = poller({ mkfifo: '/nonexistent/mkfifo' });
      const err: unknown = await p.open(2).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(
        /^could not make a FIFO with \/nonexistent\/mkfifo: .*ENOENT/,
      );
      expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
      expect(await fdsSettle(baseline)).toBe(baseline);
      expect(p.size).toBe(0);
      p.close();
      expect(readdirSync(tmp)).toEqual([]);
    });

    it('open() with a mkfifo that fails rejects with what it said on stderr', async () => {
      await privateTmp();
      const baseline = openFds();
      const p = poller({ mkfifo: 'false' });
      await expect(p.open(1)).rejects.toThrow(/^could not make a FIFO with false: /);
      expect(await fdsSettle(baseline)).toBe(baseline);
    });
  });

  it('start() twice throws', async () => {
    const p = poller();
    const [pipe] = await p.open(1);
    pipe!.start(
      () => {},
      () => {},
    );
    expect(() =>
      pipe!.start(
        () => {},
        () => {},
      ),
    ).toThrow('the pipe was already started');
  });

  it('the constructor rejects an interval that is not > 0, naming it', () => {
    for (const intervalMs of [0, -5, Number.NaN]) {
      expect(() => new PipePoller({ intervalMs })).toThrow(RangeError);
      expect(() => new PipePoller({ intervalMs })).toThrow(
        `intervalMs must be > 0, got ${intervalMs}`,
      );
    }
  });
});
