// The TrustStore port over the shared Drizzle database (PGlite or PostgreSQL).
import { and, asc, eq, gt, inArray, isNotNull, isNull } from 'drizzle-orm';
import type { Grant, GrantStatus } from '../../core/trust/grant.ts';
import type { Scope } from '../../core/trust/scope.ts';
import type { ClaimOutcome } from '../../core/trust/token.ts';
import type {
  GrantPatch,
  IssuedCertificate,
  PeerRecord,
  PeerState,
  TrustStore,
} from '../../core/trust/trust-ports.ts';
import { enrollmentTokens, grants, issuedCertificates, peers } from './schema.ts';
import type { AnyPgDatabase } from './sql-store.ts';

const toGrant = (r: typeof grants.$inferSelect): Grant => ({
  id: r.id,
  peerName: r.peerName,
  subjectUser: r.subjectUser,
  status: r.status as GrantStatus,
  scope: r.scope as Scope,
  certSerial: r.certSerial,
  certNotAfter: r.certNotAfter,
  prevCertSerial: r.prevCertSerial,
  prevCertUntil: r.prevCertUntil,
  createdAt: r.createdAt,
  activatedAt: r.activatedAt,
  revokedAt: r.revokedAt,
  revokeReason: r.revokeReason,
});

const toPeer = (r: typeof peers.$inferSelect): PeerRecord => ({ ...r, state: r.state as PeerState });

export class SqlTrustStore implements TrustStore {
  constructor(private readonly db: AnyPgDatabase) {}

  async createGrant(g: Grant): Promise<void> {
    await this.db.insert(grants).values(g);
  }

  async getGrant(id: string): Promise<Grant | undefined> {
    const [r] = await this.db.select().from(grants).where(eq(grants.id, id));
    return r ? toGrant(r) : undefined;
  }

  async listGrants(status?: GrantStatus): Promise<Grant[]> {
    const rows = await this.db
      .select()
      .from(grants)
      .where(status ? eq(grants.status, status) : undefined)
      .orderBy(asc(grants.createdAt), asc(grants.id));
    return rows.map(toGrant);
  }

  async updateGrant(id: string, from: GrantStatus[], patch: GrantPatch): Promise<Grant | undefined> {
    const [r] = await this.db
      .update(grants)
      .set(patch)
      .where(and(eq(grants.id, id), inArray(grants.status, from)))
      .returning();
    return r ? toGrant(r) : undefined;
  }

  async createToken(t: { hash: string; grantId: string; expiresAt: Date }): Promise<void> {
    await this.db.insert(enrollmentTokens).values(t);
  }

  async claimToken(hash: string, now: Date): Promise<ClaimOutcome> {
    // One conditional UPDATE: the row lock makes concurrent claimers wait, and the loser
    // re-checks `used_at IS NULL` and matches nothing.
    const [won] = await this.db
      .update(enrollmentTokens)
      .set({ usedAt: now })
      .where(
        and(
          eq(enrollmentTokens.hash, hash),
          isNull(enrollmentTokens.usedAt),
          gt(enrollmentTokens.expiresAt, now),
        ),
      )
      .returning({ grantId: enrollmentTokens.grantId });
    if (won) return { kind: 'claimed', grantId: won.grantId };
    const [row] = await this.db.select().from(enrollmentTokens).where(eq(enrollmentTokens.hash, hash));
    if (!row) return { kind: 'unknown' };
    return row.usedAt ? { kind: 'used' } : { kind: 'expired' };
  }

  async releaseToken(hash: string): Promise<void> {
    await this.db.update(enrollmentTokens).set({ usedAt: null }).where(eq(enrollmentTokens.hash, hash));
  }

  async recordCertificate(c: Omit<IssuedCertificate, 'revokedAt'>): Promise<void> {
    await this.db.insert(issuedCertificates).values(c);
  }

  async revokeCertificates(grantId: string, at: Date): Promise<string[]> {
    const rows = await this.db
      .update(issuedCertificates)
      .set({ revokedAt: at })
      .where(and(eq(issuedCertificates.grantId, grantId), isNull(issuedCertificates.revokedAt)))
      .returning({ serial: issuedCertificates.serial });
    return rows.map((r) => r.serial);
  }

  async revokedCertificates(): Promise<IssuedCertificate[]> {
    return this.db
      .select()
      .from(issuedCertificates)
      .where(isNotNull(issuedCertificates.revokedAt))
      .orderBy(asc(issuedCertificates.revokedAt));
  }

  async putPeer(p: PeerRecord): Promise<void> {
    const { name: _n, createdAt: _c, ...rest } = p;
    await this.db.insert(peers).values(p).onConflictDoUpdate({ target: peers.name, set: rest });
  }

  async getPeer(name: string): Promise<PeerRecord | undefined> {
    const [r] = await this.db.select().from(peers).where(eq(peers.name, name));
    return r ? toPeer(r) : undefined;
  }

  async listPeers(): Promise<PeerRecord[]> {
    return (await this.db.select().from(peers).orderBy(asc(peers.name))).map(toPeer);
  }

  async updatePeer(
    name: string,
    patch: Partial<Pick<PeerRecord, 'state' | 'lastSuccessAt' | 'lastFailureAt' | 'lastError'>>,
  ): Promise<void> {
    await this.db.update(peers).set(patch).where(eq(peers.name, name));
  }

  async deletePeer(name: string): Promise<boolean> {
    const rows = await this.db.delete(peers).where(eq(peers.name, name)).returning({ name: peers.name });
    return rows.length > 0;
  }
}
