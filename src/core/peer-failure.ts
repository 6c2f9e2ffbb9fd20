// What became of a call to another cluster that did not succeed, classified once where the
// answer is read (the PeerClient adapters' shared response handling) and carried as data
// from there on: the outbox stores the kind with the row, sync states and the applier decide
// from it. Nobody parses an error's text.
import { type ErrorCode, FlotillaError } from './errors.ts';

export type PeerFailureKind =
  /** The peer answered and refused: refused credentials (401/403) or a 4xx other than 404/409. */
  | 'refused'
  /** No answer: network error, timeout, an address --peer-allow refuses, no usable endpoint, a
   * 5xx, or a 429 (the peer's rate limit for the grant: not now, later). */
  | 'unreachable'
  /** 409: the peer holds something in the way (a same-named service, a newer revision). */
  | 'conflict'
  /** 404: the peer does not have what the call names. */
  | 'not_found'
  /** An answer of no expected shape or status, or a failure on this side before or after the call. */
  | 'unexpected';

export const PEER_FAILURE_KINDS: readonly PeerFailureKind[] = [
  'refused',
  'unreachable',
  'conflict',
  'not_found',
  'unexpected',
];

export interface PeerFailure {
  kind: PeerFailureKind;
  /** The HTTP status the peer answered with, when it answered. */
  status?: number;
}

/** A failed call to a peer: a FlotillaError (code, safe message) that also says what happened. */
export class PeerCallError extends FlotillaError {
  readonly failure: PeerFailure;

  constructor(code: ErrorCode, message: string, failure: PeerFailure, details?: Record<string, unknown>) {
    super(code, message, details);
    this.failure = failure;
  }
}

/** The classification a PeerClient gave an error; 'unexpected' for any error raised on this side. */
export const peerFailureOf = (e: unknown): PeerFailure =>
  e instanceof PeerCallError ? e.failure : { kind: 'unexpected' };

/** The failure of an answered call, from its HTTP status alone. */
export const failureOfStatus = (status: number): PeerFailure => {
  // A rate limit heals by waiting, like a peer that is down: never a lasting refusal.
  if (status >= 500 || status === 429) return { kind: 'unreachable', status };
  if (status === 404) return { kind: 'not_found', status };
  if (status === 409) return { kind: 'conflict', status };
  if (status >= 400) return { kind: 'refused', status };
  return { kind: 'unexpected', status };
};

/**
 * A refusal the peer will repeat until someone changes something (the credentials, the name
 * held there, the definition): retrying alone does not heal it. The other kinds may heal by
 * themselves (the member comes back, a later answer has the expected shape).
 */
export const isLasting = (kind: PeerFailureKind): boolean =>
  kind === 'refused' || kind === 'conflict' || kind === 'not_found';

/** The peer itself is out of reach: its other changes would fail the same way now. */
export const peerIsDown = (failure: PeerFailure): boolean => failure.kind === 'unreachable';
