// Per-service routes of OSCAR v4.1 beside the definition: …/auth (may the caller use it?),
// …/deployment, …/deployment/logs and …/start|stop|restart (exposed services).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type HttpContext, principalOf } from '../context.ts';

const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];
const params = z.object({ serviceName: z.string().min(1).max(253) });
const logsQuery = z.object({
  timestamps: z.enum(['true', 'false'], 'must be true or false').optional(),
  tailLines: z
    .string()
    .regex(/^\d{1,6}$/, 'must be a whole number')
    .optional(),
});

export const serviceDeploymentRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/system/services/:serviceName/auth',
    {
      schema: {
        tags: ['services'],
        summary: 'Check the caller may use the service (Basic, OIDC or the service token)',
        security: auth,
        params,
      },
    },
    async (req, reply) => {
      const { serviceName } = req.params as z.infer<typeof params>;
      await ctx.intake.authorize(serviceName, req.headers.authorization);
      reply.status(200).send();
    },
  );

  app.get(
    '/system/services/:serviceName/deployment',
    { schema: { tags: ['deployment'], summary: 'Deployment status of a service', security: auth, params } },
    async (req) =>
      ctx.deployment.status(await principalOf(ctx, req), (req.params as z.infer<typeof params>).serviceName),
  );

  app.get(
    '/system/services/:serviceName/deployment/logs',
    {
      schema: {
        tags: ['deployment'],
        summary: 'Deployment logs of a service',
        security: auth,
        params,
        querystring: logsQuery,
      },
    },
    async (req) => {
      const q = req.query as z.infer<typeof logsQuery>;
      return ctx.deployment.logs(
        await principalOf(ctx, req),
        (req.params as z.infer<typeof params>).serviceName,
        {
          tailLines: q.tailLines === undefined ? undefined : Number(q.tailLines),
          timestamps: q.timestamps === 'true',
        },
      );
    },
  );

  for (const action of ['start', 'stop', 'restart'] as const) {
    app.post(
      `/system/services/:serviceName/${action}`,
      { schema: { tags: ['services'], summary: `${action} an exposed service`, security: auth, params } },
      async (req) =>
        ctx.deployment.lifecycle(
          await principalOf(ctx, req),
          (req.params as z.infer<typeof params>).serviceName,
          action,
        ),
    );
  }
};
