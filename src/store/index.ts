export type {
  Appended,
  AppendOptions,
  Claimed,
  ClaimRequest,
  CompleteInput,
  EnqueueResult,
  FailInput,
  FencedRef,
  JobQuery,
  Outcome,
  Page,
  ReapedJob,
  Store,
  StoreOptions,
} from './port.js';
export { openSqliteStore, type SqliteStoreOptions } from './sqlite/open.js';
export { isPostgresUrl } from './db-url.js';
export { openStore, type OpenStoreOptions } from './open-store.js';
