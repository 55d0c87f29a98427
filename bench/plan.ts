import type { BenchOptions, StoreKind } from './args.js';

/** One burn-down to run. */
export interface Variant {
  name: string;
  store: StoreKind;
  /** SQLite only. */
  durability?: 'normal' | 'full';
  jobs: number;
  concurrency: number;
  batch: number;
}

/**
 * The burn-downs for the chosen stores: the default configuration, SQLite with an fsync per
 * commit, SQLite with one claimer (the embedded store runs its verbs synchronously on one
 * thread, so with several in-process claimers a claim's latency includes waiting for the
 * others' turns; one claimer shows the claim's own service time), and a claim limit of 1 so
 * the unbatched cost is visible.
 */
export function planVariants(o: BenchOptions): Variant[] {
  const base = { jobs: o.jobs, concurrency: o.concurrency, batch: o.batch };
  const batch1 = { jobs: o.batch1Jobs, concurrency: o.concurrency, batch: 1 };
  const variants: Variant[] = [];
  if (o.stores.includes('sqlite')) {
    variants.push({ name: 'sqlite', store: 'sqlite', durability: 'normal', ...base });
    variants.push({ name: 'sqlite-full', store: 'sqlite', durability: 'full', ...base });
    if (o.concurrency !== 1)
      variants.push({
        name: 'sqlite-1-claimer',
        store: 'sqlite',
        durability: 'normal',
        ...base,
        concurrency: 1,
      });
    if (o.batch !== 1)
      variants.push({ name: 'sqlite-batch1', store: 'sqlite', durability: 'normal', ...batch1 });
  }
  if (o.stores.includes('postgres')) {
    variants.push({ name: 'postgres', store: 'postgres', ...base });
    if (o.batch !== 1) variants.push({ name: 'postgres-batch1', store: 'postgres', ...batch1 });
  }
  return variants;
}
