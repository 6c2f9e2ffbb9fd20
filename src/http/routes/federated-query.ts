// POST /system/federation/query (DESIGN §6): a user asks their own manager; the local part
// answers as the caller, each peer as the grant subject of the caller's peer record.
import type { FastifyInstance } from 'fastify';
import type { FederatedQuery } from '../../app/peering/federated-query.ts';
import { FlotillaError } from '../../core/errors.ts';
import { describeIssues, federationQuerySchema } from '../../core/trust/query.ts';
import { type HttpContext, principalOf } from '../context.ts';
import { docsOnly } from '../schemas.ts';

const auth: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }];
const bodySchema = docsOnly(federationQuerySchema);

export const federatedQueryRoutes =
  (queries: FederatedQuery) =>
  async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
    app.post(
      '/system/federation/query',
      {
        bodyLimit: 64 * 1024,
        schema: {
          tags: ['federation'],
          summary: 'List, get or search across this cluster and its peers (rows carry _source)',
          security: auth,
          body: bodySchema,
        },
      },
      async (req) => {
        const principal = await principalOf(ctx, req);
        const parsed = federationQuerySchema.safeParse(req.body ?? {});
        if (!parsed.success)
          throw new FlotillaError(
            'VALIDATION_FAILED',
            `invalid body: ${describeIssues(parsed.error.issues)}`,
          );
        return queries.query(principal, parsed.data);
      },
    );
  };
