// Ports of the trust layer (re-exported by src/core/ports.ts; kept here so the shared file's
// hunk stays one line). Adapters: store-sql (TrustStore), pki (Pki), peer-mtls (PeerChannel).
import type { RawExtension } from './claims.ts';
import type { Grant, GrantStatus } from './grant.ts';
import type { ClaimOutcome } from './token.ts';

export type PeerState = 'active' | 'degraded' | 'revoked';

/** Cluster A's record of a cluster B it enrolled with. The key is sealed; it never leaves. */
export interface PeerRecord {
  name: string;
  /** B's public URL (enrollment, CRL). */
  url: string;
  peerChannelUrl: string;
  clusterId: string;
  grantId: string;
  subject: string;
  certPem: string;
  keySealed: string;
  /** B's CA: the only root A trusts for B's peer channel. */
  caPem: string;
  certSerial: string;
  certNotAfter: Date;
  state: PeerState;
  lastSuccessAt: Date | null;
  lastFailureAt: Date | null;
  lastError: string | null;
  createdAt: Date;
}

export interface IssuedCertificate {
  serial: string;
  grantId: string;
  subject: string;
  notAfter: Date;
  issuedAt: Date;
  revokedAt: Date | null;
}

export type GrantPatch = Partial<
  Pick<
    Grant,
    | 'status'
    | 'certSerial'
    | 'certNotAfter'
    | 'prevCertSerial'
    | 'prevCertUntil'
    | 'activatedAt'
    | 'revokedAt'
    | 'revokeReason'
  >
>;

export interface TrustStore {
  createGrant(g: Grant): Promise<void>;
  getGrant(id: string): Promise<Grant | undefined>;
  listGrants(status?: GrantStatus): Promise<Grant[]>;
  /** Compare-and-set: applies only while the grant is in one of `from`; the updated grant or
   * undefined when it was not (a concurrent change won). */
  updateGrant(id: string, from: GrantStatus[], patch: GrantPatch): Promise<Grant | undefined>;

  /** Stores the SHA-256 of a token, never the token. */
  createToken(t: { hash: string; grantId: string; expiresAt: Date }): Promise<void>;
  /** Marks the token used in one statement; of concurrent claims exactly one is `claimed`. */
  claimToken(hash: string, now: Date): Promise<ClaimOutcome>;
  /** Gives a claimed token back (signing failed after the claim). */
  releaseToken(hash: string): Promise<void>;

  recordCertificate(c: Omit<IssuedCertificate, 'revokedAt'>): Promise<void>;
  /** Revokes every unrevoked certificate of the grant; returns their serials. */
  revokeCertificates(grantId: string, at: Date): Promise<string[]>;
  revokedCertificates(): Promise<IssuedCertificate[]>;

  putPeer(p: PeerRecord): Promise<void>;
  getPeer(name: string): Promise<PeerRecord | undefined>;
  listPeers(): Promise<PeerRecord[]>;
  updatePeer(
    name: string,
    patch: Partial<Pick<PeerRecord, 'state' | 'lastSuccessAt' | 'lastFailureAt' | 'lastError'>>,
  ): Promise<void>;
  deletePeer(name: string): Promise<boolean>;
}

export interface IssuedCert {
  certificatePem: string;
  serial: string;
  notAfter: Date;
}

/** This manager's certificate authority (ECDSA P-256), its key sealed at rest. */
export interface Pki {
  caCertificatePem(): string;
  /** Verifies the CSR's own signature, signs a client certificate carrying exactly the two
   * claims, then re-reads the result strictly; throws VALIDATION_FAILED for a bad CSR. */
  signClientCsr(
    csrPem: string,
    claims: { grantId: string; subject: string },
    lifetimeMs: number,
  ): Promise<IssuedCert>;
  /** A server certificate for the peer listener, for these host names or addresses. */
  issueServerCertificate(hosts: string[], lifetimeMs: number): Promise<{ certPem: string; keyPem: string }>;
  crlPem(revoked: Array<{ serial: string; revokedAt: Date }>): Promise<string>;
}

/** Certificate reading and key making that need no CA (both sides use it). */
export interface CertTools {
  /** Serial (lowercase hex), expiry and the raw extensions of a certificate (PEM or DER). */
  read(cert: string | Uint8Array): { serial: string; notAfter: Date; extensions: RawExtension[] };
  createKeyAndCsr(commonName: string): Promise<{ keyPem: string; csrPem: string }>;
  /** The serials a CRL lists, when its signature verifies against `caPem`; else undefined. */
  revokedSerials(crlPem: string, caPem: string): Promise<string[] | undefined>;
}

/** Client side of the peer channel (mTLS) and of enrollment (plain HTTPS/HTTP to B's public URL). */
export interface PeerChannel {
  enroll(
    baseUrl: string,
    body: { token: string; csr: string },
  ): Promise<{ certificate: string; chain: string[]; peer_channel_url: string; cluster_id: string }>;
  /** B's CRL, as B publishes it on its public URL. */
  fetchCrl(baseUrl: string): Promise<string>;
  /** A request over mTLS as the peer's certificate. Throws PEER_UNREACHABLE with `details.tls`
   * true when the connection failed before any HTTP answer, or none came within `timeoutMs`
   * (the channel's own timeout when not given). */
  request(
    peer: PeerRecord,
    method: string,
    path: string,
    body?: unknown,
    opts?: { timeoutMs?: number },
  ): Promise<{ status: number; body: unknown }>;
  /** Drops pooled connections of a peer (after a certificate change or removal). */
  forget(peerName: string): Promise<void>;
  close(): Promise<void>;
}
