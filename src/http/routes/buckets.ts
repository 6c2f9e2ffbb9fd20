// /system/buckets as in OSCAR, over the ObjectStore port.
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { fail } from '../../core/errors.ts';
import { type HttpContext, principalOf } from '../context.ts';

const bucketParams = z.object({ bucket: z.string().min(1).max(255) });
const pageQuery = z.object({ page: z.string().max(2048).optional() });
const objectQuery = z.object({ key: z.string().max(1024).optional() });
const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];
/** What the three object routes (`?key=` names the object) share. */
const objectRoute = (summary: string) => ({
  tags: ['buckets'],
  summary,
  security: auth,
  params: bucketParams,
  querystring: objectQuery,
});
/** The largest object the dashboard's upload takes in one request. */
export const UPLOAD_MAX_BYTES = 5 * 1024 ** 3;

/** The attachment name of a download: the key's last segment, quoted safely. */
const attachment = (key: string): string => {
  const name = key.split('/').pop() || 'download';
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
};

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

  // Flotilla's object routes for the dashboard (OSCAR's dashboard talks to MinIO directly; a
  // page under a strict CSP reaches only its own origin). Same grants as the presign route.
  await app.register(async (scoped) => {
    scoped.removeAllContentTypeParsers();
    // The body stays a stream: it goes to the object store as it arrives.
    scoped.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    scoped.put(
      '/system/buckets/:bucket/object',
      {
        bodyLimit: UPLOAD_MAX_BYTES,
        schema: objectRoute('Upload an object (the body is its bytes; ?key= names it)'),
      },
      async (req, reply) => {
        const { bucket } = req.params as z.infer<typeof bucketParams>;
        const { key } = req.query as z.infer<typeof objectQuery>;
        const length = Number(req.headers['content-length']);
        if (!Number.isSafeInteger(length) || length < 0) {
          fail('LENGTH_REQUIRED', 'Content-Length: an upload needs its length');
        }
        // A function parser gets the raw stream: the limit is checked here, before any byte is stored.
        if (length > UPLOAD_MAX_BYTES) {
          fail('PAYLOAD_TOO_LARGE', `an upload is at most ${UPLOAD_MAX_BYTES / 1024 ** 3} GiB`);
        }
        const body = req.body instanceof Readable ? req.body : Readable.from([]);
        const stored = await ctx.buckets.putObject(await principalOf(ctx, req), bucket, key, body, length);
        reply.status(201).send(stored);
      },
    );
  });
  app.get(
    '/system/buckets/:bucket/object',
    {
      schema: objectRoute('Download an object (?key= names it)'),
    },
    async (req, reply) => {
      const { bucket } = req.params as z.infer<typeof bucketParams>;
      const { key } = req.query as z.infer<typeof objectQuery>;
      const obj = await ctx.buckets.getObject(await principalOf(ctx, req), bucket, key);
      // Returned: the stream is sent after the handler's promise settles.
      return reply
        .type('application/octet-stream')
        .header('content-disposition', attachment(obj.key))
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox")
        .send(Readable.from(obj.body, { objectMode: false }));
    },
  );
  app.delete(
    '/system/buckets/:bucket/object',
    {
      schema: objectRoute('Delete an object (?key= names it)'),
    },
    async (req, reply) => {
      const { bucket } = req.params as z.infer<typeof bucketParams>;
      const { key } = req.query as z.infer<typeof objectQuery>;
      await ctx.buckets.deleteObject(await principalOf(ctx, req), bucket, key);
      reply.status(204).send();
    },
  );
};
