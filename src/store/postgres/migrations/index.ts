import { migration as m0001 } from './0001-initial.js';
import { migration as m0002 } from './0002-tokens.js';
import { migration as m0003 } from './0003-plans.js';
import { migration as m0004 } from './0004-event-cursors.js';

/** Every PostgreSQL migration in order. */
export const MIGRATIONS = [m0001, m0002, m0003, m0004];
