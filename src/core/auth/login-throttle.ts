// Failed authentications are throttled per source address (DESIGN §3.2): after `limit`
// failures within `windowMs` the address waits until the oldest of them leaves the window.
// Pure: the caller gives the time and the address (the HTTP layer knows it).

export interface LoginThrottleOptions {
  /** Failures allowed per window (default 20). */
  limit?: number;
  /** The window in ms (default one minute). */
  windowMs?: number;
  /** Addresses remembered at most; the longest-quiet ones are forgotten first. */
  maxSources?: number;
}

export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly maxSources: number;

  constructor(o: LoginThrottleOptions = {}) {
    this.limit = o.limit ?? 20;
    this.windowMs = o.windowMs ?? 60_000;
    this.maxSources = o.maxSources ?? 10_000;
  }

  private recent(source: string, now: number): number[] {
    const list = (this.failures.get(source) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length === 0) this.failures.delete(source);
    else this.failures.set(source, list);
    return list;
  }

  /** Whole seconds until `source` may authenticate again, or undefined when it may now. */
  retryAfter(source: string, now: number): number | undefined {
    const list = this.recent(source, now);
    if (list.length < this.limit) return undefined;
    const freeAt = list[list.length - this.limit] + this.windowMs;
    return Math.max(1, Math.ceil((freeAt - now) / 1000));
  }

  /** Counts one failed authentication from `source`. */
  fail(source: string, now: number): void {
    const list = this.recent(source, now);
    list.push(now);
    // Only the last `limit` failures decide; older ones need not be kept.
    const kept = list.slice(-this.limit);
    this.failures.delete(source);
    this.failures.set(source, kept);
    if (this.failures.size > this.maxSources) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }
}
