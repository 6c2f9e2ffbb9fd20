// GET /system/audit: the audit trail (admin only), both tables in chain order.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AUDIT_PAGE_MAX, type AuditQueries } from '../../app/audit/audit-queries.ts';
import { fail } from '../../core/errors.ts';
import { type HttpContext, principalOf } from '../context.ts';

const query = z.strictObject({
  since: z.iso
    .datetime({ offset: true, message: 'an ISO 8601 time such as 2026-01-31T12:00:00Z' })
    // PostgreSQL has no year 0; nothing is older than year 1 or newer than 9999 here.
    .refine((s) => {
      const y = new Date(s).getUTCFullYear();
      return y >= 1 && y <= 9999;
    }, 'a time from year 1 to 9999')
    .optional(),
  limit: z.coerce
    .number({ message: `a whole number from 1 to ${AUDIT_PAGE_MAX}` })
    .int(`a whole number from 1 to ${AUDIT_PAGE_MAX}`)
    .min(1, `a whole number from 1 to ${AUDIT_PAGE_MAX}`)
    .max(AUDIT_PAGE_MAX, `a whole number from 1 to ${AUDIT_PAGE_MAX}`)
    .default(100),
  after: z.coerce
    .number({ message: 'a row seq (whole number, 0 or more)' })
    .int('a row seq (whole number, 0 or more)')
    .min(0, 'a row seq (whole number, 0 or more)')
    .max(Number.MAX_SAFE_INTEGER, 'a row seq (whole number, 0 or more)')
    .optional(),
});

const requireAdmin = async (ctx: HttpContext, req: FastifyRequest) => {
  const p = await principalOf(ctx, req);
  if (p.kind !== 'admin') fail('FORBIDDEN', 'the audit trail is for the admin');
};

export const auditRoutes =
  (audit: AuditQueries) =>
  async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
    app.get(
      '/system/audit',
      {
        onRequest: (req) => requireAdmin(ctx, req),
        schema: {
          tags: ['peering'],
          summary: 'Audit trail of peer requests and federation changes (admin), hash-chained',
          security: [{ basic: [] }],
          querystring: query,
        },
      },
      async (req) => {
        const q = req.query as z.infer<typeof query>;
        return audit.list({ since: q.since ? new Date(q.since) : undefined, after: q.after, limit: q.limit });
      },
    );
  };
