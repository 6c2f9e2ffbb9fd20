// Peering on the public port: admin routes for grants and peers, and the two routes a peer
// manager calls without other credentials — enrollment (the token is the credential) and
// the CRL (public by nature, signed by the CA).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type GrantUseCases, grantView } from '../../app/peering/grants.ts';
import { type PeerUseCases, peerView } from '../../app/peering/peers.ts';
import { fail } from '../../core/errors.ts';
import type { HttpContext } from '../context.ts';
import { principalOf } from '../context.ts';

const basicAuth: Array<Record<string, string[]>> = [{ basic: [] }];
const idParams = z.object({ id: z.string().min(1).max(100) });
const nameParams = z.object({ name: z.string().min(1).max(100) });

const requireAdmin = async (ctx: HttpContext, req: FastifyRequest) => {
  const p = await principalOf(ctx, req);
  if (p.kind !== 'admin') fail('FORBIDDEN', 'grants and peers are for the admin');
};

const body = (req: FastifyRequest): Record<string, unknown> =>
  req.body && typeof req.body === 'object' && !Array.isArray(req.body)
    ? (req.body as Record<string, unknown>)
    : {};

export const peeringRoutes =
  (d: {
    grants: GrantUseCases;
    peers: PeerUseCases;
    /** A peer cluster's circuit, as federated queries see it. */
    circuit?: (name: string) => { circuit: string; offline_since: string | null } | undefined;
  }) =>
  async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
    const admin = { onRequest: (req: FastifyRequest) => requireAdmin(ctx, req) };
    const withCircuit = (p: Parameters<typeof peerView>[0]) => ({
      ...peerView(p),
      ...(d.circuit?.(p.clusterId) ?? { circuit: 'closed', offline_since: null }),
    });

    app.post(
      '/system/grants',
      { ...admin, schema: { tags: ['peering'], summary: 'Create a grant (pending)', security: basicAuth } },
      async (req, reply) => {
        reply.code(201);
        return grantView(await d.grants.create(req.body));
      },
    );
    app.get(
      '/system/grants',
      {
        ...admin,
        schema: {
          tags: ['peering'],
          summary: 'List grants',
          security: basicAuth,
          querystring: z.object({ status: z.string().max(20).optional() }),
        },
      },
      async (req) => (await d.grants.list((req.query as { status?: string }).status)).map(grantView),
    );
    app.get(
      '/system/grants/:id',
      {
        ...admin,
        schema: { tags: ['peering'], summary: 'Show a grant', security: basicAuth, params: idParams },
      },
      async (req) => grantView(await d.grants.show((req.params as { id: string }).id)),
    );
    app.post(
      '/system/grants/:id/token',
      {
        ...admin,
        schema: {
          tags: ['peering'],
          summary: 'Issue a single-use enrollment token (shown once)',
          security: basicAuth,
          params: idParams,
        },
      },
      async (req, reply) => {
        reply.code(201).header('cache-control', 'no-store');
        return d.grants.token((req.params as { id: string }).id, body(req).ttl);
      },
    );
    app.post(
      '/system/grants/:id/revoke',
      {
        ...admin,
        schema: {
          tags: ['peering'],
          summary: 'Revoke a grant: its serials go on the CRL at once',
          security: basicAuth,
          params: idParams,
        },
      },
      async (req) => grantView(await d.grants.revoke((req.params as { id: string }).id, body(req).reason)),
    );

    app.post(
      '/system/grants/revoke',
      {
        ...admin,
        schema: {
          tags: ['peering'],
          summary: 'Revoke every grant of a subject (a deleted user): {subject, reason?}',
          security: basicAuth,
        },
      },
      async (req) => {
        const revoked = await d.grants.revokeSubject(body(req).subject, body(req).reason);
        return { subject: body(req).subject, revoked: revoked.map(grantView) };
      },
    );

    app.post(
      '/system/peers',
      {
        ...admin,
        schema: {
          tags: ['peering'],
          summary: 'Enroll with a peer manager: {url, token, name?}',
          security: basicAuth,
        },
      },
      async (req, reply) => {
        reply.code(201);
        return peerView(await d.peers.enroll(req.body));
      },
    );
    app.get(
      '/system/peers',
      {
        ...admin,
        schema: {
          tags: ['peering'],
          summary: 'List peers: state, certificate expiry, last success/failure and circuit',
          security: basicAuth,
        },
      },
      async () => (await d.peers.list()).map(withCircuit),
    );
    app.get(
      '/system/peers/:name',
      {
        ...admin,
        schema: {
          tags: ['peering'],
          summary: 'A peer, probed over the peer channel',
          security: basicAuth,
          params: nameParams,
        },
      },
      async (req) => {
        const { peer, capabilities } = await d.peers.status((req.params as { name: string }).name);
        return { ...withCircuit(peer), ...(capabilities !== undefined ? { capabilities } : {}) };
      },
    );
    app.post(
      '/system/peers/:name/renew',
      {
        ...admin,
        schema: {
          tags: ['peering'],
          summary: 'Renew the peer certificate now',
          security: basicAuth,
          params: nameParams,
        },
      },
      async (req) => peerView(await d.peers.renew((req.params as { name: string }).name)),
    );
    app.delete(
      '/system/peers/:name',
      {
        ...admin,
        schema: {
          tags: ['peering'],
          summary: 'Remove a peer record',
          security: basicAuth,
          params: nameParams,
        },
      },
      async (req, reply) => {
        await d.peers.remove((req.params as { name: string }).name);
        reply.code(204).send();
      },
    );

    app.post(
      '/federation/v1/enroll',
      {
        bodyLimit: 16 * 1024,
        schema: {
          tags: ['peering'],
          summary: 'Enroll: {token, csr} → {certificate, chain, peer_channel_url, cluster_id}',
        },
      },
      async (req, reply) => {
        reply.header('cache-control', 'no-store');
        return d.grants.enroll(req.body);
      },
    );
    app.get(
      '/federation/v1/crl',
      { schema: { tags: ['peering'], summary: 'This CA’s certificate revocation list (PEM)' } },
      async (_req, reply) => {
        reply
          .type('application/pkix-crl')
          .header('cache-control', 'no-store')
          .send(await d.grants.crl());
      },
    );
  };
