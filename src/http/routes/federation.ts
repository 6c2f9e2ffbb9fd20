// /system/federation/{service} (OSCAR v4.1: GET → {topology, members}; POST add, PUT update,
// DELETE remove with {members, update?, clusters?, storage_providers?, delete?}) and the
// alias /system/replicas/{service} ({replicas: [...]}).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { serviceNameSchema } from '../../core/fdl/service.ts';
import { parseMembersRequest } from '../../core/federation/members-request.ts';
import { type HttpContext, principalOf } from '../context.ts';

const params = z.object({ serviceName: serviceNameSchema });
const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];
const OPS = { POST: 'add', PUT: 'update', DELETE: 'remove' } as const;

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
            parseMembersRequest(req.body, alias),
          );
          return alias ? { replicas: view.members, ...view } : view;
        },
      });
    }
  }
};
