// GET /system/logs: the manager's own recent log, admin only (OSCAR serves its pod's log).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type HttpContext, principalOf } from '../context.ts';

const bool = z.enum(['true', 'false', '1', '0'], 'must be true or false').optional();
const query = z.object({ timestamps: bool, previous: bool });

export const managerLogRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/system/logs',
    {
      schema: {
        tags: ['logs'],
        summary: "The manager's own recent log (admin)",
        security: [{ basic: [] }],
        querystring: query,
      },
    },
    async (req, reply) => {
      const principal = await principalOf(ctx, req);
      const q = req.query as z.infer<typeof query>;
      const yes = (v: string | undefined) => v === 'true' || v === '1';
      const text = ctx.managerLog.read(principal, {
        timestamps: yes(q.timestamps),
        previous: yes(q.previous),
      });
      reply.type('text/plain; charset=utf-8').send(text);
    },
  );
};
