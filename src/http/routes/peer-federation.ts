// Federation over the peer channel (DESIGN §6): the OSCAR paths a coordinator's PeerClient
// calls, under /federation/v1 on the mTLS listener, each with the grant pair it needs
// (core/trust/peer-federation.ts). The peer server's guard has authenticated the grant and
// checked the pair before a handler runs; handlers parse and call, nothing else.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { PeerFederation } from '../../app/peering/peer-federation.ts';
import { HOLD_HEADER } from '../../core/delegation/hand-over.ts';
import { FlotillaError } from '../../core/errors.ts';
import { PEER_FEDERATION_ACTIONS, PEER_FEDERATION_PREFIX } from '../../core/trust/peer-federation.ts';
import { useRawBodies } from '../body-parsers.ts';
import { workerProofOf } from '../worker-proof.ts';

const nameParams = z.object({
  serviceName: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[^\u0000]*$/),
});
const jobParams = nameParams.extend({
  jobName: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[^\u0000]*$/),
});

const delegatedParams = nameParams.extend({
  delegatedId: z.string().min(1).max(128),
});

/** Path parameters, or a 400 (never a 500). */
const parse = <T>(schema: z.ZodType<T>, raw: unknown): T => {
  const r = schema.safeParse(raw);
  if (!r.success) throw new FlotillaError('VALIDATION_FAILED', 'invalid service or job name in the path');
  return r.data;
};

const header = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
};

const action = (op: keyof typeof PEER_FEDERATION_ACTIONS) => ({
  config: { peerAction: PEER_FEDERATION_ACTIONS[op] },
});

export const peerFederationRoutes =
  (ops: PeerFederation, opts: { jobBodyLimit: number }) =>
  async (app: FastifyInstance): Promise<void> => {
    const p = PEER_FEDERATION_PREFIX;

    // What a coordinator's access check reads: an authenticated grant is enough.
    app.get(`${p}/system/info`, async (req) => ops.info(req.peerGrant!));

    app.get(`${p}/system/services/:serviceName`, action('replica-read'), async (req) => {
      const { serviceName } = parse(nameParams, req.params);
      return ops.readReplica(req.peerGrant!, serviceName);
    });

    app.post(`${p}/system/services`, action('replica-create'), async (req, reply) => {
      await ops.createReplica(req.peerGrant!, req.body, workerProofOf(req));
      reply.status(201).send();
    });

    app.put(`${p}/system/services`, action('replica-update'), async (req, reply) => {
      await ops.updateReplica(req.peerGrant!, req.body, workerProofOf(req));
      reply.status(204).send();
    });

    app.delete(`${p}/system/services/:serviceName`, action('replica-delete'), async (req, reply) => {
      const { serviceName } = parse(nameParams, req.params);
      await ops.deleteReplica(req.peerGrant!, serviceName, workerProofOf(req));
      reply.status(204).send();
    });

    app.get(`${p}/system/status`, action('status'), async () => ops.status());

    // The PeerClient's storage-keys and federation-view paths: refused for every grant (403,
    // not a 404 the caller would read as "none").
    app.get(`${p}/system/config`, async (req) => ops.storageKeys(req.peerGrant!));
    app.get(`${p}/system/federation/:serviceName`, async (req) => ops.federationView(req.peerGrant!));

    app.get(`${p}/system/logs/:serviceName/:jobName`, action('job-status'), async (req, reply) => {
      const { serviceName, jobName } = parse(jobParams, req.params);
      const { text, status } = await ops.jobStatus(req.peerGrant!, serviceName, jobName);
      reply.header('x-job-status', status).type('text/plain; charset=utf-8').send(text);
    });

    // The event is raw bytes, as on the public port.
    await app.register(async (raw) => {
      useRawBodies(raw);
      raw.post(
        `${p}/job/:serviceName`,
        { ...action('job-submit'), bodyLimit: opts.jobBodyLimit },
        async (req, reply) => {
          const { serviceName } = parse(nameParams, req.params);
          const body = req.body instanceof Uint8Array ? req.body : new Uint8Array(0);
          const accepted = await ops.submitJob(req.peerGrant!, serviceName, body, {
            delegatedId: header(req, 'x-delegated-job-id'),
            delegatedFrom: header(req, 'x-delegated-from'),
            delegationToken: header(req, 'x-delegation-token'),
            hold: header(req, HOLD_HEADER),
          });
          reply.status(201).send(accepted);
        },
      );
      // The hand-over's second step (ADR 13): the same grant pair as the hand-over.
      for (const step of ['confirm', 'abandon'] as const) {
        raw.post(
          `${p}/job/:serviceName/delegated/:delegatedId/${step}`,
          action('job-submit'),
          async (req) => {
            const { serviceName, delegatedId } = parse(delegatedParams, req.params);
            const from = header(req, 'x-delegated-from');
            return step === 'confirm'
              ? ops.confirmJob(req.peerGrant!, serviceName, delegatedId, from)
              : ops.abandonJob(req.peerGrant!, serviceName, delegatedId, from);
          },
        );
      }
    });
  };
