// The audit trail (GET /system/audit, admin), as functions over a client.
import type { FlotillaClient } from './api-client.ts';

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

export interface AuditPage {
  rows: AuditRowView[];
  /** Pass as `after` for the next page; null on the last. */
  next_after: number | null;
}

export const auditApi = (c: FlotillaClient) => ({
  list: (q: { since?: string; after?: number; limit?: number } = {}) =>
    c.request<AuditPage>('GET', '/system/audit', {
      query: {
        since: q.since,
        after: q.after === undefined ? undefined : String(q.after),
        limit: q.limit === undefined ? undefined : String(q.limit),
      },
    }),
  /** Every row from the first, page by page. */
  async *all(pageSize = 1000): AsyncGenerator<AuditRowView> {
    for (let after: number | null = 0; after !== null; ) {
      const page: AuditPage = await this.list({ after, limit: pageSize });
      yield* page.rows;
      after = page.next_after;
    }
  },
});
