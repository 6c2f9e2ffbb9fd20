// Job listings and logs: /system/logs/{service}[/{job}].
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { HttpContext } from '../context.ts';

const svcParams = z.object({ serviceName: z.string().min(1).max(253) });
const jobParams = svcParams.extend({ jobName: z.string().min(1).max(253) });
const listQuery = z.object({ page: z.string().max(200).optional() });
const deleteQuery = z.object({ all: z.enum(['true', 'false']).optional() });
const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];

/** Basic, OIDC, or the service's own token. */
const caller = async (ctx: HttpContext, req: FastifyRequest, serviceName: string) =>
  (await ctx.intake.authorize(serviceName, req.headers.authorization)).principal;

export const logRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/system/logs/:serviceName',
    {
      schema: {
        tags: ['logs'],
        summary: 'List the jobs of a service',
        security: auth,
        params: svcParams,
        querystring: listQuery,
      },
    },
    async (req) => {
      const { serviceName } = req.params as z.infer<typeof svcParams>;
      const { page } = req.query as z.infer<typeof listQuery>;
      return ctx.logs.list(await caller(ctx, req, serviceName), serviceName, page || undefined);
    },
  );

  app.delete(
    '/system/logs/:serviceName',
    {
      schema: {
        tags: ['logs'],
        summary: 'Delete finished jobs (all=true: every job)',
        security: auth,
        params: svcParams,
        querystring: deleteQuery,
      },
    },
    async (req, reply) => {
      const { serviceName } = req.params as z.infer<typeof svcParams>;
      const { all } = req.query as z.infer<typeof deleteQuery>;
      await ctx.logs.deleteMany(await caller(ctx, req, serviceName), serviceName, all === 'true');
      reply.status(204).send();
    },
  );

  app.get(
    '/system/logs/:serviceName/:jobName',
    {
      schema: {
        tags: ['logs'],
        summary: "A job's log (stdout and stderr)",
        security: auth,
        params: jobParams,
      },
    },
    async (req, reply) => {
      const { serviceName, jobName } = req.params as z.infer<typeof jobParams>;
      const { text, status } = await ctx.logs.log(await caller(ctx, req, serviceName), serviceName, jobName);
      reply.header('x-job-status', status).type('text/plain; charset=utf-8').send(text);
    },
  );

  app.delete(
    '/system/logs/:serviceName/:jobName',
    { schema: { tags: ['logs'], summary: 'Delete a job', security: auth, params: jobParams } },
    async (req, reply) => {
      const { serviceName, jobName } = req.params as z.infer<typeof jobParams>;
      await ctx.logs.deleteOne(await caller(ctx, req, serviceName), serviceName, jobName);
      reply.status(204).send();
    },
  );
};
