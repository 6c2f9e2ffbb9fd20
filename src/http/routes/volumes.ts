// /system/volumes and /system/volumes/{volumeName}, as OSCAR v4.1.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type HttpContext, principalOf } from '../context.ts';

const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];
const params = z.object({ volumeName: z.string().min(1).max(253) });

export const volumeRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/system/volumes',
    { schema: { tags: ['volumes'], summary: 'List volumes', security: auth } },
    async (req) => ctx.volumes.list(await principalOf(ctx, req)),
  );
  app.post(
    '/system/volumes',
    { schema: { tags: ['volumes'], summary: 'Create a volume', security: auth } },
    async (req) => ctx.volumes.create(await principalOf(ctx, req), req.body),
  );
  app.get(
    '/system/volumes/:volumeName',
    { schema: { tags: ['volumes'], summary: 'Read a volume', security: auth, params } },
    async (req) =>
      ctx.volumes.get(await principalOf(ctx, req), (req.params as z.infer<typeof params>).volumeName),
  );
  app.delete(
    '/system/volumes/:volumeName',
    { schema: { tags: ['volumes'], summary: 'Delete a volume', security: auth, params } },
    async (req) =>
      ctx.volumes.remove(await principalOf(ctx, req), (req.params as z.infer<typeof params>).volumeName),
  );
};
