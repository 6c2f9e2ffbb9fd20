// OSCAR's usage metrics: /system/metrics, /system/metrics/breakdown, /system/metrics/{service}.
// (Prometheus metrics are at /metrics, routes/metrics.ts.)
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { breakdownCsv, parseTimeRange } from '../../app/usage-metrics.ts';
import { fail } from '../../core/errors.ts';
import { type HttpContext, principalOf } from '../context.ts';

const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];
const range = { start: z.string().max(64).optional(), end: z.string().max(64).optional() };
const summaryQuery = z.object(range);
const serviceQuery = z.object({ ...range, metric: z.string().max(64).optional() });
const breakdownQuery = z.object({
  ...range,
  group_by: z.string().max(32).optional(),
  include_users: z.enum(['true', 'false'], 'must be true or false').optional(),
  format: z.string().max(16).optional(),
});
const params = z.object({ serviceName: z.string().min(1).max(253) });

export const usageMetricsRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/system/metrics',
    { schema: { tags: ['metrics'], summary: 'Usage summary', security: auth, querystring: summaryQuery } },
    async (req) => {
      const principal = await principalOf(ctx, req);
      const q = req.query as z.infer<typeof summaryQuery>;
      return ctx.usage.summary(principal, parseTimeRange(q.start, q.end, new Date()));
    },
  );

  app.get(
    '/system/metrics/breakdown',
    {
      schema: {
        tags: ['metrics'],
        summary: 'Usage by service, user or country (json or csv)',
        security: auth,
        querystring: breakdownQuery,
      },
    },
    async (req, reply) => {
      const principal = await principalOf(ctx, req);
      const q = req.query as z.infer<typeof breakdownQuery>;
      if (!q.group_by?.trim()) fail('BAD_REQUEST', 'group_by is required: service, user or country');
      const format = (q.format ?? 'json').trim().toLowerCase();
      if (format !== 'json' && format !== 'csv') fail('BAD_REQUEST', 'invalid format: json or csv');
      const includeUsers = q.include_users === 'true';
      if (format === 'csv' && includeUsers && q.group_by?.trim().toLowerCase() === 'service') {
        fail('BAD_REQUEST', 'include_users is not supported for csv');
      }
      const b = await ctx.usage.breakdown(
        principal,
        parseTimeRange(q.start, q.end, new Date()),
        q.group_by as string,
        includeUsers,
      );
      if (format === 'csv') return reply.type('text/csv; charset=utf-8').send(breakdownCsv(b));
      return b;
    },
  );

  app.get(
    '/system/metrics/:serviceName',
    {
      schema: {
        tags: ['metrics'],
        summary: 'Usage metrics of a service',
        security: auth,
        params,
        querystring: serviceQuery,
      },
    },
    async (req) => {
      const principal = await principalOf(ctx, req);
      const { serviceName } = req.params as z.infer<typeof params>;
      const q = req.query as z.infer<typeof serviceQuery>;
      const metric = q.metric?.trim() || undefined;
      return ctx.usage.service(principal, serviceName, metric, parseTimeRange(q.start, q.end, new Date()));
    },
  );
};
