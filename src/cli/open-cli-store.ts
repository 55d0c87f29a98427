import type { Store } from '../store/index.js';
import { CliError } from './cli-error.js';
import { explainOpenError } from './explain-open-error.js';
import type { StoreTarget } from './store-target.js';

/** Opens (and so migrates) the target store; a failure becomes a CliError saying what to do. */
export async function openCliStore(target: StoreTarget): Promise<Store> {
  // Loaded on demand: commands that never open a store do not pay for the database drivers.
  const { openStore } = await import('../store/index.js');
  try {
    return await openStore({ db: target.db, dataDir: target.dataDir });
  } catch (err) {
    throw new CliError(explainOpenError(target, err), { cause: err });
  }
}
