// Contract of the TrustStore port, on PGlite and on the machine's real PostgreSQL 15:
// grants with compare-and-set, tokens claimed atomically (one winner of concurrent claims),
// issued serials and revocation, peers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';
import { PostgresStore } from '../../src/adapters/store-postgres/postgres-store.ts';
import type { PeerRecord, Store } from '../../src/core/ports.ts';
import type { Grant } from '../../src/core/trust/grant.ts';
import { parseScope } from '../../src/core/trust/scope.ts';
import { createTempDatabase, type TempDatabase } from '../support/postgres.ts';

let n = 0;
const grant = (over: Partial<Grant> = {}): Grant => ({
  id: `grt_${(++n).toString(16).padStart(24, '0')}`,
  peerName: 'a',
  subjectUser: 'alice',
  status: 'pending',
  scope: parseScope({ resources: ['services'], verbs: ['list'] }),
  certSerial: null,
  certNotAfter: null,
  prevCertSerial: null,
  prevCertUntil: null,
  createdAt: new Date(Date.now() + n),
  activatedAt: null,
  revokedAt: null,
  revokeReason: null,
  ...over,
});

const peer = (name: string): PeerRecord => ({
  name,
  url: 'http://127.0.0.1:1',
  peerChannelUrl: 'https://127.0.0.1:2',
  clusterId: name,
  grantId: 'grt_x',
  subject: 'alice',
  certPem: 'CERT',
  keySealed: 'v1:sealed',
  caPem: 'CA',
  certSerial: '01',
  certNotAfter: new Date(Date.now() + 60_000),
  state: 'active',
  lastSuccessAt: null,
  lastFailureAt: null,
  lastError: null,
  createdAt: new Date(),
});

const contract = (name: string, open: () => Promise<{ store: Store; cleanup(): Promise<void> }>) =>
  describe(`TrustStore contract: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await open());
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    it('stores grants with their scope and lists them by status', async () => {
      const g = grant();
      await store.trust.createGrant(g);
      expect(await store.trust.getGrant(g.id)).toEqual(g);
      expect((await store.trust.listGrants('pending')).map((x) => x.id)).toContain(g.id);
      expect((await store.trust.listGrants('active')).map((x) => x.id)).not.toContain(g.id);
      expect(await store.trust.getGrant('grt_missing')).toBeUndefined();
    });

    it('updates a grant only from the expected states (compare-and-set)', async () => {
      const g = grant();
      await store.trust.createGrant(g);
      const active = await store.trust.updateGrant(g.id, ['pending'], { status: 'active', certSerial: 'ab' });
      expect(active).toMatchObject({ status: 'active', certSerial: 'ab' });
      expect(await store.trust.updateGrant(g.id, ['pending'], { status: 'active' })).toBeUndefined();
    });

    it('claims a token once: unknown, claimed, then used; expired tokens are expired', async () => {
      const g = grant();
      await store.trust.createGrant(g);
      const now = new Date();
      await store.trust.createToken({
        hash: `h-${g.id}`,
        grantId: g.id,
        expiresAt: new Date(now.getTime() + 60_000),
      });
      expect(await store.trust.claimToken('h-none', now)).toEqual({ kind: 'unknown' });
      expect(await store.trust.claimToken(`h-${g.id}`, now)).toEqual({ kind: 'claimed', grantId: g.id });
      expect(await store.trust.claimToken(`h-${g.id}`, now)).toEqual({ kind: 'used' });
      await store.trust.createToken({
        hash: `old-${g.id}`,
        grantId: g.id,
        expiresAt: new Date(now.getTime() - 1),
      });
      expect(await store.trust.claimToken(`old-${g.id}`, now)).toEqual({ kind: 'expired' });
    });

    it('gives exactly one winner of concurrent claims of one token', async () => {
      const g = grant();
      await store.trust.createGrant(g);
      await store.trust.createToken({
        hash: `race-${g.id}`,
        grantId: g.id,
        expiresAt: new Date(Date.now() + 60_000),
      });
      const results = await Promise.all(
        Array.from({ length: 12 }, () => store.trust.claimToken(`race-${g.id}`, new Date())),
      );
      expect(results.filter((r) => r.kind === 'claimed')).toHaveLength(1);
      expect(results.filter((r) => r.kind === 'used')).toHaveLength(11);
    });

    it('records serials and revokes every live one of a grant', async () => {
      const g = grant();
      const at = new Date();
      for (const s of ['0a', '0b'])
        await store.trust.recordCertificate({
          serial: `${s}${g.id}`,
          grantId: g.id,
          subject: 'alice',
          notAfter: new Date(Date.now() + 1000),
          issuedAt: at,
        });
      expect((await store.trust.revokeCertificates(g.id, at)).sort()).toEqual([`0a${g.id}`, `0b${g.id}`]);
      expect(await store.trust.revokeCertificates(g.id, at)).toEqual([]);
      const revoked = (await store.trust.revokedCertificates()).map((c) => c.serial);
      expect(revoked).toEqual(expect.arrayContaining([`0a${g.id}`, `0b${g.id}`]));
    });

    it('puts, updates, lists and deletes peers', async () => {
      await store.trust.putPeer(peer('b'));
      await store.trust.putPeer({ ...peer('b'), certSerial: '02' });
      await store.trust.updatePeer('b', { state: 'degraded', lastError: 'renewal failed' });
      expect(await store.trust.getPeer('b')).toMatchObject({ certSerial: '02', state: 'degraded' });
      expect((await store.trust.listPeers()).map((p) => p.name)).toEqual(['b']);
      expect(await store.trust.deletePeer('b')).toBe(true);
      expect(await store.trust.deletePeer('b')).toBe(false);
    });
  });

contract('PGlite', async () => ({ store: await PgliteStore.open(undefined), cleanup: async () => {} }));

let db: TempDatabase;
contract('PostgreSQL 15', async () => {
  db = await createTempDatabase('flotilla_trust');
  return { store: await PostgresStore.open(db.url), cleanup: () => db.drop() };
});
