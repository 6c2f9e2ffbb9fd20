// /system/buckets as in OSCAR, over the ObjectStore port.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type HttpContext, principalOf } from '../context.ts';

const bucketParams = z.object({ bucket: z.string().min(1).max(255) });
const pageQuery = z.object({ page: z.string().max(2048).optional() });
const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];

export const bucketRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/system/buckets',
    { schema: { tags: ['buckets'], summary: 'List buckets', security: auth } },
    async (req) => ctx.buckets.list(await principalOf(ctx, req)),
  );
  app.post(
    '/system/buckets',
    { schema: { tags: ['buckets'], summary: 'Create a bucket', security: auth } },
    async (req, reply) => {
      await ctx.buckets.create(await principalOf(ctx, req), req.body);
      reply.status(201).send();
    },
  );
  app.put(
    '/system/buckets',
    { schema: { tags: ['buckets'], summary: 'Change bucket visibility', security: auth } },
    async (req, reply) => {
      await ctx.buckets.update(await principalOf(ctx, req), req.body);
      reply.status(204).send();
    },
  );
  app.get(
    '/system/buckets/:bucket',
    {
      schema: {
        tags: ['buckets'],
        summary: 'List the objects of a bucket',
        security: auth,
        params: bucketParams,
        querystring: pageQuery,
      },
    },
    async (req) => {
      const { bucket } = req.params as z.infer<typeof bucketParams>;
      const { page } = req.query as z.infer<typeof pageQuery>;
      return ctx.buckets.objects(await principalOf(ctx, req), bucket, page || undefined);
    },
  );
  app.delete(
    '/system/buckets/:bucket',
    {
      schema: {
        tags: ['buckets'],
        summary: 'Delete a bucket and its objects',
        security: auth,
        params: bucketParams,
      },
    },
    async (req, reply) => {
      const { bucket } = req.params as z.infer<typeof bucketParams>;
      await ctx.buckets.remove(await principalOf(ctx, req), bucket);
      reply.status(204).send();
    },
  );
  app.post(
    '/system/buckets/:bucket/presign',
    {
      schema: {
        tags: ['buckets'],
        summary: 'Presigned URL to upload or download an object',
        security: auth,
        params: bucketParams,
      },
    },
    async (req) => {
      const { bucket } = req.params as z.infer<typeof bucketParams>;
      return ctx.buckets.presign(await principalOf(ctx, req), bucket, req.body);
    },
  );
};
