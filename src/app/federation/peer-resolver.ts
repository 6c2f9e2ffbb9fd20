// Finds how to reach a member cluster. Today from the service's `clusters` map (OSCAR's
// shape: endpoint and Basic credentials); peer records with certificates slot in here
// later, as another source tried first, without touching the use cases.
import { fail } from '../../core/errors.ts';
import type { Service } from '../../core/fdl/service.ts';
import type { PeerTarget } from '../../core/ports.ts';

export interface PeerResolver {
  /** How to reach `clusterId` on behalf of `service`; throws FEDERATION_INVALID when unknown. */
  resolve(clusterId: string, service: Service): PeerTarget;
  /** Cluster ids this resolver can reach for the service. */
  known(service: Service): Set<string>;
}

export const clustersMapResolver = (): PeerResolver => ({
  resolve(clusterId, service) {
    const entry = service.clusters?.[clusterId];
    if (!entry?.endpoint) {
      return fail(
        'FEDERATION_INVALID',
        `cluster "${clusterId}" is not in the service's clusters map (endpoint and credentials)`,
      );
    }
    const auth: PeerTarget['auth'] =
      entry.auth_user && entry.auth_password
        ? { kind: 'basic', user: entry.auth_user, password: entry.auth_password }
        : { kind: 'none' };
    return {
      clusterId,
      endpoint: entry.endpoint.replace(/\/+$/, ''),
      sslVerify: entry.ssl_verify !== false,
      auth,
    };
  },
  known(service) {
    return new Set(Object.keys(service.clusters ?? {}));
  },
});
