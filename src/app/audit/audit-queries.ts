// Reading the audit trail (GET /system/audit): rows of the hot and cold tables in chain order,
// as the API shows them. The view is exactly the hashed fields plus seq and hash, so a client
// can recompute the chain from what it was given (flotilla audit verify).
import type { AuditRow } from '../../core/audit/chain.ts';
import type { AuditStore } from '../../core/ports.ts';

export const AUDIT_PAGE_MAX = 1000;

export interface AuditRowView {
  seq: number;
  at: string;
  grant_id: string | null;
  peer: string | null;
  subject: string | null;
  verb: string;
  resource: string;
  query_hash: string;
  outcome: string;
  bytes_out: number;
  latency_ms: number;
  trace_id: string | null;
  hash: string;
}

export const auditRowView = (r: AuditRow): AuditRowView => ({
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
});

export class AuditQueries {
  constructor(private readonly audit: Pick<AuditStore, 'list'>) {}

  /** Up to `limit` rows from `since` (time) and after `after` (seq); `next_after` pages on. */
  async list(q: { since?: Date; after?: number; limit: number }): Promise<{
    rows: AuditRowView[];
    next_after: number | null;
  }> {
    const limit = Math.max(1, Math.min(q.limit, AUDIT_PAGE_MAX));
    const rows = await this.audit.list({ since: q.since, afterSeq: q.after, limit });
    return {
      rows: rows.map(auditRowView),
      next_after: rows.length === limit ? rows[rows.length - 1].seq : null,
    };
  }
}
