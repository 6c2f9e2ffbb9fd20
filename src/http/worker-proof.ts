// A coordinator's proof that a change is to its own worker, read from the request headers
// (X-Flotilla-Origin, X-Flotilla-Worker-Token); undefined for any other caller.
import type { FastifyRequest } from 'fastify';
import {
  ORIGIN_HEADER,
  parseWorkerProof,
  WORKER_TOKEN_HEADER,
  type WorkerProof,
} from '../core/federation/worker-guard.ts';

const header = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
};

export const workerProofOf = (req: FastifyRequest): WorkerProof | undefined =>
  parseWorkerProof(header(req, ORIGIN_HEADER), header(req, WORKER_TOKEN_HEADER));
