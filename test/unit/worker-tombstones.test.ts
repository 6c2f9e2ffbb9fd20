// The tokens coordinators' proven deletes spent on a worker: kept by hash (never the token),
// refused for an hour, then pruned.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { TOMBSTONE_KEEP_MS, WorkerTombstones } from '../../src/app/federation/worker-tombstones.ts';

let store: PgliteStore;
let now = 1_000_000_000_000;
const clock = { now: () => new Date(now) };

beforeAll(async () => {
  store = await PgliteStore.open(undefined);
});
afterAll(async () => {
  await store?.close();
});

describe('worker tombstones', () => {
  it('keeps a hash of each spent token, never the token itself', async () => {
    const t = new WorkerTombstones({ settings: store, clock });
    const spent = 'e'.repeat(64);
    await t.record('w1', [spent, 'f'.repeat(64), spent]);
    expect(await t.spent('w1', spent)).toBe(true);
    expect(await t.spent('w1', 'f'.repeat(64))).toBe(true);
    expect(await t.spent('w1', '0'.repeat(64))).toBe(false);
    // Spent on that worker only: a token is one worker's, and another's create is no late one.
    expect(await t.spent('w2', spent)).toBe(false);
    const hash = createHash('sha256').update(`w1\n${spent}`).digest('hex');
    expect(await store.getSetting(`worker-deleted:${hash}`)).toBe(String(now));
    expect(await store.getSetting(`worker-deleted:${spent}`)).toBeUndefined();
  });

  it('prunes what is older than the keep time and keeps the rest', async () => {
    const t = new WorkerTombstones({ settings: store, clock });
    const older = '1'.repeat(64);
    const newer = '2'.repeat(64);
    await t.record('w3', [older]);
    now += TOMBSTONE_KEEP_MS / 2;
    await t.record('w3', [newer]);
    now += TOMBSTONE_KEEP_MS / 2 + 1;
    expect(await t.prune()).toBeGreaterThanOrEqual(1);
    expect(await t.spent('w3', older)).toBe(false);
    expect(await t.spent('w3', newer)).toBe(true);
  });
});
