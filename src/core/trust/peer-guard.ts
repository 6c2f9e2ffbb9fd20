// The fixed order of checks on every peer-channel request, as one pure decision. TLS has
// already refused certificates of other CAs and revoked serials; this decides the rest:
// claims → grant active → serial recorded → subject → resource allowlist and exclusions →
// verb → the subject's own permissions → filters (narrow only) → row cap.
import type { ClaimsResult } from './claims.ts';
import type { Grant } from './grant.ts';
import {
  allowsResource,
  type NarrowFilter,
  narrowFilter,
  type Resource,
  rowLimit,
  type Verb,
} from './scope.ts';

export interface PeerRequestFacts {
  claims: ClaimsResult;
  /** The grant the certificate names, as stored (undefined: no such grant). */
  grant: Grant | undefined;
  /** The presented certificate's serial, lowercase hex. */
  serial: string;
  now: Date;
  certNotAfter: Date;
  /** What the route wants; undefined for routes that only need an authenticated peer. */
  action?: {
    resource: Resource;
    verb: Verb;
    /** Other (resource, verb) pairs that also allow the route, tried in order after the first. */
    or?: ReadonlyArray<{ resource: Resource; verb: Verb }>;
    filter?: NarrowFilter;
    limit?: number;
  };
  /** Whether the grant's subject may do this on its own (only asked when scope allows). */
  subjectMay?: (resource: Resource, verb: Verb) => boolean;
}

export type PeerDecision =
  | { ok: true; grant: Grant; filter?: NarrowFilter; limit?: number }
  | {
      ok: false;
      status: 401 | 403;
      reason: string;
      grantId?: string;
      /** For the audit row: the grant's peer and the subject the certificate claims. */
      peer?: string;
      subject?: string;
    };

const deny = (
  status: 401 | 403,
  reason: string,
  grantId?: string,
  who: { peer?: string; subject?: string } = {},
): PeerDecision => ({
  ok: false,
  status,
  reason,
  grantId,
  ...who,
});

export const decidePeerRequest = (f: PeerRequestFacts): PeerDecision => {
  if (!f.claims.ok) return deny(401, f.claims.reason);
  const { grantId, subject } = f.claims.claims;
  const g = f.grant;
  if (!g) return deny(401, 'grant-unknown', grantId, { subject });
  const who = { peer: g.peerName, subject };
  if (g.status !== 'active') return deny(401, `grant-${g.status}`, grantId, who);
  if (f.certNotAfter.getTime() <= f.now.getTime()) return deny(401, 'cert-expired', grantId, who);
  const serial = f.serial.toLowerCase();
  const current = !!g.certSerial && g.certSerial === serial;
  const previous =
    !!g.prevCertSerial && g.prevCertSerial === serial && !!g.prevCertUntil && f.now < g.prevCertUntil;
  if (!current && !previous) return deny(401, 'serial-mismatch', grantId, who);
  if (g.subjectUser !== subject) return deny(401, 'subject-mismatch', grantId, who);
  if (!f.action) return { ok: true, grant: g };
  const granted = [f.action, ...(f.action.or ?? [])].find(
    (a) => allowsResource(g.scope, a.resource) && g.scope.verbs.includes(a.verb),
  );
  if (!granted) {
    // The reason names the first pair's failing check (audit only; the caller sees one text).
    if (!allowsResource(g.scope, f.action.resource)) return deny(403, 'resource-not-granted', grantId, who);
    return deny(403, 'verb-not-granted', grantId, who);
  }
  const { resource, verb } = granted;
  if (f.subjectMay && !f.subjectMay(resource, verb)) return deny(403, 'subject-not-permitted', grantId, who);
  return {
    ok: true,
    grant: g,
    filter: narrowFilter(g.scope, resource, f.action.filter),
    limit: rowLimit(g.scope, f.action.limit),
  };
};

/** The one text every denial answers with: no hint of which check failed. */
export const DENIAL_MESSAGE = { 401: 'peer not authorized', 403: 'forbidden by grant' } as const;
