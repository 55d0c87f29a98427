import { randomFillSync } from 'node:crypto';

// Random bytes come from a pool refilled 4 KiB at a time: one getrandom call per ~400 ids
// instead of one per id, which showed up in the claim path's profile.
const pool = Buffer.alloc(4096);
let offset = pool.length;
let lastMs = -1;
let counter = 0;

function randomBytes(n: number): Buffer {
  if (offset + n > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = pool.subarray(offset, offset + n);
  offset += n;
  return out;
}

/**
 * Time-ordered, monotonic ids (UUIDv7, RFC 9562): 48 bits of Unix milliseconds, a 12-bit
 * counter that orders ids made in the same millisecond (method 1 of section 6.2), then 62
 * random bits. Newest-first listing and paging cursors follow creation order.
 */
export function newId(now: number = Date.now()): string {
  let ms = now;
  if (ms > lastMs) {
    lastMs = ms;
    // Start the counter low in its range so a burst within one millisecond has headroom.
    counter = randomBytes(1)[0]! & 0x7f;
  } else {
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      // Counter exhausted: borrow the next millisecond, as the RFC allows.
      lastMs = ++ms;
      counter = 0;
    }
  }
  const rand = randomBytes(8);
  const hex = ms.toString(16).padStart(12, '0');
  const a = (0x7000 | counter).toString(16);
  const b = ((rand[0]! & 0x3f) | 0x80).toString(16).padStart(2, '0') + hex2(rand[1]!);
  let tail = '';
  for (let i = 2; i < 8; i++) tail += hex2(rand[i]!);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${a}-${b}-${tail}`;
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
