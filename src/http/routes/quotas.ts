// /system/quotas/user (own) and /system/quotas/user/{userId} (admin), as OSCAR v4.1.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type HttpContext, principalOf } from '../context.ts';

const params = z.object({ userId: z.string().min(1).max(256) });

export const quotaRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/system/quotas/user',
    { schema: { tags: ['quotas'], summary: "The caller's quotas (OIDC)", security: [{ bearer: [] }] } },
    async (req) => ctx.quotas.own(await principalOf(ctx, req)),
  );
  app.get(
    '/system/quotas/user/:userId',
    { schema: { tags: ['quotas'], summary: "A user's quotas (admin)", security: [{ basic: [] }], params } },
    async (req) => {
      const { userId } = req.params as z.infer<typeof params>;
      return ctx.quotas.ofUser(await principalOf(ctx, req), userId);
    },
  );
  app.put(
    '/system/quotas/user/:userId',
    {
      schema: {
        tags: ['quotas'],
        summary: "Change a user's quotas (admin)",
        security: [{ basic: [] }],
        params,
      },
    },
    async (req) => {
      const { userId } = req.params as z.infer<typeof params>;
      return ctx.quotas.update(await principalOf(ctx, req), userId, req.body);
    },
  );
};
