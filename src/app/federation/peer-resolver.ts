// Finds how to reach a member cluster, strongest credential first: a peer record (the peer
// channel, mTLS with its grant-bound certificate, DESIGN §6), then the service's `clusters`
// map (OSCAR's shape: endpoint and Basic credentials).
import { ADMIN_OWNER } from '../../core/auth/principal.ts';
import { fail } from '../../core/errors.ts';
import type { Service } from '../../core/fdl/service.ts';
import type { PeerRecord, PeerTarget } from '../../core/ports.ts';

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
        `cluster "${clusterId}" is not in the service's clusters map (endpoint and credentials) and names no peer`,
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

/**
 * Peer records as a source of targets: a member's `cluster_id` names a record (by its name,
 * else by the peer's cluster id when one record has it). A revoked record is skipped when the
 * service's `clusters` map has the cluster (Basic still reaches an OSCAR peer); otherwise it
 * stays the target, and its calls fail at TLS (shown as the member's sync state).
 * A record acts on the peer as its grant's subject, so only services that subject owns here
 * (or the admin's) may use it: another user of this cluster cannot borrow the grant.
 */
export const peerRecordSource = (records: () => readonly PeerRecord[]) => {
  const usable = (p: PeerRecord, service?: Pick<Service, 'owner'>) =>
    !service || service.owner === ADMIN_OWNER || service.owner === p.subject;
  const find = (clusterId: string, service?: Pick<Service, 'clusters' | 'owner'>): PeerRecord | undefined => {
    const all = records().filter((p) => usable(p, service));
    const byName = all.find((p) => p.name === clusterId);
    const byCluster = all.filter((p) => p.clusterId === clusterId);
    const p = byName ?? (byCluster.length === 1 ? byCluster[0] : undefined);
    if (!p) return undefined;
    if (p.state === 'revoked' && service?.clusters?.[clusterId]?.endpoint) return undefined;
    return p;
  };
  return {
    find,
    target(clusterId: string, service?: Pick<Service, 'clusters' | 'owner'>): PeerTarget | undefined {
      const p = find(clusterId, service);
      if (!p) return undefined;
      // The endpoint is for messages and keys; the transport sends to the record's channel.
      return { clusterId, endpoint: p.peerChannelUrl, sslVerify: true, auth: { kind: 'peer', peer: p.name } };
    },
    ids(service?: Pick<Service, 'owner'>): string[] {
      return records()
        .filter((p) => usable(p, service))
        .flatMap((p) => [p.name, p.clusterId]);
    },
  };
};

export type PeerRecordSource = ReturnType<typeof peerRecordSource>;

/** Peer records first, then the `clusters` map. */
export const peerResolver = (peers: PeerRecordSource, fallback = clustersMapResolver()): PeerResolver => ({
  resolve(clusterId, service) {
    return peers.target(clusterId, service) ?? fallback.resolve(clusterId, service);
  },
  known(service) {
    return new Set([...peers.ids(service), ...fallback.known(service)]);
  },
});
