// Ports of the audit trail and the per-grant rate limit (re-exported by src/core/ports.ts).
// Adapters: store-sql (AuditStore), rate-memory and rate-valkey (RateLimiter).
import type { RateDecision } from '../trust/rate.ts';
import type { AuditEntry, AuditRow } from './chain.ts';

export interface AuditStore {
  /** Links entries after the chain's tip and stores them in one transaction. Appenders that
   * share the database (other instances) take turns, so there is one chain per database. */
  append(entries: readonly AuditEntry[]): Promise<AuditRow[]>;
  /** Rows of the hot and the cold table together, in chain order (seq ascending). */
  list(q: { since?: Date; afterSeq?: number; limit: number }): Promise<AuditRow[]>;
  /** Moves rows stored before `before` to the cold table (same rows, same hashes). */
  moveToCold(before: Date): Promise<number>;
}

export interface RateLimiter {
  /** Counts one request of `key` at `now` (ms) against `perMinute`. */
  take(key: string, perMinute: number, now: number): Promise<RateDecision>;
  close(): Promise<void>;
}
