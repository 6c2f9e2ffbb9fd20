// Federated queries on the peer channel (DESIGN §6): list, get and search, each with the grant
// pair it needs. The peer server's guard has authenticated the grant, checked the pair and
// worked out the effective filter and row cap (req.peerLimits) before a handler runs.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PeerQueries } from '../../app/peering/peer-queries.ts';
import { SEARCHABLE } from '../../core/trust/query.ts';
import { RESOURCES, type Resource } from '../../core/trust/scope.ts';

const cursorOf = (req: FastifyRequest): unknown => (req.body as { cursor?: unknown } | undefined)?.cursor;

export const peerQueryRoutes =
  (queries: PeerQueries) =>
  async (app: FastifyInstance): Promise<void> => {
    // One route per resource: the guard's (resource, verb) pair is fixed per route, and an
    // unknown resource is a plain 404.
    for (const resource of RESOURCES) {
      app.post(
        `/federation/v1/list/${resource}`,
        { config: { peerAction: { resource, verb: 'list' } } },
        async (req) => {
          const { filter, limit } = req.peerLimits!;
          return queries.list(req.peerGrant!, resource, filter, limit, cursorOf(req));
        },
      );
      app.post(
        `/federation/v1/get/${resource}/:id`,
        { config: { peerAction: { resource, verb: 'get' } } },
        async (req) =>
          queries.get(req.peerGrant!, resource, (req.params as { id: string }).id, req.peerLimits!.filter),
      );
    }
    const [first, ...rest] = SEARCHABLE as Resource[];
    app.post(
      '/federation/v1/search',
      {
        config: {
          peerAction: {
            resource: first,
            verb: 'search',
            or: rest.map((r) => ({ resource: r, verb: 'search' })),
          },
        },
      },
      async (req) => queries.search(req.peerGrant!, req.body),
    );
  };
