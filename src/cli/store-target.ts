import { join, resolve } from 'node:path';
import { isPostgresUrl } from '../store/db-url.js';
import { resolveDataDir } from './data-dir.js';
import type { CliIo } from './io.js';

/** The store a command's `--db` / `--data-dir` options name. */
export interface StoreTarget {
  dialect: 'sqlite' | 'postgres';
  /** What `openStore` receives: a postgres URL or an absolute SQLite path. */
  db: string;
  dataDir: string;
  /** Where the store is, for messages: the SQLite path or the URL without its password. */
  location: string;
}

export interface StoreOptionValues {
  db?: string;
  dataDir?: string;
}

export function storeTarget(options: StoreOptionValues, io: CliIo): StoreTarget {
  const dataDir = resolveDataDir(options.dataDir, io);
  const { db } = options;
  if (isPostgresUrl(db)) {
    return { dialect: 'postgres', db, dataDir, location: withoutPassword(db) };
  }
  const path =
    db === undefined ? join(dataDir, 'fleet.db') : db === ':memory:' ? db : resolve(io.cwd, db);
  return { dialect: 'sqlite', db: path, dataDir, location: path };
}

/** A connection URL safe to print. */
export function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/(:\/\/[^:/@]*):[^@/]*@/, '$1:***@');
  }
}
