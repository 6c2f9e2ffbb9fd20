// The guard of the peer channel: reads the client certificate (already trusted by TLS) and
// runs the fixed order of checks in core. Denials are generic to the caller, detailed in the
// audit line.
import type { Clock, Log, TrustStore } from '../../core/ports.ts';
import { readClaims } from '../../core/trust/claims.ts';
import { decidePeerRequest, type PeerDecision, type PeerRequestFacts } from '../../core/trust/peer-guard.ts';
import type { CertTools } from '../../core/trust/trust-ports.ts';

export interface PeerAccessDeps {
  trust: TrustStore;
  certs: CertTools;
  clock: Clock;
  audit: Pick<Log, 'info' | 'warn'>;
}

export class PeerAccess {
  constructor(private readonly d: PeerAccessDeps) {}

  async check(certDer: Uint8Array | undefined, action: PeerRequestFacts['action']): Promise<PeerDecision> {
    let decision: PeerDecision;
    let serial = '';
    if (!certDer?.length) decision = { ok: false, status: 401, reason: 'no-certificate' };
    else {
      const cert = this.d.certs.read(certDer);
      serial = cert.serial;
      const claims = readClaims(cert.extensions);
      decision = decidePeerRequest({
        claims,
        grant: claims.ok ? await this.d.trust.getGrant(claims.claims.grantId) : undefined,
        serial: cert.serial,
        now: this.d.clock.now(),
        certNotAfter: cert.notAfter,
        action,
      });
    }
    const line = {
      audit: 'peer-request',
      outcome: decision.ok ? 'allowed' : 'denied',
      grant_id: decision.ok ? decision.grant.id : decision.grantId,
      subject: decision.ok ? decision.grant.subjectUser : undefined,
      serial,
      resource: action?.resource,
      verb: action?.verb,
      reason: decision.ok ? undefined : decision.reason,
    };
    if (decision.ok) this.d.audit.info(line, 'peer request');
    else this.d.audit.warn(line, 'peer request denied');
    return decision;
  }
}
