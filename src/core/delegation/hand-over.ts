// The delegation hand-over in two steps (ADR 13): the receiver holds a delegated job until
// its origin confirms it, and the origin confirms at most one replica per job. Pure: what
// each side does next, from what it knows; the store and the peer client act.

/** A receiver's record of a held hand-over: `held` (stored, not runnable), `confirmed`
 * (runnable, as any job), `dropped` (abandoned or expired: it never runs here). */
export type HoldState = 'held' | 'confirmed' | 'dropped';

/** The header that asks a receiver to hold the job, in seconds. */
export const HOLD_HEADER = 'x-delegation-hold';
export const MAX_HOLD_SECONDS = 900;
/** How long an origin asks replicas to hold a job unless configured otherwise. */
export const DEFAULT_HOLD_SECONDS = 120;

export const DROPPED_ABANDONED = 'hand-over abandoned by the origin: the job never ran here';
export const DROPPED_EXPIRED = 'hand-over not confirmed by the origin in time: the job never ran here';

/** X-Delegation-Hold: whole seconds 1..900; undefined when absent. */
export const parseHoldSeconds = (raw: string | undefined): number | undefined | 'invalid' => {
  if (raw === undefined) return undefined;
  if (!/^[0-9]{1,4}$/.test(raw.trim())) return 'invalid';
  const n = Number(raw.trim());
  return n >= 1 && n <= MAX_HOLD_SECONDS ? n : 'invalid';
};

/** What a receiver knows of a delegated job that asks to be confirmed, abandoned or sent again. */
export interface HeldJob {
  holdState: HoldState | null;
  heldUntil: Date | null;
}

const expired = (j: HeldJob, now: Date): boolean =>
  j.holdState === 'held' && j.heldUntil !== null && j.heldUntil.getTime() <= now.getTime();

/** The hold as it stands at `now`: a hold past its deadline counts as dropped. */
export const holdAt = (j: HeldJob, now: Date): HoldState | null =>
  expired(j, now) ? 'dropped' : j.holdState;

/**
 * A hand-over of an id already stored here. `expire`: drop it first (its deadline passed),
 * then refuse. A job stored without a hold (an origin without hold support) is simply the
 * job that holds the id, as before.
 */
export const onRepeatSend = (j: HeldJob, now: Date): 'held' | 'confirmed' | 'dropped' | 'expire' => {
  if (expired(j, now)) return 'expire';
  if (j.holdState === 'held') return 'held';
  if (j.holdState === 'dropped') return 'dropped';
  return 'confirmed';
};

/** A confirm. `absent`: no such job of this caller; `confirm`: make it runnable now. */
export const onConfirm = (
  j: HeldJob | undefined,
  now: Date,
): 'absent' | 'confirm' | 'already-confirmed' | 'dropped' | 'expire' => {
  if (!j) return 'absent';
  if (expired(j, now)) return 'expire';
  if (j.holdState === 'held') return 'confirm';
  if (j.holdState === 'dropped') return 'dropped';
  // A job stored without a hold is runnable already: confirming it changes nothing.
  return 'already-confirmed';
};

/** An abandon. `tombstone`: remember the id as dropped, so a late hand-over is refused. */
export const onAbandon = (j: HeldJob | undefined): 'tombstone' | 'drop' | 'already-dropped' | 'confirmed' => {
  if (!j) return 'tombstone';
  if (j.holdState === 'held') return 'drop';
  if (j.holdState === 'dropped') return 'already-dropped';
  return 'confirmed';
};

// ---------------------------------------------------------------- the origin

/** What became of one hand-over send. */
export type SendOutcome =
  /** Answered 2xx; `held` only when the receiver holds the job (a Flotilla receiver). */
  | { kind: 'accepted'; held: boolean }
  /** 409 DELEGATION_DROPPED: the receiver dropped this id before; it never runs it. */
  | { kind: 'dropped' }
  /** No answer, or one that cannot tell (timeout, reset, 5xx): the receiver may hold it. */
  | { kind: 'unknown' }
  /** Refused (4xx) or never delivered (connection refused): the receiver does not hold it. */
  | { kind: 'refused' };

/**
 * The origin's next step after a send. `delivered`: a receiver without hold support took
 * it (runs at once: at-least-once there); `in-doubt`: move on, and abandon this replica's
 * hold once the job went elsewhere (the hold is never confirmed, so it never runs there).
 */
export const afterSend = (
  o: SendOutcome,
  attempt: number,
  maxAttempts: number,
): 'confirm' | 'delivered' | 'retry' | 'in-doubt' | 'next' => {
  switch (o.kind) {
    case 'accepted':
      return o.held ? 'confirm' : 'delivered';
    case 'unknown':
      return attempt < maxAttempts ? 'retry' : 'in-doubt';
    default:
      return 'next';
  }
};

/** What became of one confirm. */
export type ConfirmOutcome =
  | 'confirmed'
  /** The receiver refused it (dropped, expired, 404, any 4xx): it will never run the job. */
  | 'refused'
  /** No answer or a 5xx: the confirm may have taken effect. */
  | 'unknown';

/**
 * The origin's next step after a confirm. `confirm-later`: the outcome stays unknown; the
 * job stays recorded at that replica with its confirm pending (never given elsewhere while
 * in doubt) and the mirror repeats the confirm. `take-back`: the replica will never run it.
 */
export const afterConfirm = (
  o: ConfirmOutcome,
  attempt: number,
  maxAttempts: number,
): 'delegated' | 'retry' | 'confirm-later' | 'take-back' => {
  if (o === 'confirmed') return 'delegated';
  if (o === 'refused') return 'take-back';
  return attempt < maxAttempts ? 'retry' : 'confirm-later';
};
