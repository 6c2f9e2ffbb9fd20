// GET /system/federation/{service}: the topology and members as every node shows them, with
// each member's sync state on the coordinator (told from its outbox rows: core/sync-state).
import type { Principal } from '../../core/auth/principal.ts';
import type { FederationSpec, Member } from '../../core/federation/model.ts';
import { nodeKey } from '../../core/federation/model.ts';
import { type SyncState, syncOf } from '../../core/federation/sync-state.ts';
import { deployedMembers } from '../../core/federation/validate.ts';
import type { OutboxSyncRow } from '../../core/ports.ts';
import { type FederationCommon, isWorker } from './federation-common.ts';

/** A member's liveness in the GET view: the status cache's, never a call made for it. */
export interface MemberLiveness {
  online: boolean;
  /** Free cores over the member cluster's nodes, as last seen. */
  free_cpu: number;
}

export class FederationView {
  constructor(private readonly f: FederationCommon) {}

  async get(principal: Principal, name: string) {
    const service = await this.f.d.services.get(principal, name);
    const fed = service.federation as Record<string, any> | undefined;
    if (isWorker(service)) {
      return {
        topology: fed?.topology ?? 'none',
        members: (fed?.view as Member[] | undefined) ?? [],
        group_id: fed?.group_id ?? name,
        delegation: fed?.delegation ?? 'static',
        revision: fed?.revision ?? 0,
        coordinator: fed?.coordinator ?? null,
        role: 'worker',
      };
    }
    const spec = this.f.currentSpec(service);
    if (!spec) return { topology: 'none', members: [], revision: 0, role: 'none' };
    // A member removed without delete keeps a block with topology none and no members: it
    // coordinates nothing.
    if (spec.topology === 'none' && spec.members.length === 0) {
      return { topology: 'none', members: [], revision: spec.revision, role: 'none' };
    }
    const sync = await this.syncStates(service.name, spec);
    const live = this.f.d.snapshots?.forService(service);
    const liveness = (clusterId: string | undefined): MemberLiveness | undefined => {
      const snap = clusterId ? live?.get(clusterId) : undefined;
      return snap ? { online: snap.online, free_cpu: snap.totalFreeCpuMillis / 1000 } : undefined;
    };
    const withSync = (m: Member): Member & { sync?: SyncState; status?: MemberLiveness } =>
      m.type === 'endpoint'
        ? { ...m }
        : {
            ...m,
            sync: sync.get(`${m.cluster_id}/${m.service_name}`),
            ...(liveness(m.cluster_id) ? { status: liveness(m.cluster_id) } : {}),
            ...(m.members ? { members: m.members.map(withSync) } : {}),
          };
    return {
      topology: spec.topology,
      members: spec.members.map(withSync),
      group_id: spec.group_id,
      delegation: spec.delegation,
      revision: spec.revision,
      coordinator: { cluster_id: this.f.d.clusterId, service_name: service.name },
      role: 'coordinator',
    };
  }

  private async syncStates(group: string, spec: FederationSpec): Promise<Map<string, SyncState>> {
    // Each member's rows, newest first as the store gives them.
    const byNode = new Map<string, OutboxSyncRow[]>();
    for (const r of await this.f.d.store.syncRowsOfGroup(group)) {
      const key = nodeKey({ cluster_id: r.peer, service_name: r.service });
      const mine = byNode.get(key);
      if (mine) mine.push(r);
      else byNode.set(key, [r]);
    }
    const out = new Map<string, SyncState>();
    for (const n of deployedMembers(spec))
      out.set(nodeKey(n), syncOf(byNode.get(nodeKey(n)) ?? [], spec.revision));
    return out;
  }
}
