// OSCAR's system routes: health, info, config, status.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type HttpContext, principalOf } from '../context.ts';
import { docsOnly } from '../schemas.ts';

const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];

export const systemRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/health',
    { schema: { tags: ['health'], summary: 'Health check', response: { 200: docsOnly(z.string()) } } },
    async (_req, reply) => {
      reply.type('text/plain').send('Ok');
    },
  );

  app.get(
    '/system/info',
    { schema: { tags: ['info'], summary: 'System info', security: auth } },
    async (req) => {
      await principalOf(ctx, req);
      return ctx.system.info();
    },
  );

  app.get(
    '/system/config',
    { schema: { tags: ['config'], summary: 'Cluster configuration and storage keys', security: auth } },
    async (req) => {
      // The one route a delegation token may read (storage keys for its service's buckets).
      const principal = await principalOf(ctx, req, { delegation: true });
      return ctx.system.config(principal);
    },
  );

  app.put(
    '/system/config',
    { schema: { tags: ['config'], summary: 'Change the configuration (admin)', security: [{ basic: [] }] } },
    async (req) => ctx.system.updateConfig(await principalOf(ctx, req)),
  );

  app.get(
    '/system/status',
    { schema: { tags: ['status'], summary: 'Capacity, jobs and storage status', security: auth } },
    async (req) => {
      await principalOf(ctx, req);
      return ctx.system.status();
    },
  );
};
