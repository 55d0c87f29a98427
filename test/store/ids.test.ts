import { expect, it } from 'vitest';
import { newId } from '../../src/store/shared/ids.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

it('makes RFC 9562 version-7 ids carrying the millisecond', () => {
  const id = newId(Date.UTC(2026, 10, 21));
  expect(id).toMatch(UUID_V7);
  expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBeGreaterThanOrEqual(
    Date.UTC(2026, 10, 21),
  );
});

it('stays strictly increasing within a millisecond, past the counter, and if the clock steps back', () => {
  const ids: string[] = [];
  const t = Date.UTC(2030, 0, 1);
  for (let i = 0; i < 10_000; i++) ids.push(newId(t));
  ids.push(newId(t - 5_000));
  ids.push(newId(t + 10_000));
  for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  expect(new Set(ids).size).toBe(ids.length);
  for (const id of ids) expect(id).toMatch(UUID_V7);
});
