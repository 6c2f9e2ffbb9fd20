// The AuditStore port over the shared Drizzle database (PGlite or PostgreSQL). Appends take a
// transaction-scoped advisory lock, so every instance on one database links its batch after
// the true tip: one chain per database, whoever writes (ADR 0014).
import { and, asc, desc, gt, gte, lt, type SQL, sql } from 'drizzle-orm';
import { type AuditEntry, type AuditOutcome, type AuditRow, linkRows } from '../../core/audit/chain.ts';
import type { AuditStore } from '../../core/ports.ts';
import { audit, auditCold } from './schema.ts';
import type { AnyPgDatabase } from './sql-store.ts';

// "audt": the lock appends and cold moves take (held to the end of their transaction).
const AUDIT_LOCK_KEY = 0x61756474;
const INSERT_CHUNK = 500;

type Row = typeof audit.$inferSelect;

const toRow = (r: Row): AuditRow => ({
  seq: Number(r.seq),
  at: r.at,
  grantId: r.grantId,
  peer: r.peer,
  subject: r.subject,
  verb: r.verb,
  resource: r.resource,
  queryHash: r.queryHash,
  outcome: r.outcome as AuditOutcome,
  bytesOut: Number(r.bytesOut),
  latencyMs: Number(r.latencyMs),
  traceId: r.traceId,
  hash: r.hash,
});

export class SqlAuditStore implements AuditStore {
  constructor(private readonly db: AnyPgDatabase) {}

  async append(entries: readonly AuditEntry[]): Promise<AuditRow[]> {
    if (entries.length === 0) return [];
    return this.db.transaction(async (tx) => {
      await tx.execute(sql.raw(`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`));
      // The tip is the highest seq of either table (a cold move may have taken the newest).
      const tips = await Promise.all(
        [audit, auditCold].map((t) =>
          tx.select({ seq: t.seq, hash: t.hash }).from(t).orderBy(desc(t.seq)).limit(1),
        ),
      );
      const tip = tips
        .flat()
        .map((r) => ({ seq: Number(r.seq), hash: r.hash }))
        .sort((a, b) => b.seq - a.seq)[0];
      const rows = linkRows(tip, entries);
      for (let i = 0; i < rows.length; i += INSERT_CHUNK)
        await tx.insert(audit).values(rows.slice(i, i + INSERT_CHUNK));
      return rows;
    });
  }

  async list(q: { since?: Date; afterSeq?: number; limit: number }): Promise<AuditRow[]> {
    const where = (t: typeof audit | typeof auditCold): SQL | undefined =>
      and(
        q.since ? gte(t.at, q.since) : undefined,
        q.afterSeq !== undefined ? gt(t.seq, q.afterSeq) : undefined,
      );
    // Each table's first `limit` rows, then the first `limit` of both.
    const [hot, cold] = await Promise.all([
      this.db.select().from(audit).where(where(audit)).orderBy(asc(audit.seq)).limit(q.limit),
      this.db.select().from(auditCold).where(where(auditCold)).orderBy(asc(auditCold.seq)).limit(q.limit),
    ]);
    return [...hot, ...cold]
      .map(toRow)
      .sort((a, b) => a.seq - b.seq)
      .slice(0, q.limit);
  }

  async moveToCold(before: Date): Promise<number> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql.raw(`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`));
      const moved = await tx.delete(audit).where(lt(audit.at, before)).returning();
      for (let i = 0; i < moved.length; i += INSERT_CHUNK)
        await tx.insert(auditCold).values(moved.slice(i, i + INSERT_CHUNK));
      return moved.length;
    });
  }
}
