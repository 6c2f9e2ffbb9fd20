// The guard of the peer channel: takes the client certificate (already trusted by TLS, read
// once per connection) and runs the fixed order of checks in core. Denials are generic to
// the caller, detailed in the audit line.
import type { Clock, Log, TrustStore } from '../../core/ports.ts';
import { readClaims } from '../../core/trust/claims.ts';
import type { Grant } from '../../core/trust/grant.ts';
import { decidePeerRequest, type PeerDecision, type PeerRequestFacts } from '../../core/trust/peer-guard.ts';
import type { CertTools } from '../../core/trust/trust-ports.ts';

export type ReadCert = ReturnType<CertTools['read']>;

export interface PeerAccessDeps {
  trust: TrustStore;
  clock: Clock;
  audit: Pick<Log, 'info' | 'warn'>;
  /** How long an allowing grant read may be reused (a denial always re-reads). */
  grantCacheMs?: number;
}

export class PeerAccess {
  private readonly grants = new Map<string, { grant: Grant; until: number }>();
  constructor(private readonly d: PeerAccessDeps) {}

  /** Drops cached grants (revocation and renewal here call it before they answer). */
  forget(grantId?: string): void {
    if (grantId) this.grants.delete(grantId);
    else this.grants.clear();
  }

  async check(cert: ReadCert | undefined, action: PeerRequestFacts['action']): Promise<PeerDecision> {
    let decision: PeerDecision;
    if (!cert) decision = { ok: false, status: 401, reason: 'no-certificate' };
    else {
      const claims = readClaims(cert.extensions);
      const decide = (grant: Grant | undefined) =>
        decidePeerRequest({
          claims,
          grant,
          serial: cert.serial,
          now: this.d.clock.now(),
          certNotAfter: cert.notAfter,
          action,
        });
      const id = claims.ok ? claims.claims.grantId : undefined;
      const cached = id ? this.grants.get(id) : undefined;
      const now = Date.now();
      decision =
        cached && cached.until > now ? decide(cached.grant) : { ok: false, status: 401, reason: 'uncached' };
      // Only an allowing answer comes from the cache; anything else is decided on a fresh read.
      if (!decision.ok && id) {
        const fresh = await this.d.trust.getGrant(id);
        decision = decide(fresh);
        if (fresh?.status === 'active')
          this.grants.set(id, { grant: fresh, until: now + (this.d.grantCacheMs ?? 1000) });
        else this.grants.delete(id);
      } else if (!decision.ok) decision = decide(undefined);
    }
    const line = {
      audit: 'peer-request',
      outcome: decision.ok ? 'allowed' : 'denied',
      grant_id: decision.ok ? decision.grant.id : decision.grantId,
      subject: decision.ok ? decision.grant.subjectUser : undefined,
      serial: cert?.serial,
      resource: action?.resource,
      verb: action?.verb,
      reason: decision.ok ? undefined : decision.reason,
    };
    if (decision.ok) this.d.audit.info(line, 'peer request');
    else this.d.audit.warn(line, 'peer request denied');
    return decision;
  }
}
