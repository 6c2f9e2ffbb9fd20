// The peer-channel guard's grant cache: only allowing reads are reused, a denial re-reads,
// and forget() (called by revocation and renewal) takes effect on the next request.
import { describe, expect, it } from 'vitest';
import { PeerAccess } from '../../src/app/peering/peer-access.ts';
import type { TrustStore } from '../../src/core/ports.ts';
import { encodeUtf8String, OID_GRANT_ID, OID_SUBJECT } from '../../src/core/trust/claims.ts';
import type { Grant } from '../../src/core/trust/grant.ts';
import { parseScope } from '../../src/core/trust/scope.ts';

const GID = `grt_${'c'.repeat(24)}`;
const base: Grant = {
  id: GID,
  peerName: 'a',
  subjectUser: 'alice',
  status: 'active',
  scope: parseScope({ resources: ['services'], verbs: ['list'] }),
  certSerial: '11',
  certNotAfter: new Date(Date.now() + 3_600_000),
  prevCertSerial: null,
  prevCertUntil: null,
  createdAt: new Date(),
  activatedAt: new Date(),
  revokedAt: null,
  revokeReason: null,
};

const setup = () => {
  const state = { grant: { ...base }, reads: 0 };
  const trust = {
    getGrant: async (id: string) => {
      state.reads++;
      return id === GID ? { ...state.grant } : undefined;
    },
  } as unknown as TrustStore;
  const lines: Array<Record<string, unknown>> = [];
  const audit = {
    info: (o: Record<string, unknown>) => lines.push(o),
    warn: (o: Record<string, unknown>) => lines.push(o),
  };
  const access = new PeerAccess({ trust, clock: { now: () => new Date() }, audit, grantCacheMs: 60_000 });
  const cert = (serial: string) => ({
    serial,
    notAfter: new Date(Date.now() + 60_000),
    extensions: [
      { oid: OID_GRANT_ID, value: encodeUtf8String(GID) },
      { oid: OID_SUBJECT, value: encodeUtf8String('alice') },
    ],
  });
  return { state, access, cert, lines };
};

describe('PeerAccess', () => {
  it('reuses an allowing grant read and audits every request', async () => {
    const { state, access, cert, lines } = setup();
    expect((await access.check(cert('11'), undefined)).ok).toBe(true);
    expect((await access.check(cert('11'), undefined)).ok).toBe(true);
    expect(state.reads).toBe(1);
    expect(lines.map((l) => l.outcome)).toEqual(['allowed', 'allowed']);
  });

  it('re-reads on a denial, so a renewed serial works at once', async () => {
    const { state, access, cert } = setup();
    await access.check(cert('11'), undefined);
    state.grant = {
      ...state.grant,
      certSerial: '22',
      prevCertSerial: '11',
      prevCertUntil: new Date(Date.now() + 1000),
    };
    expect((await access.check(cert('22'), undefined)).ok).toBe(true);
    expect(state.reads).toBe(2);
  });

  it('denies a revoked grant on the next request after forget()', async () => {
    const { state, access, cert, lines } = setup();
    await access.check(cert('11'), undefined);
    state.grant = { ...state.grant, status: 'revoked' };
    access.forget(GID);
    expect(await access.check(cert('11'), undefined)).toMatchObject({
      ok: false,
      status: 401,
      reason: 'grant-revoked',
    });
    expect(lines.at(-1)).toMatchObject({ outcome: 'denied', reason: 'grant-revoked', grant_id: GID });
  });

  it('denies a connection without a certificate', async () => {
    const { access } = setup();
    expect(await access.check(undefined, undefined)).toMatchObject({ ok: false, status: 401 });
  });
});
