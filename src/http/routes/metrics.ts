// GET /metrics: Prometheus exposition, for the admin (service names and peers are in it).
import type { FastifyInstance } from 'fastify';
import { fail } from '../../core/errors.ts';
import { type HttpContext, principalOf } from '../context.ts';

export const metricsRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  const metrics = ctx.metrics;
  if (!metrics) return;
  // Timings of every request by route template (never the raw URL: bounded label values).
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.observeHttp(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['metrics'],
        summary: 'Prometheus metrics (admin)',
        security: [{ basic: [] }],
      },
    },
    async (req, reply) => {
      const principal = await principalOf(ctx, req);
      if (principal.kind !== 'admin') fail('FORBIDDEN', 'metrics are for the admin');
      const { contentType, body } = await metrics.render();
      reply.type(contentType).send(body);
    },
  );
};
