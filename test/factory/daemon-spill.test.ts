import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { EventInput, JobEvent } from '../../src/core/index.js';
import { startFactory } from '../../src/factory/daemon.js';
import { EventSpool } from '../../src/factory/daemon/spool.js';
import { listen } from '../client/helpers.js';
import { STORES } from '../helpers/stores.js';
import { cleanup, tempDir } from './fixtures.js';

const sqlite = STORES.find((k) => k.name === 'sqlite')!;
const ev = (i: number): EventInput => ({ type: 'log', at: i, data: { line: `é ${i}` } });

describe('event spool: spilled events are read back in chunks', () => {
  it('past its limit an unbounded append keeps everything; peek and drop walk it in order', async () => {
    const dir = await tempDir('fleet-spool-');
    onTestFinished(() => cleanup(dir));
    const spool = new EventSpool(path.join(dir, 'spool', 'a.jsonl'), 5);
    const all = Array.from({ length: 1200 }, (_, i) => ev(i + 1));
    await spool.append(all.slice(0, 700), false);
    await spool.append(all.slice(700), false);
    expect(spool.count).toBe(1200);

    const read: EventInput[] = [];
    // A peek not followed by a drop leaves the events where they are.
    expect(await spool.peek(3)).toEqual(all.slice(0, 3));
    for (;;) {
      const chunk = await spool.peek(500);
      if (chunk.length === 0) break;
      await spool.drop(chunk.length);
      read.push(...chunk);
      // Newer events appended meanwhile go after the rest.
      if (read.length === 500) await spool.append([ev(1201)], false);
    }
    expect(read).toEqual([...all, ev(1201)]);
    expect(spool.count).toBe(0);
    await expect(readFile(spool.file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('peek stops at a byte budget, but always returns the first event', async () => {
    const dir = await tempDir('fleet-spool-');
    onTestFinished(() => cleanup(dir));
    const spool = new EventSpool(path.join(dir, 'a.jsonl'), 100);
    const big = (i: number): EventInput => ({
      type: 'log',
      at: i,
      data: { line: 'y'.repeat(1000) },
    });
    await spool.append([big(1), big(2), big(3), big(4)], false);
    const lineBytes = JSON.stringify(big(1)).length + 1;
    expect(await spool.peek(10, lineBytes * 2)).toEqual([big(1), big(2)]);
    expect(spool.peekedBytes).toBe(lineBytes * 2);
    expect(await spool.peek(10, lineBytes * 2 - 1)).toEqual([big(1)]);
    expect(await spool.peek(10, 10)).toEqual([big(1)]);
    await spool.drop(1);
    expect(await spool.peek(10)).toEqual([big(2), big(3), big(4)]);
  });

  it('a bounded append after a partial drop trims from the unsent head, not the file start', async () => {
    const dir = await tempDir('fleet-spool-');
    onTestFinished(() => cleanup(dir));
    const spool = new EventSpool(path.join(dir, 'a.jsonl'), 5);
    await spool.append([ev(1), ev(2), ev(3), ev(4)], false);
    await spool.peek(2);
    await spool.drop(2);
    await spool.append([ev(5), ev(6), ev(7), ev(8)]);
    const left = await spool.take();
    expect(left[0]).toMatchObject({ type: 'spool_overflow', data: { dropped: 2, limit: 5 } });
    expect(left.slice(1)).toEqual([ev(5), ev(6), ev(7), ev(8)]);
  });
});

describe('factory daemon: a bounded in-memory queue', () => {
  it('spills a flooding run to its spool: every event arrives once, in order', async () => {
    const server = await listen(sqlite, { store: { clock: () => Date.now() } });
    const token = await server.token('factory', ['acme']);
    const operator = server.client(await server.token('operator', ['acme']));
    const workDir = await tempDir('fleet-work-');
    onTestFinished(() => cleanup(workDir));
    const append = vi.spyOn(EventSpool.prototype, 'append');
    onTestFinished(() => append.mockRestore());
    const factory = await startFactory({
      server: server.baseUrl,
      token,
      name: 'spill-factory',
      seats: 1,
      capabilities: [],
      workDir,
      logger: pino({ level: 'silent' }),
      pollMs: 200,
      graceMs: 500,
      pendingLimit: 200,
    });
    onTestFinished(() => factory.stop());

    const N = 20_000;
    const cwd = await tempDir('fleet-flood-');
    onTestFinished(() => cleanup(cwd));
    const { jobs } = await operator.submitJobs([
      { engine: 'shell', bodyMd: `seq 1 ${N} | sed 's/^/line /'`, manifest: { cwd } } as never,
    ]);
    const id = jobs[0]!.job.id;
    const end = Date.now() + 60_000;
    while ((await server.store.getJob('acme', id))!.stage !== 'succeeded') {
      if (Date.now() > end) throw new Error('the flood job did not succeed');
      await new Promise((r) => setTimeout(r, 50));
    }

    // Spilled while connected (unbounded appends), more than the limit at a time.
    const spills = append.mock.calls.filter(([, bounded]) => bounded === false);
    expect(spills.length).toBeGreaterThan(0);
    expect(Math.max(...spills.map(([events]) => events.length))).toBeGreaterThan(200);

    const events: JobEvent[] = [];
    for (let afterSeq = 0; ;) {
      const page = await server.store.readEvents('acme', id, { afterSeq, limit: 10_000 });
      if (page.length === 0) break;
      events.push(...page);
      afterSeq = page[page.length - 1]!.seq;
    }
    const lines = events
      .filter((e) => e.type === 'log')
      .map((e) => (e.data as { line: string }).line);
    expect(lines).toEqual(Array.from({ length: N }, (_, i) => `line ${i + 1}`));
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  });
});

describe('factory daemon: batches fit the events lane', () => {
  it('a run printing many long lines gets them all stored: no batch is over the frame limit', async () => {
    const server = await listen(sqlite, { store: { clock: () => Date.now() } });
    const token = await server.token('factory', ['acme']);
    const operator = server.client(await server.token('operator', ['acme']));
    const workDir = await tempDir('fleet-work-');
    onTestFinished(() => cleanup(workDir));
    const factory = await startFactory({
      server: server.baseUrl,
      token,
      name: 'long-lines-factory',
      seats: 1,
      capabilities: [],
      workDir,
      logger: pino({ level: 'silent' }),
      pollMs: 200,
      graceMs: 500,
    });
    onTestFinished(() => factory.stop());

    // 24 lines of 700,000 characters: about 16 MiB of events, twice the 8 MiB a frame may hold.
    const N = 24;
    const cwd = await tempDir('fleet-long-');
    onTestFinished(() => cleanup(cwd));
    const body = `for i in $(seq 1 ${N}); do printf 'line %s ' "$i"; head -c 700000 /dev/zero | tr '\\0' x; echo; done`;
    const { jobs } = await operator.submitJobs([
      { engine: 'shell', bodyMd: body, manifest: { cwd } } as never,
    ]);
    const id = jobs[0]!.job.id;
    const end = Date.now() + 60_000;
    while ((await server.store.getJob('acme', id))!.stage !== 'succeeded') {
      if (Date.now() > end) throw new Error('the long-lines job did not succeed');
      await new Promise((r) => setTimeout(r, 50));
    }
    const lines = (await server.store.readEvents('acme', id, { limit: 10_000 }))
      .filter((e) => e.type === 'log')
      .map((e) => (e.data as { line: string }).line);
    expect(lines.map((l) => l.slice(0, l.indexOf(' x'))).join(',')).toBe(
      Array.from({ length: N }, (_, i) => `line ${i + 1}`).join(','),
    );
    expect(lines.every((l) => l.length === `line ${lines.indexOf(l) + 1} `.length + 700_000)).toBe(
      true,
    );
  }, 90_000);
});
