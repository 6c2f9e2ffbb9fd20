// OSCAR's service routes: POST/GET/PUT /system/services, GET/DELETE /system/services/{name}.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { mayReadToken, type Principal } from '../../core/auth/principal.ts';
import { yamlAsGo } from '../../core/fdl/go-decode.ts';
import { type DefaultMinioView, redactService, withStorageProviders } from '../../core/fdl/secrets.ts';
import { type Service, serviceInputSchema } from '../../core/fdl/service.ts';
import { withoutUserInfo } from '../../core/federation/endpoint.ts';
import { isYamlRequest } from '../body-parsers.ts';
import { type HttpContext, principalOf } from '../context.ts';
import { docsOnly } from '../schemas.ts';
import { workerProofOf } from '../worker-proof.ts';

/**
 * A service as this caller may see it: secrets masked, the token only for its owner and the
 * admin, no user or password in an endpoint stored before they were refused, and
 * `storage_providers.minio.default` always there (oscar_python indexes it unchecked).
 */
const shownTo =
  (p: Principal, minio: DefaultMinioView) =>
  (s: Service): Partial<Service> => {
    const view: Partial<Service> = redactService(s);
    // OSCAR's read-only summary: never what a definition sent (only ?include=deployment adds it).
    delete (view as { deployment?: unknown }).deployment;
    if (!mayReadToken(p, s)) delete view.token;
    for (const entry of Object.values(view.clusters ?? {}))
      if (typeof entry?.endpoint === 'string') entry.endpoint = withoutUserInfo(entry.endpoint);
    return withStorageProviders(view, minio);
  };

// Any name is looked up (an unknown one is a 404, as OSCAR answers), but a NUL cannot be.
const nameParams = z.object({
  serviceName: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[^\u0000]*$/, 'must not contain NUL characters'),
});
const deleteQuery = z.object({
  cascade: z.enum(['true', 'false']).optional(),
  namespace: z.string().optional(),
});
const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];
// OSCAR's optional expansions: a comma list, case-insensitive; `deployment` is the one it knows.
const readQuery = z.object({ include: z.string().max(256).optional() });
const wantsDeployment = (q: z.infer<typeof readQuery>) =>
  (q.include ?? '').split(',').some((v) => v.trim().toLowerCase() === 'deployment');
/** At most this many deployment summaries read at once (two API calls each on Kubernetes). */
const SUMMARY_CONCURRENCY = 8;

export const serviceRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  app.get(
    '/system/services',
    {
      schema: { tags: ['services'], summary: 'List services', security: auth, querystring: readQuery },
    },
    async (req) => {
      const principal = await principalOf(ctx, req);
      const services = await ctx.services.list(principal);
      const shown = services.map(shownTo(principal, ctx.system.storageView()));
      if (!wantsDeployment(req.query as z.infer<typeof readQuery>)) return shown;
      for (let i = 0; i < services.length; i += SUMMARY_CONCURRENCY) {
        const part = services.slice(i, i + SUMMARY_CONCURRENCY);
        const summaries = await Promise.all(part.map((s) => ctx.deployment.summaryOf(s)));
        summaries.forEach((d, j) => {
          Object.assign(shown[i + j]!, { deployment: d });
        });
      }
      return shown;
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
      const report = await ctx.federation.create(principal, body, callerAuth, workerProofOf(req));
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
      const body = isYamlRequest(req) ? yamlAsGo(req.body) : req.body;
      await ctx.federation.update(principal, body, workerProofOf(req));
      reply.status(204).send();
    },
  );

  app.get(
    '/system/services/:serviceName',
    {
      schema: {
        tags: ['services'],
        summary: 'Read a service',
        security: auth,
        params: nameParams,
        querystring: readQuery,
      },
    },
    async (req) => {
      const principal = await principalOf(ctx, req);
      const { serviceName } = req.params as z.infer<typeof nameParams>;
      const service = await ctx.services.get(principal, serviceName);
      const shown = shownTo(principal, ctx.system.storageView())(service);
      if (!wantsDeployment(req.query as z.infer<typeof readQuery>)) return shown;
      return { ...shown, deployment: await ctx.deployment.summaryOf(service) };
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
      await ctx.federation.delete(principal, serviceName, {
        cascade: cascade !== 'false',
        proof: workerProofOf(req),
      });
      reply.status(204).send();
    },
  );
};
