// Contract of the RateLimiter port, in memory and on the machine's real Redis/Valkey: a grant
// bursts up to its minute's allowance, the next request is refused with the wait that lets it
// in, keys are independent, and (Valkey) two clients with one prefix share the counts.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createMemoryRateLimiter } from '../../src/adapters/rate-memory/memory-rate-limiter.ts';
import { createValkeyRateLimiter } from '../../src/adapters/rate-valkey/valkey-rate-limiter.ts';
import type { RateLimiter } from '../../src/core/ports.ts';

const REDIS_URL = process.env.FLOTILLA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const T0 = 1_800_000_000_000;

const contract = (name: string, open: () => Promise<{ make(): RateLimiter; cleanup(): Promise<void> }>) =>
  describe(`RateLimiter contract: ${name}`, async () => {
    const { make, cleanup } = await open();
    const limiter = make();
    afterAll(async () => {
      await limiter.close();
      await cleanup();
    });

    it('lets a burst of the whole minute through, then refuses with the wait until the next slot', async () => {
      for (let i = 0; i < 6; i++) expect(await limiter.take('g1', 6, T0)).toEqual({ ok: true });
      const refused = await limiter.take('g1', 6, T0);
      expect(refused.ok).toBe(false);
      // 6 per minute: one slot every 10 s.
      expect(refused.ok === false && refused.retryAfterMs).toBeCloseTo(10_000, 0);
      expect((await limiter.take('g1', 6, T0 + 9_999)).ok).toBe(false);
      expect(await limiter.take('g1', 6, T0 + 10_000)).toEqual({ ok: true });
      expect((await limiter.take('g1', 6, T0 + 10_000)).ok).toBe(false);
    });

    it('a refused request does not use up a slot; the full allowance comes back after a minute', async () => {
      for (let i = 0; i < 3; i++) await limiter.take('g2', 3, T0);
      for (let i = 0; i < 10; i++) expect((await limiter.take('g2', 3, T0 + 1)).ok).toBe(false);
      expect(await limiter.take('g2', 3, T0 + 20_000)).toEqual({ ok: true });
      for (let i = 0; i < 3; i++) expect(await limiter.take('g2', 3, T0 + 80_000)).toEqual({ ok: true });
      expect((await limiter.take('g2', 3, T0 + 80_000)).ok).toBe(false);
    });

    it('keeps grants apart', async () => {
      expect(await limiter.take('g3', 1, T0)).toEqual({ ok: true });
      expect((await limiter.take('g3', 1, T0)).ok).toBe(false);
      expect(await limiter.take('g4', 1, T0)).toEqual({ ok: true });
    });

    it('an uneven rate (7 per minute) refuses with a wait under 60 s / 7', async () => {
      for (let i = 0; i < 7; i++) await limiter.take('g5', 7, T0);
      const r = await limiter.take('g5', 7, T0 + 1000);
      expect(r.ok === false && r.retryAfterMs).toBeCloseTo(60_000 / 7 - 1000, 0);
    });
  });

contract('memory', async () => ({ make: () => createMemoryRateLimiter(), cleanup: async () => {} }));

const prefix = `flotilla-test-${randomBytes(4).toString('hex')}`;
const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
const reachable = await probe.connect().then(
  () => true,
  (e: Error) => {
    throw new Error(
      `Redis/Valkey is needed for this test but is not reachable at ${REDIS_URL} (${e.message}); start redis-server or set FLOTILLA_TEST_REDIS_URL`,
    );
  },
);

contract('valkey', async () => ({
  make: () => createValkeyRateLimiter({ url: REDIS_URL, prefix }),
  cleanup: async () => {
    const keys = await probe.keys(`${prefix}:*`);
    if (keys.length) await probe.del(...keys);
  },
}));

describe('RateLimiter on Valkey: unreachable', () => {
  it('fails a call within its timeout (never hangs), so the caller can decide', async () => {
    const dead = createValkeyRateLimiter({ url: 'redis://127.0.0.1:1', prefix, timeoutMs: 300 });
    const t = Date.now();
    try {
      await expect(dead.take('g', 10, T0)).rejects.toThrow();
      expect(Date.now() - t).toBeLessThan(5000);
    } finally {
      await dead.close();
    }
  });
});

describe('RateLimiter on Valkey: shared by instances', () => {
  afterAll(async () => {
    const keys = await probe.keys(`${prefix}-shared:*`);
    if (keys.length) await probe.del(...keys);
    probe.disconnect();
  });

  it('two clients with one prefix count in the same keys, and keys expire', async () => {
    expect(reachable).toBe(true);
    const one = createValkeyRateLimiter({ url: REDIS_URL, prefix: `${prefix}-shared` });
    const two = createValkeyRateLimiter({ url: REDIS_URL, prefix: `${prefix}-shared` });
    try {
      const now = Date.now();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).take('grt', 4, now)),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(4);
      const ttl = await probe.pttl(`${prefix}-shared:rate:grt`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
