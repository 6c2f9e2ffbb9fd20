// RateLimiter in this process's memory (local and standalone tiers: one instance serves the
// peer channel). The core's GCRA step decides; this keeps one TAT per key.
import type { RateLimiter } from '../../core/ports.ts';
import { gcraStep, type RateDecision } from '../../core/trust/rate.ts';

export const createMemoryRateLimiter = (opts: { maxKeys?: number } = {}): RateLimiter => {
  const tats = new Map<string, { tat: number; until: number }>();
  const maxKeys = opts.maxKeys ?? 100_000;
  const prune = (now: number) => {
    for (const [k, v] of tats) if (v.until <= now) tats.delete(k);
  };
  return {
    async take(key: string, perMinute: number, now: number): Promise<RateDecision> {
      const held = tats.get(key);
      const step = gcraStep(held && held.until > now ? held.tat : undefined, now, perMinute);
      if (step.decision.ok) {
        if (!held && tats.size >= maxKeys) prune(now);
        tats.set(key, { tat: step.tat, until: now + step.ttlMs });
      }
      return step.decision;
    },
    async close() {
      tats.clear();
    },
  };
};
