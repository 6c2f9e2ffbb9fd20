// Glue between delegation parts that the composition root needs: the status cache's keys
// and its per-service view, the shared status board.
import { createHash } from 'node:crypto';
import type { DelegationCredentials, SnapshotSource } from '../app/federation/delegator.ts';
import { replicasOf } from '../app/federation/delegator.ts';
import type { ClusterSnapshot } from '../core/delegation/policy.ts';
import type { Service } from '../core/fdl/service.ts';
import type { PeerTarget, SettingsStore } from '../core/ports.ts';
import type { SharedEntry, StatusCache } from '../worker/status-cache.ts';

/**
 * The status cache's key for a target: its endpoint and who asks (the Basic user and a hash
 * of the password, or the service owner whose token is minted), so one user's `clusters`
 * entry cannot change what another's service sees of a cluster id.
 */
export const statusKeyOf = (t: PeerTarget, service: Pick<Service, 'owner'>): string => {
  const who =
    t.auth.kind === 'basic'
      ? `basic:${t.auth.user}:${sha256(t.auth.password)}`
      : t.auth.kind === 'peer'
        ? // One grant's subject for every service that may use the record.
          `peer:${t.auth.peer}`
        : t.auth.kind === 'none'
          ? 'none'
          : `owner:${service.owner}`;
  return sha256(`${t.endpoint.replace(/\/+$/, '')}\n${who}`).slice(0, 32);
};

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const routeOf = (s: Pick<Service, 'name' | 'owner'>, clusterId: string) =>
  `${s.name}\n${s.owner}\n${clusterId}`;
const bare = (endpoint: string) => endpoint.replace(/\/+$/, '');

/**
 * Which status-cache key each local service reaches each of its replica clusters by,
 * rebuilt every poll round from the services themselves.
 */
export class ReplicaIndex {
  private routes = new Map<string, { endpoint: string; key: string }>();

  constructor(
    private readonly d: {
      services: { list(): Promise<Service[]> };
      credentials: DelegationCredentials;
      /** The endpoint a service reaches a cluster by now (default: its `clusters` entry). */
      endpointOf?: (service: Service, clusterId: string) => string | undefined;
    },
  ) {}

  /** Every target some local service delegates to, by key (the first service's credential of a key is polled). */
  async collect(): Promise<Map<string, PeerTarget>> {
    const out = new Map<string, PeerTarget>();
    const routes = new Map<string, { endpoint: string; key: string }>();
    const round = new Map<string, Promise<string | undefined>>();
    for (const service of await this.d.services.list()) {
      for (const r of replicasOf(service)) {
        if (r.type !== 'oscar' || !r.cluster_id) continue;
        const route = routeOf(service, r.cluster_id);
        if (routes.has(route)) continue;
        const target = await this.d.credentials
          .targetFor(r.cluster_id, service, round)
          .catch(() => undefined);
        if (!target) continue;
        const key = statusKeyOf(target, service);
        routes.set(route, { endpoint: bare(target.endpoint), key });
        if (!out.has(key)) out.set(key, target);
      }
    }
    this.routes = routes;
    return out;
  }

  /** The key this service reaches `clusterId` by, when its entry is still the one polled. */
  keyFor(service: Service, clusterId: string): string | undefined {
    const route = this.routes.get(routeOf(service, clusterId));
    const endpoint = this.d.endpointOf
      ? this.d.endpointOf(service, clusterId)
      : service.clusters?.[clusterId]?.endpoint;
    return route && endpoint && bare(endpoint) === route.endpoint ? route.key : undefined;
  }
}

/** The delegator's view of the status cache: each service sees clusters as it reaches them. */
export const replicaSnapshots = (
  index: ReplicaIndex,
  cache: Pick<StatusCache, 'get' | 'reserve' | 'markOffline'>,
): SnapshotSource => ({
  forService(service) {
    const out = new Map<string, ClusterSnapshot>();
    for (const r of replicasOf(service)) {
      if (r.type !== 'oscar' || !r.cluster_id) continue;
      const key = index.keyFor(service, r.cluster_id);
      const snapshot = key ? cache.get(key) : undefined;
      if (snapshot) out.set(r.cluster_id, { ...snapshot, clusterId: r.cluster_id });
    }
    return out;
  },
  reserve(service, clusterId, job) {
    const key = index.keyFor(service, clusterId);
    if (key) cache.reserve(key, job);
  },
  markOffline(service, clusterId) {
    const key = index.keyFor(service, clusterId);
    if (key) cache.markOffline(key);
  },
});

/** The status snapshots the leading instance publishes for the others, in the shared store. */
export const sharedStatus = (settings: SettingsStore) => ({
  publish: (entries: SharedEntry[]) => settings.setSetting('status-cache', JSON.stringify(entries)),
  load: async (): Promise<SharedEntry[]> => {
    const raw = await settings.getSetting('status-cache');
    return raw ? (JSON.parse(raw) as SharedEntry[]) : [];
  },
});
