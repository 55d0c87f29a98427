import { performance } from 'node:perf_hooks';
import type { Store } from '../src/store/index.js';
import { BENCH_TENANT } from './burn-down.js';
import { BenchFactory, expectResult } from './factory-client.js';
import type { BenchServer } from './server.js';

export interface IngestConfig {
  events: number;
  /** Events per `events` request. */
  batch: number;
  /** Requests in flight on the events lane. */
  inFlight: number;
}

export interface IngestResult {
  events: number;
  seconds: number;
  eventsPerSec: number;
}

type EventsResult = {
  results: (
    | { jobId: string; ok: true; firstSeq: number; lastSeq: number }
    | { jobId: string; ok: false; error: { code: string; message: string } }
  )[];
};

/** Agent output of about 200 bytes of JSON data per event. */
const EVENT_DATA = {
  text: 'Reading src/server/factory/factory-session.ts to see how the events lane fences each batch by its epoch before the store appends it; next: run the unit tests and the linter.',
  tokens: 42,
};

/** The `batches` array of an `events` request, as JSON text: built once per size, reused. */
function batchesJson(ref: { jobId: string; epoch: number }, size: number): string {
  const events = Array.from({ length: size }, () => ({ type: 'message', data: EVENT_DATA }));
  return JSON.stringify([{ ...ref, events }]);
}

/** Pages through the job's events (untimed) and counts those the bench wrote. */
async function countStored(store: Store, jobId: string): Promise<number> {
  let count = 0;
  let afterSeq = 0;
  for (;;) {
    const page = await store.readEvents(BENCH_TENANT, jobId, { afterSeq, limit: 10_000 });
    if (page.length === 0) return count;
    for (const e of page) if (e.type === 'message') count++;
    afterSeq = page[page.length - 1]!.seq;
  }
}

/**
 * Event ingest through the factory socket: a factory claims one job on its control lane, then
 * streams `events` agent events for it on its events lane, `batch` per request with `inFlight`
 * requests outstanding, timed from the first send to the last ack. Throws unless every batch
 * is acknowledged with contiguous seqs and the store holds exactly `events` of them.
 */
export async function eventIngest(
  store: Store,
  server: BenchServer,
  config: IngestConfig,
  progress: (line: string) => void,
): Promise<IngestResult> {
  const [enqueued] = await store.enqueue([{ tenant: BENCH_TENANT, bodyMd: 'ingest' }]);
  const name = 'bench-ingest';
  const { factory: control } = await BenchFactory.connect(
    server.factoryUrl,
    server.factoryToken,
    'control',
    name,
  );
  const { factory: lane } = await BenchFactory.connect(
    server.factoryUrl,
    server.factoryToken,
    'events',
    name,
  );
  try {
    const claim = await control.request({ type: 'claim', limit: 1 });
    const { assignments } = expectResult(claim, 'claim') as {
      assignments: { job: { id: string }; lease: { leaseEpoch: number } }[];
    };
    const a = assignments[0];
    if (a === undefined || a.job.id !== enqueued!.job.id)
      throw new Error(`claim did not return the ingest job: ${JSON.stringify(assignments)}`);
    const ref = { jobId: a.job.id, epoch: a.lease.leaseEpoch };

    const payloads = new Map<number, string>();
    const payload = (size: number): string => {
      let p = payloads.get(size);
      if (p === undefined) payloads.set(size, (p = batchesJson(ref, size)));
      return p;
    };
    payload(config.batch); // built before the clock starts

    let remaining = config.events;
    let acked = 0;
    const ranges: [number, number][] = [];
    let lastReport = performance.now();
    const sender = async (): Promise<void> => {
      while (remaining > 0) {
        const n = Math.min(config.batch, remaining);
        remaining -= n;
        const batches = payload(n);
        const reply = await lane.requestText(
          (id) => `{"type":"events","id":${id},"batches":${batches}}`,
        );
        const [r] = (expectResult(reply, 'events') as EventsResult).results;
        if (r === undefined || !r.ok)
          throw new Error(`events batch refused: ${JSON.stringify(r?.ok === false ? r.error : r)}`);
        if (r.lastSeq - r.firstSeq + 1 !== n)
          throw new Error(`a batch of ${n} got seqs ${r.firstSeq}..${r.lastSeq}`);
        ranges.push([r.firstSeq, r.lastSeq]);
        acked += n;
        if (reply.at - lastReport >= 2000) {
          progress(`  ${acked}/${config.events} events acknowledged`);
          lastReport = reply.at;
        }
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: config.inFlight }, sender));
    const seconds = (performance.now() - started) / 1000;

    // Seqs are gap-free per job: the acknowledged ranges must tile one run of seqs.
    ranges.sort((x, y) => x[0] - y[0]);
    ranges.forEach(([first], i) => {
      if (i > 0 && first !== ranges[i - 1]![1] + 1)
        throw new Error(`acknowledged seqs are not contiguous at ${first}`);
    });
    const stored = await countStored(store, ref.jobId);
    if (acked !== config.events || stored !== config.events)
      throw new Error(`sent ${config.events} events, ${acked} acknowledged, ${stored} stored`);

    expectResult(await control.request({ type: 'complete', ...ref }), 'complete');
    return { events: config.events, seconds, eventsPerSec: config.events / seconds };
  } finally {
    await lane.close();
    await control.close();
  }
}
