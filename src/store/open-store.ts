import { join } from 'node:path';
import { isPostgresUrl } from './db-url.js';
import type { Store, StoreOptions } from './port.js';
import { openPostgresStore } from './postgres/open.js';
import { openSqliteStore } from './sqlite/open.js';

export interface OpenStoreOptions extends Omit<StoreOptions, 'blobDir'> {
  /** A `postgres://` URL, or a SQLite file path. Default: `<dataDir>/fleet.db`. */
  db?: string;
  /** Where the embedded database and the artifact blobs live. */
  dataDir: string;
  /** PostgreSQL only: the schema holding Fleet's tables, default `fleet`. */
  schema?: string;
}

/** Opens the store a `--db` value names: PostgreSQL for a URL, else the embedded SQLite file. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const { db, dataDir, schema, ...rest } = options;
  const blobDir = join(dataDir, 'blobs');
  if (isPostgresUrl(db)) {
    return openPostgresStore({
      ...rest,
      connectionString: db,
      blobDir,
      ...(schema === undefined ? {} : { schema }),
    });
  }
  return openSqliteStore({ ...rest, path: db ?? join(dataDir, 'fleet.db'), blobDir });
}
