// The AuditStore port over the shared Drizzle database (PGlite or PostgreSQL). On PostgreSQL
// appends take a transaction-scoped advisory lock, so every instance on one database links its
// batch after the true tip: one chain per database, whoever writes. PGlite has one writer,
// which keeps the tip in memory (ADR 0014).
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

/** One statement with one JSON parameter for a whole batch: thousands of bound parameters
 * cost far more to build and parse (PGlite runs on this thread). */
const insertAsJson = (table: 'audit', rows: readonly AuditRow[]): SQL => {
  const json = JSON.stringify(
    rows.map((r) => ({
      seq: r.seq,
      at: r.at.toISOString(),
      grant_id: r.grantId,
      peer: r.peer,
      subject: r.subject,
      verb: r.verb,
      resource: r.resource,
      query_hash: r.queryHash,
      outcome: r.outcome,
      bytes_out: r.bytesOut,
      latency_ms: r.latencyMs,
      trace_id: r.traceId,
      hash: r.hash,
    })),
  );
  return sql`INSERT INTO ${sql.identifier(table)} (seq, at, grant_id, peer, subject, verb, resource, query_hash, outcome, bytes_out, latency_ms, trace_id, hash)
    SELECT seq, at, grant_id, peer, subject, verb, resource, query_hash, outcome, bytes_out, latency_ms, trace_id, hash
    FROM json_to_recordset(${json}::json) AS r(seq bigint, at timestamptz, grant_id text, peer text, subject text,
      verb text, resource text, query_hash text, outcome text, bytes_out bigint, latency_ms double precision,
      trace_id text, hash text)`;
};

export class SqlAuditStore implements AuditStore {
  /** The sole writer's cached tip (undefined: not read yet). */
  private tip: { seq: number; hash: string } | null | undefined;
  private turn: Promise<unknown> = Promise.resolve();

  /**
   * `soleWriter`: no other process can write this database (PGlite: one process owns its data
   * dir). Appends are then taken in turn here, the tip is kept in memory, and a batch is one
   * INSERT with no lock or read — PGlite runs on this thread, and a transaction there holds
   * every other query back. Otherwise (PostgreSQL, shared by instances) each append is a
   * transaction under an advisory lock that reads the tip.
   */
  constructor(
    private readonly db: AnyPgDatabase,
    private readonly opts: { soleWriter?: boolean } = {},
  ) {}

  private readTip = async (q: AnyPgDatabase): Promise<{ seq: number; hash: string } | null> => {
    // The highest seq of either table (a cold move may have taken the newest).
    const tips = await Promise.all(
      [audit, auditCold].map((t) =>
        q.select({ seq: t.seq, hash: t.hash }).from(t).orderBy(desc(t.seq)).limit(1),
      ),
    );
    return (
      tips
        .flat()
        .map((r) => ({ seq: Number(r.seq), hash: r.hash }))
        .sort((a, b) => b.seq - a.seq)[0] ?? null
    );
  };

  async append(entries: readonly AuditEntry[]): Promise<AuditRow[]> {
    if (entries.length === 0) return [];
    if (this.opts.soleWriter) {
      const run = this.turn.then(async () => {
        if (this.tip === undefined) this.tip = await this.readTip(this.db);
        const rows = linkRows(this.tip ?? undefined, entries);
        // One statement: all of the batch or none of it.
        await this.db.execute(insertAsJson('audit', rows));
        const last = rows[rows.length - 1];
        this.tip = { seq: last.seq, hash: last.hash };
        return rows;
      });
      this.turn = run.catch(() => {});
      return run;
    }
    return this.db.transaction(async (tx) => {
      // The commit need not wait for its WAL flush (ADR 0014): a crash can lose only the
      // newest batches, as it loses the rows still queued in memory; the chain stays whole.
      await tx.execute(sql.raw('SET LOCAL synchronous_commit = off'));
      await tx.execute(sql.raw(`SELECT pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`));
      const rows = linkRows((await this.readTip(tx as unknown as AnyPgDatabase)) ?? undefined, entries);
      for (let i = 0; i < rows.length; i += INSERT_CHUNK)
        await tx.execute(insertAsJson('audit', rows.slice(i, i + INSERT_CHUNK)));
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
