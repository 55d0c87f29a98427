import { migration as m0001 } from './0001-initial.js';

/** Every SQLite migration in order. */
export const MIGRATIONS = [m0001];
