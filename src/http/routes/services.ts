// OSCAR's service routes: POST/GET/PUT /system/services, GET/DELETE /system/services/{name}.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { yamlAsGo } from '../../core/fdl/go-decode.ts';
import { redactService, withStorageProviders } from '../../core/fdl/secrets.ts';
import { serviceInputSchema } from '../../core/fdl/service.ts';
import { isYamlRequest } from '../body-parsers.ts';
import { type HttpContext, principalOf } from '../context.ts';
import { docsOnly } from '../schemas.ts';

const nameParams = z.object({ serviceName: z.string().min(1).max(253) });
const deleteQuery = z.object({
  cascade: z.enum(['true', 'false']).optional(),
  namespace: z.string().optional(),
});
const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];

export const serviceRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/system/services',
    { schema: { tags: ['services'], summary: 'List services', security: auth } },
    async (req) => {
      const principal = await principalOf(ctx, req);
      const minio = ctx.system.storageView();
      return (await ctx.services.list(principal)).map((s) => withStorageProviders(redactService(s), minio));
    },
  );

  app.post(
    '/system/services',
    {
      schema: {
        tags: ['services'],
        summary: 'Create a service',
        security: auth,
        body: docsOnly(serviceInputSchema),
      },
    },
    async (req, reply) => {
      const principal = await principalOf(ctx, req);
      // An OIDC caller's own token reaches members that take it (no passwords needed).
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const callerAuth =
        principal.kind === 'user' && bearer ? { kind: 'bearer' as const, token: bearer } : undefined;
      // A YAML body is read as oscar-cli reads an FDL (`cpu: 1` is "1").
      const body = isYamlRequest(req) ? yamlAsGo(req.body) : req.body;
      const report = await ctx.federation.create(principal, body, callerAuth);
      // OSCAR answers 201 with an empty body (clients GET the service for its token); a
      // federated create answers with its per-member report.
      if (report) reply.status(201).send(report);
      else reply.status(201).send();
    },
  );

  app.put(
    '/system/services',
    {
      schema: {
        tags: ['services'],
        summary: 'Update a service',
        security: auth,
        body: docsOnly(serviceInputSchema),
      },
    },
    async (req, reply) => {
      const principal = await principalOf(ctx, req);
      await ctx.federation.update(principal, isYamlRequest(req) ? yamlAsGo(req.body) : req.body);
      reply.status(204).send();
    },
  );

  app.get(
    '/system/services/:serviceName',
    { schema: { tags: ['services'], summary: 'Read a service', security: auth, params: nameParams } },
    async (req) => {
      const principal = await principalOf(ctx, req);
      const { serviceName } = req.params as z.infer<typeof nameParams>;
      const svc = await ctx.services.get(principal, serviceName);
      return withStorageProviders(redactService(svc), ctx.system.storageView());
    },
  );

  app.delete(
    '/system/services/:serviceName',
    {
      schema: {
        tags: ['services'],
        summary: 'Delete a service',
        security: auth,
        params: nameParams,
        querystring: deleteQuery,
      },
    },
    async (req, reply) => {
      const principal = await principalOf(ctx, req);
      const { serviceName } = req.params as z.infer<typeof nameParams>;
      const { cascade } = req.query as z.infer<typeof deleteQuery>;
      await ctx.federation.delete(principal, serviceName, { cascade: cascade !== 'false' });
      reply.status(204).send();
    },
  );
};
