// Cluster B's side of peering: grants, enrollment tokens, enrollment (claim → sign →
// activate) and revocation (serial onto the CRL before the answer).
import { createHash, randomBytes } from 'node:crypto';
import { FlotillaError } from '../../core/errors.ts';
import type { Clock, Log, TrustStore } from '../../core/ports.ts';
import {
  GRANT_ID_RE,
  GRANT_STATUSES,
  type Grant,
  type GrantStatus,
  mayIssueToken,
  transition,
} from '../../core/trust/grant.ts';
import { parseScope } from '../../core/trust/scope.ts';
import { claimError, isTokenShape, tokenTtlSeconds } from '../../core/trust/token.ts';
import type { Pki } from '../../core/trust/trust-ports.ts';

export const CLIENT_CERT_LIFETIME_MS = 24 * 3600 * 1000;
export const RENEW_GRACE_MS = 10 * 60 * 1000;
const NAME_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const SUBJECT_RE = /^[^\u0000-\u001f\u007f]{1,255}$/u;

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

export const grantView = (g: Grant) => ({
  id: g.id,
  peer_name: g.peerName,
  subject_user: g.subjectUser,
  status: g.status,
  scope: g.scope,
  cert_serial: g.certSerial,
  cert_not_after: g.certNotAfter?.toISOString() ?? null,
  created_at: g.createdAt.toISOString(),
  activated_at: g.activatedAt?.toISOString() ?? null,
  revoked_at: g.revokedAt?.toISOString() ?? null,
  revoke_reason: g.revokeReason,
});

export interface GrantDeps {
  trust: TrustStore;
  pki: Pki;
  clock: Clock;
  clusterId: string;
  /** Read at use: known only once the peer listener is bound. */
  peerChannelUrl(): string | undefined;
  /** Applies the current CRL to the peer listener and drops connections of these serials. */
  onRevoked(serials: string[]): Promise<void>;
  log: Pick<Log, 'info' | 'warn'>;
  certLifetimeMs?: number;
}

export class GrantUseCases {
  constructor(private readonly d: GrantDeps) {}

  async create(body: unknown): Promise<Grant> {
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new FlotillaError('VALIDATION_FAILED', 'body: an object {peer, subject, scope}');
    const unknown = Object.keys(b).filter((k) => !['peer', 'subject', 'scope'].includes(k));
    if (unknown.length)
      throw new FlotillaError('VALIDATION_FAILED', `unknown key ${unknown.map((k) => `"${k}"`).join(', ')}`);
    if (typeof b.peer !== 'string' || !NAME_RE.test(b.peer))
      throw new FlotillaError('VALIDATION_FAILED', 'peer: 1-63 letters, digits, "-", "_" or "."');
    if (typeof b.subject !== 'string' || !SUBJECT_RE.test(b.subject))
      throw new FlotillaError('VALIDATION_FAILED', 'subject: a user id of 1-255 printable characters');
    const scope = parseScope(b.scope);
    const g: Grant = {
      id: `grt_${randomBytes(12).toString('hex')}`,
      peerName: b.peer,
      subjectUser: b.subject,
      status: 'pending',
      scope,
      certSerial: null,
      certNotAfter: null,
      prevCertSerial: null,
      prevCertUntil: null,
      createdAt: this.d.clock.now(),
      activatedAt: null,
      revokedAt: null,
      revokeReason: null,
    };
    await this.d.trust.createGrant(g);
    this.d.log.info({ grant: g.id, peer: g.peerName, subject: g.subjectUser }, 'grant created');
    return g;
  }

  async list(status?: string): Promise<Grant[]> {
    if (status !== undefined && !(GRANT_STATUSES as readonly string[]).includes(status))
      throw new FlotillaError('VALIDATION_FAILED', `status: one of ${GRANT_STATUSES.join(', ')}`);
    return this.d.trust.listGrants(status as GrantStatus | undefined);
  }

  async show(id: string): Promise<Grant> {
    const g = GRANT_ID_RE.test(id) ? await this.d.trust.getGrant(id) : undefined;
    if (!g) throw new FlotillaError('NOT_FOUND', 'grant not found');
    return g;
  }

  /** A fresh enrollment token: returned once, stored only as its hash. */
  async token(id: string, ttlRaw: unknown): Promise<{ grant_id: string; token: string; expires_at: string }> {
    const ttl = tokenTtlSeconds(ttlRaw);
    const g = await this.show(id);
    if (!mayIssueToken(g))
      throw new FlotillaError('CONFLICT', `a ${g.status} grant takes no enrollment token`);
    const token = randomBytes(32).toString('hex');
    const expiresAt = new Date(this.d.clock.now().getTime() + ttl * 1000);
    await this.d.trust.createToken({ hash: hashToken(token), grantId: g.id, expiresAt });
    return { grant_id: g.id, token, expires_at: expiresAt.toISOString() };
  }

  async revoke(id: string, reason: unknown): Promise<Grant> {
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 500))
      throw new FlotillaError('VALIDATION_FAILED', 'reason: text of at most 500 characters');
    const g = await this.show(id);
    const status = transition(g.status, 'revoke');
    const at = this.d.clock.now();
    const updated = await this.d.trust.updateGrant(g.id, ['pending', 'active'], {
      status,
      revokedAt: at,
      revokeReason: (reason as string | undefined) ?? null,
    });
    if (!updated) throw new FlotillaError('CONFLICT', 'the grant changed meanwhile; try again');
    const serials = await this.d.trust.revokeCertificates(g.id, at);
    // Before answering: the next request with these certificates fails at TLS.
    await this.d.onRevoked(serials);
    this.d.log.info({ grant: g.id, serials }, 'grant revoked');
    return updated;
  }

  /**
   * A user is gone (DESIGN §9, M6: revoke on user delete): every pending or active grant
   * whose subject they are is revoked, each with its serials on the CRL before the answer.
   * Flotilla keeps no user table (users are the admin, OIDC subjects and service tokens), so
   * this is the one step "deleting a user" takes here. Returns the revoked grants.
   */
  async revokeSubject(subject: unknown, reason: unknown): Promise<Grant[]> {
    if (typeof subject !== 'string' || !SUBJECT_RE.test(subject))
      throw new FlotillaError('VALIDATION_FAILED', 'subject: a user id of 1-255 printable characters');
    const why = reason === undefined ? `user ${subject} deleted` : reason;
    const live = [
      ...(await this.d.trust.listGrants('pending')),
      ...(await this.d.trust.listGrants('active')),
    ];
    const out: Grant[] = [];
    for (const g of live.filter((x) => x.subjectUser === subject)) {
      try {
        out.push(await this.revoke(g.id, why));
      } catch (e) {
        // Revoked meanwhile by another request: it is what was asked.
        if (!(e instanceof FlotillaError && e.code === 'CONFLICT')) throw e;
      }
    }
    return out;
  }

  /** POST /federation/v1/enroll: no other authentication than the token. */
  async enroll(body: unknown) {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    if (typeof b.csr !== 'string' || b.csr.length > 8192 || !b.csr.includes('CERTIFICATE REQUEST'))
      throw new FlotillaError('VALIDATION_FAILED', 'csr: a PEM certificate request');
    const url = this.d.peerChannelUrl();
    if (!url) throw new FlotillaError('UNAVAILABLE', 'this manager runs no peer channel');
    // Claimed atomically before signing: of concurrent enrollments with one token, one signs.
    if (!isTokenShape(b.token)) throw claimError({ kind: 'unknown' })!;
    const hash = hashToken(b.token);
    const claim = await this.d.trust.claimToken(hash, this.d.clock.now());
    if (claim.kind !== 'claimed') throw claimError(claim)!;
    const g = await this.d.trust.getGrant(claim.grantId);
    if (!g || !mayIssueToken(g)) throw claimError({ kind: 'used' })!;
    let issued: Awaited<ReturnType<Pki['signClientCsr']>>;
    try {
      issued = await this.d.pki.signClientCsr(
        b.csr,
        { grantId: g.id, subject: g.subjectUser },
        this.d.certLifetimeMs ?? CLIENT_CERT_LIFETIME_MS,
      );
    } catch (e) {
      // A malformed CSR does not burn the token; nothing was signed.
      await this.d.trust.releaseToken(hash);
      throw e;
    }
    const now = this.d.clock.now();
    await this.d.trust.recordCertificate({
      serial: issued.serial,
      grantId: g.id,
      subject: g.subjectUser,
      notAfter: issued.notAfter,
      issuedAt: now,
    });
    const active = await this.d.trust.updateGrant(g.id, ['pending'], {
      status: transition(g.status, 'activate'),
      certSerial: issued.serial,
      certNotAfter: issued.notAfter,
      activatedAt: now,
    });
    if (!active) {
      // Revoked between claim and activation: the certificate must not work.
      await this.d.onRevoked(await this.d.trust.revokeCertificates(g.id, now));
      throw claimError({ kind: 'used' })!;
    }
    this.d.log.info({ grant: g.id, serial: issued.serial }, 'peer enrolled');
    return {
      certificate: issued.certificatePem,
      chain: [this.d.pki.caCertificatePem()],
      peer_channel_url: url,
      cluster_id: this.d.clusterId,
    };
  }

  /** Renewal over the peer channel: the guard has authenticated `grant`'s certificate. The
   * new certificate becomes the recorded one; the old one keeps working for RENEW_GRACE_MS
   * (or until it expires) so the peer's calls in flight survive the swap. */
  async renew(grant: Grant, body: unknown) {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    if (typeof b.csr !== 'string' || b.csr.length > 8192 || !b.csr.includes('CERTIFICATE REQUEST'))
      throw new FlotillaError('VALIDATION_FAILED', 'csr: a PEM certificate request');
    transition(grant.status, 'renew');
    const issued = await this.d.pki.signClientCsr(
      b.csr,
      { grantId: grant.id, subject: grant.subjectUser },
      this.d.certLifetimeMs ?? CLIENT_CERT_LIFETIME_MS,
    );
    const now = this.d.clock.now();
    await this.d.trust.recordCertificate({
      serial: issued.serial,
      grantId: grant.id,
      subject: grant.subjectUser,
      notAfter: issued.notAfter,
      issuedAt: now,
    });
    const graceEnd = now.getTime() + RENEW_GRACE_MS;
    const updated = await this.d.trust.updateGrant(grant.id, ['active'], {
      certSerial: issued.serial,
      certNotAfter: issued.notAfter,
      prevCertSerial: grant.certSerial,
      prevCertUntil: new Date(Math.min(graceEnd, grant.certNotAfter?.getTime() ?? graceEnd)),
    });
    if (!updated) {
      await this.d.onRevoked(await this.d.trust.revokeCertificates(grant.id, now));
      throw new FlotillaError('CONFLICT', 'the grant is no longer active');
    }
    this.d.log.info(
      { grant: grant.id, serial: issued.serial, previous: grant.certSerial },
      'peer certificate renewed',
    );
    return { certificate: issued.certificatePem, chain: [this.d.pki.caCertificatePem()] };
  }

  /** The CRL as published on the public URL (A checks it after a TLS failure). */
  async crl(): Promise<string> {
    const revoked = await this.d.trust.revokedCertificates();
    return this.d.pki.crlPem(revoked.map((c) => ({ serial: c.serial, revokedAt: c.revokedAt! })));
  }
}
