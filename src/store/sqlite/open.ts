import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StoreOptions } from '../port.js';
import { migrateSqlite } from './migrate.js';
import { SqliteStore } from './sqlite-store.js';

export interface SqliteStoreOptions extends StoreOptions {
  /** Database file; created with its directory when missing. */
  path: string;
  /**
   * `normal` (default): WAL with synchronous=NORMAL. A commit survives a crash of Fleet;
   * a power loss may drop the last commits but never corrupts the file.
   * `full`: synchronous=FULL, every commit reaches the disk before it returns.
   */
  durability?: 'normal' | 'full';
  /** How long a writer waits for another process's write lock, default 5 s. */
  busyTimeoutMs?: number;
}

/** Opens (creating and migrating when needed) the embedded SQLite store. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path);
  try {
    db.pragma(`busy_timeout = ${Math.floor(options.busyTimeoutMs ?? 5_000)}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    migrateSqlite(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return new SqliteStore(db, options);
}
