// Enrollment-token rules: 64 hex, single use, TTL at most 15 minutes. The store keeps only
// the token's SHA-256 so a database dump cannot enroll.
import { FlotillaError } from '../errors.ts';

export const TOKEN_RE = /^[0-9a-f]{64}$/;
export const MAX_TOKEN_TTL_S = 900;
export const DEFAULT_TOKEN_TTL_S = 900;

export const tokenTtlSeconds = (raw: unknown): number => {
  if (raw === undefined) return DEFAULT_TOKEN_TTL_S;
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_TOKEN_TTL_S)
    throw new FlotillaError(
      'VALIDATION_FAILED',
      `ttl: must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_S}`,
    );
  return n;
};

/** What a claim found: the store answers with the row as it was, core names the outcome. */
export type ClaimOutcome =
  | { kind: 'claimed'; grantId: string }
  | { kind: 'unknown' }
  | { kind: 'used' }
  | { kind: 'expired' };

export const claimError = (o: ClaimOutcome): FlotillaError | undefined => {
  if (o.kind === 'claimed') return undefined;
  if (o.kind === 'unknown') return new FlotillaError('NOT_FOUND', 'enrollment token not found');
  return new FlotillaError('GONE', 'enrollment token already used or expired');
};

/** A token is checked for shape before any lookup: no query for garbage. */
export const isTokenShape = (t: unknown): t is string => typeof t === 'string' && TOKEN_RE.test(t);
