// /system/federation/{service} (OSCAR v4.1: GET → {topology, members}; POST add, PUT update,
// DELETE remove with {members, update?, clusters?, storage_providers?, delete?}) and the
// alias /system/replicas/{service} ({replicas: [...]}).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { MembersRequest } from '../../app/federation/federation-use-cases.ts';
import { fail } from '../../core/errors.ts';
import { type HttpContext, principalOf } from '../context.ts';

const params = z.object({ serviceName: z.string().min(1).max(253) });
const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];
const OPS = { POST: 'add', PUT: 'update', DELETE: 'remove' } as const;

const asObject = (body: unknown): Record<string, unknown> => {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    return fail('VALIDATION_FAILED', 'body must be a JSON object');
  }
  return body as Record<string, unknown>;
};

/** The OSCAR request; the alias sends {replicas: [...]} instead of members. */
const membersRequest = (req: FastifyRequest, alias: boolean): MembersRequest => {
  const body = asObject(req.body);
  const list = alias ? (body.replicas ?? body.members) : body.members;
  if (list !== undefined && !Array.isArray(list))
    fail('VALIDATION_FAILED', `${alias ? 'replicas' : 'members'} must be a list`);
  if (body.update !== undefined && !Array.isArray(body.update))
    fail('VALIDATION_FAILED', 'update must be a list');
  if (body.clusters !== undefined && (typeof body.clusters !== 'object' || Array.isArray(body.clusters))) {
    fail('VALIDATION_FAILED', 'clusters must be a map of cluster id to {endpoint, auth_user, auth_password}');
  }
  if (body.delete !== undefined && typeof body.delete !== 'boolean')
    fail('VALIDATION_FAILED', 'delete must be true or false');
  return {
    members: list as MembersRequest['members'],
    update: body.update as MembersRequest['update'],
    clusters: body.clusters as MembersRequest['clusters'],
    storage_providers: body.storage_providers as MembersRequest['storage_providers'],
    delete: body.delete as boolean | undefined,
  };
};

export const federationRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  for (const alias of [false, true]) {
    const base = alias ? '/system/replicas/:serviceName' : '/system/federation/:serviceName';
    const tag = alias ? 'replicas' : 'federation';
    app.get(
      base,
      { schema: { tags: [tag], summary: 'Topology and members, with sync state', security: auth, params } },
      async (req) => {
        const { serviceName } = req.params as z.infer<typeof params>;
        const view = await ctx.federation.get(await principalOf(ctx, req), serviceName);
        if (alias) return { replicas: view.members, ...view };
        // OSCAR (Go) answers a nil list as null, and its test suite reads it so.
        return { ...view, members: view.members.length > 0 ? view.members : null };
      },
    );
    for (const method of ['POST', 'PUT', 'DELETE'] as const) {
      app.route({
        method,
        url: base,
        schema: {
          tags: [tag],
          summary: `${OPS[method]} members across the topology`,
          security: auth,
          params,
        },
        handler: async (req) => {
          const { serviceName } = req.params as z.infer<typeof params>;
          const principal = await principalOf(ctx, req);
          const view = await ctx.federation.changeMembers(
            principal,
            serviceName,
            OPS[method],
            membersRequest(req, alias),
          );
          return alias ? { replicas: view.members, ...view } : view;
        },
      });
    }
  }
};
