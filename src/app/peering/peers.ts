// Cluster A's side: enroll with B, keep the peer record (key sealed), probe it, and tell a
// revocation (B's signed CRL lists our serial) from a network blip (it does not).
import { FlotillaError, isFlotillaError } from '../../core/errors.ts';
import type { Clock, Log, PeerRecord, SecretBox, TrustStore } from '../../core/ports.ts';
import { readClaims } from '../../core/trust/claims.ts';
import type { CertTools, PeerChannel } from '../../core/trust/trust-ports.ts';

const NAME_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export const peerView = (p: PeerRecord) => ({
  name: p.name,
  cluster_id: p.clusterId,
  url: p.url,
  peer_channel_url: p.peerChannelUrl,
  grant_id: p.grantId,
  subject: p.subject,
  state: p.state,
  cert_serial: p.certSerial,
  cert_not_after: p.certNotAfter.toISOString(),
  last_success_at: p.lastSuccessAt?.toISOString() ?? null,
  last_failure_at: p.lastFailureAt?.toISOString() ?? null,
  last_error: p.lastError,
  created_at: p.createdAt.toISOString(),
});

const baseUrl = (raw: unknown): string => {
  let u: URL;
  try {
    u = new URL(String(raw));
  } catch {
    throw new FlotillaError('VALIDATION_FAILED', 'url: the peer manager URL (http or https)');
  }
  if (!['http:', 'https:'].includes(u.protocol) || u.username || u.password || u.search || u.hash)
    throw new FlotillaError('VALIDATION_FAILED', 'url: http(s)://host[:port] without credentials or query');
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
};

export interface PeerDeps {
  trust: TrustStore;
  channel: PeerChannel;
  certs: CertTools;
  box: SecretBox;
  clock: Clock;
  clusterId: string;
  log: Pick<Log, 'info' | 'warn'>;
  /** Peer records changed (enrolled, removed, renewed, state): federation re-reads them. */
  onChange?: () => Promise<void>;
}

export class PeerUseCases {
  constructor(private readonly d: PeerDeps) {}

  async enroll(body: unknown): Promise<PeerRecord> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const url = baseUrl(b.url);
    if (typeof b.token !== 'string' || !/^[0-9a-f]{64}$/.test(b.token))
      throw new FlotillaError('VALIDATION_FAILED', 'token: the 64-hex enrollment token');
    if (b.name !== undefined && (typeof b.name !== 'string' || !NAME_RE.test(b.name)))
      throw new FlotillaError('VALIDATION_FAILED', 'name: 1-63 letters, digits, "-", "_" or "."');
    const { keyPem, csrPem } = await this.d.certs.createKeyAndCsr(`flotilla ${this.d.clusterId}`);
    const answer = await this.d.channel.enroll(url, { token: b.token, csr: csrPem });
    if (!NAME_RE.test(answer.cluster_id) || !answer.chain?.[0])
      throw new FlotillaError('PEER_UNREACHABLE', 'the peer answered enrollment in an unexpected shape');
    const cert = this.d.certs.read(answer.certificate);
    const claims = readClaims(cert.extensions);
    if (!claims.ok)
      throw new FlotillaError('PEER_UNREACHABLE', 'the peer issued a certificate without valid claims');
    const name = (b.name as string | undefined) ?? answer.cluster_id;
    const peer: PeerRecord = {
      name,
      url,
      peerChannelUrl: baseUrl(answer.peer_channel_url),
      clusterId: answer.cluster_id,
      grantId: claims.claims.grantId,
      subject: claims.claims.subject,
      certPem: answer.certificate,
      keySealed: this.d.box.seal(keyPem),
      caPem: answer.chain[0],
      certSerial: cert.serial,
      certNotAfter: cert.notAfter,
      state: 'active',
      lastSuccessAt: null,
      lastFailureAt: null,
      lastError: null,
      createdAt: this.d.clock.now(),
    };
    await this.d.trust.putPeer(peer);
    await this.d.channel.forget(name);
    await this.d.onChange?.();
    this.d.log.info({ peer: name, grant: peer.grantId, serial: peer.certSerial }, 'enrolled with peer');
    return peer;
  }

  list(): Promise<PeerRecord[]> {
    return this.d.trust.listPeers();
  }

  async get(name: string): Promise<PeerRecord> {
    const p = NAME_RE.test(name) ? await this.d.trust.getPeer(name) : undefined;
    if (!p) throw new FlotillaError('NOT_FOUND', 'peer not found');
    return p;
  }

  async remove(name: string): Promise<void> {
    await this.get(name);
    await this.d.trust.deletePeer(name);
    await this.d.channel.forget(name);
    await this.d.onChange?.();
  }

  /** Renews the peer's certificate before it expires: a new key and CSR over the channel,
   * then one write swaps certificate, key and serial (the channel opens fresh connections
   * for the new serial and lets calls on the old ones finish). A failure marks the peer
   * `degraded`; only B's CRL naming our serial marks it `revoked`. */
  async renew(name: string): Promise<PeerRecord> {
    const p = await this.get(name);
    if (p.state === 'revoked')
      throw new FlotillaError('CONFLICT', 'a revoked peer cannot renew; enroll again');
    const { keyPem, csrPem } = await this.d.certs.createKeyAndCsr(`flotilla ${this.d.clusterId}`);
    let why: string;
    let transport = false;
    try {
      const res = await this.d.channel.request(p, 'POST', '/federation/v1/renew', { csr: csrPem });
      const cert = (res.body as { certificate?: unknown } | undefined)?.certificate;
      if (res.status === 200 && typeof cert === 'string') {
        const read = this.d.certs.read(cert);
        const claims = readClaims(read.extensions);
        if (claims.ok && claims.claims.grantId === p.grantId && claims.claims.subject === p.subject) {
          const renewed: PeerRecord = {
            ...p,
            certPem: cert,
            keySealed: this.d.box.seal(keyPem),
            certSerial: read.serial,
            certNotAfter: read.notAfter,
            state: 'active',
            lastSuccessAt: this.d.clock.now(),
            lastError: null,
          };
          await this.d.trust.putPeer(renewed);
          await this.d.onChange?.();
          this.d.log.info(
            { peer: name, serial: read.serial, previous: p.certSerial },
            'peer certificate renewed',
          );
          return renewed;
        }
        why = 'renewal answered a certificate with other claims';
      } else why = `renewal refused (${res.status})`;
    } catch (e) {
      if (!isFlotillaError(e) || e.code !== 'PEER_UNREACHABLE') throw e;
      why = `renewal failed: ${e.message}`;
      transport = e.details?.transport === true;
    }
    const revoked = transport && (await this.listedOnCrl(p));
    await this.d.trust.updatePeer(name, {
      state: revoked ? 'revoked' : 'degraded',
      lastFailureAt: this.d.clock.now(),
      lastError: revoked ? 'certificate revoked by the peer' : why,
    });
    await this.d.onChange?.();
    this.d.log.warn(
      { peer: name, revoked },
      revoked ? 'peer revoked our certificate' : 'peer renewal failed',
    );
    return this.get(name);
  }

  /** Renews every peer whose certificate has less than `aheadMs` left (the renewal loop). */
  async renewDue(aheadMs: number): Promise<void> {
    const due = this.d.clock.now().getTime() + aheadMs;
    for (const p of await this.d.trust.listPeers())
      if (p.state !== 'revoked' && p.certNotAfter.getTime() <= due) await this.renew(p.name);
  }

  /** Probes the peer channel (capabilities) and records the outcome; returns the record and
   * what B says the grant allows. */
  async status(name: string): Promise<{ peer: PeerRecord; capabilities?: unknown }> {
    const p = await this.get(name);
    try {
      const res = await this.d.channel.request(p, 'GET', '/federation/v1/capabilities');
      if (res.status === 200) {
        await this.d.trust.updatePeer(name, { lastSuccessAt: this.d.clock.now(), lastError: null });
        return { peer: await this.get(name), capabilities: res.body };
      }
      await this.failed(p, `peer answered ${res.status}`);
    } catch (e) {
      if (!isFlotillaError(e) || e.code !== 'PEER_UNREACHABLE') throw e;
      await this.failed(p, e.message, e.details?.transport === true);
    }
    return { peer: await this.get(name) };
  }

  private async failed(p: PeerRecord, why: string, transport = false): Promise<void> {
    // A dropped connection alone proves nothing: only B's signed CRL naming our serial revokes.
    const revoked = transport ? await this.listedOnCrl(p) : false;
    await this.d.trust.updatePeer(p.name, {
      lastFailureAt: this.d.clock.now(),
      lastError: revoked ? 'certificate revoked by the peer' : why,
      ...(revoked ? { state: 'revoked' as const } : {}),
    });
    if (revoked) {
      await this.d.channel.forget(p.name);
      await this.d.onChange?.();
      this.d.log.warn({ peer: p.name, serial: p.certSerial }, 'peer revoked our certificate');
    }
  }

  private async listedOnCrl(p: PeerRecord): Promise<boolean> {
    try {
      const serials = await this.d.certs.revokedSerials(await this.d.channel.fetchCrl(p.url), p.caPem);
      return !!serials?.includes(p.certSerial);
    } catch {
      return false;
    }
  }
}
