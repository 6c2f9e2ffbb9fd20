// POST (add), PUT (update), DELETE (remove) of members on the coordinator: the members
// request (OSCAR's shape) is merged into the stored federation block, the result validated
// as a whole, and applied as any change of the coordinator's graph.
import type { Principal } from '../../core/auth/principal.ts';
import { fail } from '../../core/errors.ts';
import type { Service } from '../../core/fdl/service.ts';
import { normalizeServiceEndpoints } from '../../core/federation/endpoint.ts';
import { addMembers, removeMembers, updateMembers } from '../../core/federation/members.ts';
import type { MembersRequest } from '../../core/federation/members-request.ts';
import { type FederationSpec, ORIGIN_CLUSTER, ORIGIN_SERVICE } from '../../core/federation/model.ts';
import { parseFederation } from '../../core/federation/validate.ts';
import type { FederatedChanges } from './federated-changes.ts';
import { type FederationCommon, isWorker } from './federation-common.ts';
import type { FederationView } from './federation-view.ts';

export class FederationMembersChange {
  constructor(
    private readonly f: FederationCommon,
    private readonly changes: FederatedChanges,
    private readonly view: FederationView,
  ) {}

  async change(principal: Principal, name: string, op: 'add' | 'update' | 'remove', req: MembersRequest) {
    const { d } = this.f;
    const previous = await d.services.getManageable(principal, name);
    if (isWorker(previous)) {
      fail(
        'CONFLICT',
        `service "${name}" is a federation worker; change the members on its coordinator ${previous.annotations?.[ORIGIN_CLUSTER]}/${previous.annotations?.[ORIGIN_SERVICE]}`,
      );
    }
    const list = op === 'update' ? (req.update ?? req.members) : req.members;
    if (!Array.isArray(list) || list.length === 0) {
      fail(
        'VALIDATION_FAILED',
        `${op === 'update' ? '"update" or "members"' : '"members"'} must be a non-empty list of members`,
      );
    }
    // New clusters and storage providers come with the request (OSCAR's shape), their
    // endpoints normalised as a service's are.
    const merged: Service = structuredClone(previous);
    if (req.clusters) {
      const clusters = normalizeServiceEndpoints({ clusters: req.clusters }).clusters as Service['clusters'];
      merged.clusters = { ...(merged.clusters ?? {}), ...clusters };
    }
    if (req.storage_providers) {
      merged.storage_providers = {
        ...(merged.storage_providers ?? {}),
        ...(req.storage_providers as Service['storage_providers']),
      };
    }
    const current =
      this.f.currentSpec(merged) ??
      (parseFederation({ ...merged, federation: { ...(merged.federation ?? {}), members: [] } } as Service, {
        clusterId: d.clusterId,
        knownClusters: d.resolver.known(merged),
      }) as FederationSpec);
    // Request members get the same defaults as written ones (type, priority, service_name),
    // so `cluster/service` written either way names the same member.
    const defaults = { clusterId: d.clusterId, serviceName: name, topology: current.topology };
    const changed =
      op === 'add'
        ? addMembers(current, list!, defaults)
        : op === 'update'
          ? updateMembers(current, list!, defaults)
          : removeMembers(current, list!, defaults);
    // A service that had no federation block gets the default topology for members (star).
    const topology = previous.federation ? changed.topology : undefined;
    // Validate the result as a whole (cycles, unknown clusters, duplicates).
    const candidate = {
      ...merged,
      federation: { ...(merged.federation ?? {}), ...changed, topology },
    } as Service;
    const spec = this.f.spec(candidate)!;
    await this.changes.apply(principal, candidate, previous, spec, {
      deleteRemoved: op === 'remove' && req.delete === true,
    });
    return this.view.get(principal, name);
  }
}
