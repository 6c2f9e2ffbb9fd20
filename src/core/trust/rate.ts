// The per-grant rate limit (scope.rate_per_minute) as a pure GCRA step: a grant may burst up
// to its whole minute's allowance, then one request per 60 s / rate. State is one number per
// grant, the theoretical arrival time (TAT); both RateLimiter adapters store exactly this and
// the Valkey script is the same arithmetic.
export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

export interface RateStep {
  decision: RateDecision;
  /** The TAT to store (unchanged when refused), and how long it matters. */
  tat: number;
  ttlMs: number;
}

/** One request at `now` (ms) for a limit of `perMinute`, given the stored TAT (if any). */
export const gcraStep = (storedTat: number | undefined, now: number, perMinute: number): RateStep => {
  const interval = 60_000 / perMinute;
  const burst = perMinute * interval; // the whole minute
  const tat = Math.max(storedTat ?? now, now);
  const next = tat + interval;
  const allowAt = next - burst;
  if (now < allowAt)
    return { decision: { ok: false, retryAfterMs: allowAt - now }, tat, ttlMs: Math.ceil(tat - now) };
  return { decision: { ok: true }, tat: next, ttlMs: Math.ceil(next - now) };
};

/** Retry-After in whole seconds (at least 1): a client that waits this long is let in. */
export const retryAfterSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
