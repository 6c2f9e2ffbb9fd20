// The grant state machine: pending → active → revoked | expired. Pure rules, no I/O.
import { FlotillaError } from '../errors.ts';
import type { Scope } from './scope.ts';

export const GRANT_STATUSES = ['pending', 'active', 'revoked', 'expired'] as const;
export type GrantStatus = (typeof GRANT_STATUSES)[number];

export interface Grant {
  id: string;
  peerName: string;
  subjectUser: string;
  status: GrantStatus;
  scope: Scope;
  /** Serial (hex, lowercase) of the one certificate that may act for this grant now. */
  certSerial: string | null;
  certNotAfter: Date | null;
  /** The certificate before the last renewal, accepted until `prevCertUntil` so calls made
   * with it while the peer swaps certificates still pass. */
  prevCertSerial: string | null;
  prevCertUntil: Date | null;
  createdAt: Date;
  activatedAt: Date | null;
  revokedAt: Date | null;
  revokeReason: string | null;
}

export type GrantEvent = 'activate' | 'renew' | 'revoke' | 'expire';

// Renewal keeps an active grant active (a new serial); revocation and expiry are final.
const NEXT: Record<GrantStatus, Partial<Record<GrantEvent, GrantStatus>>> = {
  pending: { activate: 'active', revoke: 'revoked', expire: 'expired' },
  active: { renew: 'active', revoke: 'revoked', expire: 'expired' },
  revoked: {},
  expired: {},
};

/** The status after `event`, or CONFLICT (409) for a transition the machine does not have. */
export const transition = (from: GrantStatus, event: GrantEvent): GrantStatus => {
  const to = NEXT[from][event];
  if (!to) throw new FlotillaError('CONFLICT', `a ${from} grant cannot ${event}`);
  return to;
};

/** Only a pending grant is enrolled (token issued and claimed) — an active one renews. */
export const mayIssueToken = (g: Pick<Grant, 'status'>): boolean => g.status === 'pending';

export const GRANT_ID_RE = /^grt_[0-9a-f]{24}$/;
