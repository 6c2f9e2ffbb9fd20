// A member's sync state, told from its outbox rows alone: which revision it holds (the newest
// row applied there) and whether a change is still on its way, and if so whether it can heal
// by itself. Pure: the rows come from the store, the kind of each failure from the PeerClient.
import { isLasting } from '../peer-failure.ts';
import type { OutboxSyncRow } from '../ports.ts';

export interface SyncState {
  state: 'synced' | 'pending' | 'failed';
  revision: number | null;
  last_error: string | null;
  /** Outbox rows for this member not applied yet (the changes still on their way). */
  pending_changes: number;
}

/**
 * The `doneAt` the applier records for a row it skipped because a later row for the same
 * (peer, service) carries newer full state: done, but never applied at the peer.
 */
export const SUPERSEDED_AT = new Date(0);

const appliedAtPeer = (r: OutboxSyncRow): boolean =>
  r.state === 'done' && r.doneAt?.getTime() !== SUPERSEDED_AT.getTime();

/** Sync state of one member from its outbox rows (newest first). */
export const syncOf = (rows: readonly OutboxSyncRow[], specRevision: number): SyncState => {
  const pending = rows.filter((r) => r.state === 'pending');
  // The revision the member holds: the newest row applied there (a superseded row was not).
  const lastDone = rows.find(appliedAtPeer);
  const applied = lastDone?.revision ?? (rows.length === 0 ? specRevision : null);
  if (pending.length === 0)
    return { state: 'synced', revision: applied, last_error: null, pending_changes: 0 };
  const head = pending[pending.length - 1];
  const failing = pending.find((r) => r.lastError);
  // A refusal (the member answered 4xx) will not heal by itself; a network error will when
  // the member is back.
  const refused = !!failing?.lastErrorKind && isLasting(failing.lastErrorKind);
  return {
    state: refused ? 'failed' : 'pending',
    revision: applied,
    last_error: failing?.lastError ?? (head.attempts ? 'retrying' : null),
    pending_changes: pending.length,
  };
};
