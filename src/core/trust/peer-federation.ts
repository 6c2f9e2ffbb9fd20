// What a peer may do to federation state here over the peer channel (DESIGN §6): which
// (resource, verb) pairs of its grant each operation needs, and the checks on a replica's
// definition and a delegated job before any use case runs: `max_cpu`, and no fan-out from a
// replica. Pure: the peer server asks, the use case acts.
import { DEFAULT_CPU, type ServiceInput } from '../fdl/service.ts';
import type { Resource, Scope, Verb } from './scope.ts';
import { withinCpu } from './scope.ts';

/** Where the receiver serves, on its peer channel, the OSCAR paths a PeerClient calls. */
export const PEER_FEDERATION_PREFIX = '/federation/v1';

export type PeerFederationOp =
  | 'replica-read'
  | 'replica-create'
  | 'replica-update'
  | 'replica-delete'
  | 'status'
  | 'job-submit'
  | 'job-status';

type Pair = { resource: Resource; verb: Verb };

/** The grant pairs each operation needs: the first, or one of `or`. */
export const PEER_FEDERATION_ACTIONS: Record<PeerFederationOp, Pair & { or?: Pair[] }> = {
  'replica-read': { resource: 'services', verb: 'replicate' },
  'replica-create': { resource: 'services', verb: 'replicate' },
  'replica-update': { resource: 'services', verb: 'replicate' },
  'replica-delete': { resource: 'services', verb: 'replicate' },
  // Capacity, for the sender's delegation decisions: a grant to delegate may read it.
  status: { resource: 'status', verb: 'get', or: [{ resource: 'jobs', verb: 'delegate' }] },
  'job-submit': { resource: 'jobs', verb: 'delegate' },
  'job-status': { resource: 'jobs', verb: 'delegate', or: [{ resource: 'logs', verb: 'get' }] },
};

export type ReplicaDecision = { ok: true } | { ok: false; status: 400 | 403; reason: string; field?: string };

/**
 * A replica's definition as a peer sent it, parsed as every service is (`parseServiceInput`:
 * Go-style keys folded, so `CPU` is `cpu`): within the grant's `max_cpu` (a definition
 * without one reserves the default), and a worker, never a coordinator (members would make
 * this cluster fan out to its own peers with its own certificates on the peer's behalf).
 */
export const decideReplica = (
  scope: Scope,
  input: Pick<ServiceInput, 'cpu' | 'federation'>,
): ReplicaDecision => {
  if ((input.federation?.members?.length ?? 0) > 0)
    return {
      ok: false,
      status: 400,
      reason: 'federation.members: a replica sent over the peer channel has no members of its own',
      field: 'federation.members',
    };
  return withinCpu(scope, input.cpu ?? DEFAULT_CPU)
    ? { ok: true }
    : { ok: false, status: 403, reason: 'max-cpu-exceeded' };
};

/** A delegated job runs with its service's declared cpu: within the grant's `max_cpu`. */
export const decideDelegatedJob = (scope: Scope, service: Pick<ServiceInput, 'cpu'>): ReplicaDecision =>
  withinCpu(scope, service.cpu ?? DEFAULT_CPU)
    ? { ok: true }
    : { ok: false, status: 403, reason: 'max-cpu-exceeded' };
